"""How an edit job (core.domain.EditJob) is carried out.

`EditRunner.run` does the whole job in one worker thread: load the parent image, edit it, store the result, record the
node. The order is what keeps history whole: the image is durable before the row that names it is committed, and the
node is recorded in one transaction, so a crash or a cancel at any point leaves either the full edit or nothing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from PIL import Image

from core.domain import EditJob, EditParams, NewNode, Node, Rendered
from core.editing import transfer
from core.editing.registry import ModelRegistry
from core.editing.transfer import full_size, shrink_for
from core.errors import PictureGone, UserError
from core.picture_cache import PictureCache, decoded_pictures, working_key
from core.ports import Editor, EditResult, HistoryRepository, ImageStore, ProgressCallback, Segmenter
from core.regions import Region, composite, region_alpha, region_mask
from core.reply_previews import ReplyPreviews
from core.stored_images import encode_preview, encode_stored


_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare")
"""Work for the next edit, done while people look at their results."""
_PREVIEWS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview")
"""Replies' JPEGs, encoded on another core while the runner's thread stores and records the node."""
PURGED_WHILE_EDITING = ("Your history was deleted (it was older than this bot keeps) while this edit ran, so I could "
                        "not keep the result: send the photo again to start over.")


class EditRunner:
    """Renders jobs with the editor, stores their images and records their nodes; shared by both queues.

    output: "full" (default) brings each result onto its parent at the parent's size (core.editing.transfer);
    "working" stores what the editor returns, at its working size.
    segmenter: finds a job's region (EditJob.region); a regional job without one is a programming error.
    models: the enabled models (core.editing.registry.ModelRegistry): each job runs on the editor of its params'
    model, loaded when first asked for, and its nodes record that model's weights source. Without it every job
    runs on `editor`.
    pictures: decoded pictures by digest, so a parent just stored or edited in this process is not decoded again.
    previews: where the JPEG that shows a plain edit's result (not a variants job's) goes, for replies shown as JPEGs
    (core.reply_previews): encoded beside the node's own encoding, storing and recording. None (default): none made."""

    def __init__(self, editor: Editor | None, history: HistoryRepository, images: ImageStore, *,
                 output: str = "full", segmenter: Segmenter | None = None, models: ModelRegistry | None = None,
                 pictures: PictureCache = decoded_pictures, previews: ReplyPreviews | None = None) -> None:
        if editor is None and models is None:
            raise ValueError("give an editor or the enabled models")
        self.editor = editor
        self.history = history
        self.images = images
        self.output = output
        self.segmenter = segmenter
        self.models = models
        self.pictures = pictures
        self.previews = previews
        # Background shrinks by digest, with the editor they shrink for, until done (_prepare_next_edit).
        self._preparing: dict[str, tuple[Editor, Future]] = {}
        self._preparing_lock = threading.Lock()

    def editor_for(self, params: EditParams) -> Editor:
        """The editor that runs edits with these params: their model's (loading it if needed), or the only one."""
        if self.models is None:
            return self.editor
        return self.models.editor(params.model or None)

    def source_for(self, params: EditParams) -> str | None:
        """The weights source of the params' model, for the node's record; None without enabled models."""
        if self.models is None:
            return None
        return self.models.spec(params.model or self.models.default).source

    def run(self, job: EditJob, on_step: ProgressCallback | None = None,
            cancel: threading.Event | None = None) -> list[Node]:
        """Blocking; returns the nodes recorded: the new head, or the candidates of a variants job.

        Raises the editor's UserErrors (EditCancelled, UnsafeImage, BadParams) having recorded nothing, PictureGone
        for a parent whose picture is missing, and a UserError saying so when a purge deleted the tree meanwhile.
        """
        rendered = self.render(job, on_step, cancel)
        try:
            return [
                self.history.add_node(NewNode(job.conversation_id, job.parent_id, result.digest, job.instruction,
                                              result.params, result.seconds, make_head=not job.variants,
                                              stored_bytes=result.stored_bytes, translation=job.translation,
                                              region=job.region, source=result.source, inputs=job.references))
                for result in rendered
            ]
        except ValueError:
            if self.history.node(job.parent_id) is None:  # a retention purge took the tree while the edit ran
                raise UserError(PURGED_WHILE_EDITING) from None
            raise

    def render(self, job: EditJob, on_step: ProgressCallback | None = None,
               cancel: threading.Event | None = None) -> list[Rendered]:
        """Blocking: edit and store the images, record nothing. Returns (digest, params used, seconds) per result,
        for `run` or for a distributed worker that records them through the job table."""
        editor = self.editor_for(job.params)
        photo = self.photo(job)
        small = self._working(editor, job.image_hash, photo)
        # Reference pictures go only to editors that take them (pix2pix's has no such argument).
        more = {"references": [self._picture(digest) for digest in job.references]} if job.references else {}
        if job.variants:
            results = editor.edit_batch(small, job.instruction, job.variants, on_step=on_step, cancel=cancel, **more)
        else:
            results = [editor.edit(small, job.instruction, job.params, on_step=on_step, cancel=cancel, **more)]
        return self._store(editor, job.region, photo, small, results, self.source_for(job.params),
                           previews=not job.variants)

    def render_many(self, jobs: Sequence[EditJob], photos: Sequence[Image.Image],
                    on_step: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> list[list[Rendered]]:
        """Blocking: several plain edits (no variants) in one `Editor.edit_many` call, their photos already loaded
        (`photo`) and sharing the editor's batch_key. Stores the images, records nothing; for each job what `render`
        gives for it."""
        editor = self.editor_for(jobs[0].params)
        smalls = [self._working(editor, job.image_hash, photo) for job, photo in zip(jobs, photos, strict=True)]
        requests = [(small, job.instruction, job.params) for job, small in zip(jobs, smalls, strict=True)]
        results = editor.edit_many(requests, on_step=on_step, cancel=cancel)
        return [self._store(editor, job.region, photo, small, [result], self.source_for(job.params))
                for job, photo, small, result in zip(jobs, photos, smalls, results)]

    def photo(self, job: EditJob) -> Image.Image:
        """The photo the job edits, in RGB (decoded once per process); PictureGone if its file is missing."""
        return self._picture(job.image_hash)

    def _picture(self, digest: str) -> Image.Image:
        try:
            return self.pictures.load(digest, self.images)
        except KeyError:
            raise PictureGone() from None

    def prepare(self, digest: str) -> None:
        """Shrink the stored picture `digest` (a photo just stored), kept decoded in this process, to the working size
        of the default model's editor, in the background: its first edit then need not (core.ports.JobQueue.prepare).
        Nothing when that editor is not loaded yet, the picture is not kept decoded, or output is "working". Quick
        enough for the event loop: it never waits for a model being loaded."""
        if self.output != "full":
            return
        editor = self.editor if self.models is None else self.models.loaded_editor()
        if editor is not None:
            self._prepare_next_edit(editor, digest, None)

    def _working(self, editor: Editor, digest: str, photo: Image.Image) -> Image.Image:
        """What the editor gets: the photo (stored as `digest`) shrunk once to its working size, made ahead of time
        when it is a result this process stored or a photo it was asked to prepare (output "working": the photo
        itself, and the editor does as it always did)."""
        if self.output == "working":
            return photo
        size = editor.working_size(photo.size)
        prepared = self.pictures.get(working_key(digest, size))
        if prepared is None:  # perhaps still being made (or just made, since the look)
            self._wait_for_preparation(digest, size, photo.size)
            prepared = self.pictures.get(working_key(digest, size))
        return shrink_for(editor, photo) if prepared is None else prepared

    def _wait_for_preparation(self, digest: str, size: tuple[int, int], full: tuple[int, int]) -> None:
        """Wait for the background shrink of `digest` (`full` pixels) to `size` when it is under way (shrinking again
        beside it would only slow both); one that has not started is called off (shrinking now is sooner)."""
        with self._preparing_lock:
            editor, preparing = self._preparing.get(digest, (None, None))
        if preparing is not None and editor.working_size(full) == size and not preparing.cancel():
            wait([preparing])

    def _prepare_next_edit(self, editor: Editor, digest: str, picture: Image.Image | None) -> None:
        """Shrink a picture for its next edit, in the background: a result while its person looks at it (the next
        instruction usually edits the result just sent), a new photo while its edit is checked and queued; the shrink
        would cost ~10 ms while they wait. picture: the decoded picture (None: the one kept in `pictures`)."""
        def shrink() -> None:
            source = self.pictures.get(digest) if picture is None else picture
            if source is None:
                return
            size = editor.working_size(source.size)
            if size != source.size:  # transfer's own name: `editbot bench --pipeline` times the runner's calls
                self.pictures.put(working_key(digest, size), transfer.shrink_for(editor, source))

        def forget(done: Future) -> None:
            with self._preparing_lock:
                if self._preparing.get(digest, (None, None))[1] is done:
                    del self._preparing[digest]

        with contextlib.suppress(RuntimeError):  # the process is exiting: the next edit shrinks for itself
            preparing = _BACKGROUND.submit(shrink)
            with self._preparing_lock:
                self._preparing[digest] = editor, preparing
            preparing.add_done_callback(forget)

    def _start_preview(self, picture: Image.Image) -> Future[bytes] | None:
        """The reply's JPEG of `picture`, being encoded on the preview thread; None without previews (or while the
        process exits: the reply then encodes its own)."""
        if self.previews is None:
            return None
        try:
            return _PREVIEWS.submit(encode_preview, picture)
        except RuntimeError:
            return None

    def _store(self, editor: Editor, region: Region | None, photo: Image.Image, small: Image.Image,
               results: Sequence[EditResult], source: str | None, previews: bool = False) -> list[Rendered]:
        """previews: make each result's reply JPEG, when this runner has somewhere to put it."""
        # The mask is found once per job, on the working-size image the editor saw (cheap at any photo size).
        mask = None if region is None else region_mask(self.segmenter.mask(small, region.words), region)
        # Every image is durable before any row names it.
        stored = []
        for result in results:
            delivered = self._delivered(photo, small, result.image, mask)
            # Offered only once stored: a failure below leaves no preview of a picture that is not kept.
            preview = self._start_preview(delivered) if previews else None
            data = encode_stored(delivered)
            digest = self.images.put(data)
            self.pictures.put(digest, delivered)  # encoded losslessly: exactly what decoding `data` gives
            if preview is not None:
                self.previews.offer(digest, preview)
            if self.output == "full":
                self._prepare_next_edit(editor, digest, delivered)
            stored.append(Rendered(digest, result.params, result.seconds, len(data), source))
        return stored

    def _delivered(self, photo: Image.Image, small: Image.Image, edited: Image.Image,
                   mask: Image.Image | None) -> Image.Image:
        """The stored result: full size (or working size), and inside the region only when there is a mask:
        outside it, the parent's pixels exactly."""
        result = edited if self.output == "working" else full_size(photo, small, edited)
        if mask is None:
            return result
        parent = photo if photo.size == result.size else photo.resize(result.size, Image.Resampling.LANCZOS)
        return composite(parent, result, region_alpha(mask, result.size))
