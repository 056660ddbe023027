"""How an edit job (core.domain.EditJob) is carried out.

`EditRunner.run` does the whole job in one worker thread: load the parent image, edit it, store the result, record the
node. The order is what keeps history whole: the image is durable before the row that names it is committed, and the
node is recorded in one transaction, so a crash or a cancel at any point leaves either the full edit or nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from PIL import Image

from core.domain import EditJob, NewNode, Node, Rendered
from core.editing.transfer import full_size, shrink_for
from core.errors import PictureGone, UserError
from core.images import decode_stored, encode_stored
from core.ports import (
    Editor,
    EditResult,
    HistoryRepository,
    ImageStore,
    ProgressCallback,
)

PURGED_WHILE_EDITING = ("Your history was deleted (it was older than this bot keeps) while this edit ran, so I could "
                        "not keep the result: send the photo again to start over.")


class EditRunner:
    """Renders jobs with the editor, stores their images and records their nodes; shared by both queues.

    output: "full" (default) brings each result onto its parent at the parent's size (core.editing.transfer);
    "working" stores what the editor returns, at its working size."""

    def __init__(self, editor: Editor, history: HistoryRepository, images: ImageStore, *,
                 output: str = "full") -> None:
        self.editor = editor
        self.history = history
        self.images = images
        self.output = output

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
                                              stored_bytes=result.stored_bytes, translation=job.translation))
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
        photo = self.photo(job)
        small = self._working(photo)
        if job.variants:
            results = self.editor.edit_batch(small, job.instruction, job.variants, on_step=on_step, cancel=cancel)
        else:
            results = [self.editor.edit(small, job.instruction, job.params, on_step=on_step, cancel=cancel)]
        return self._store(photo, small, results)

    def render_many(self, jobs: Sequence[EditJob], photos: Sequence[Image.Image],
                    on_step: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> list[list[Rendered]]:
        """Blocking: several plain edits (no variants) in one `Editor.edit_many` call, their photos already loaded
        (`photo`) and sharing the editor's batch_key. Stores the images, records nothing; for each job what `render`
        gives for it."""
        smalls = [self._working(photo) for photo in photos]
        requests = [(small, job.instruction, job.params) for job, small in zip(jobs, smalls, strict=True)]
        results = self.editor.edit_many(requests, on_step=on_step, cancel=cancel)
        return [self._store(photo, small, [result]) for photo, small, result in zip(photos, smalls, results)]

    def photo(self, job: EditJob) -> Image.Image:
        """The photo the job edits, from the image store, in RGB; PictureGone if its file is missing."""
        try:
            data = self.images.get(job.image_hash)
        except KeyError:
            raise PictureGone() from None
        return decode_stored(data)

    def _working(self, photo: Image.Image) -> Image.Image:
        """What the editor gets: the photo shrunk once to its working size (output "working": the photo itself, and
        the editor does as it always did)."""
        return photo if self.output == "working" else shrink_for(self.editor, photo)

    def _store(self, photo: Image.Image, small: Image.Image, results: Sequence[EditResult]) -> list[Rendered]:
        # Every image is durable before any row names it.
        stored = []
        for result in results:
            data = encode_stored(self._delivered(photo, small, result.image))
            stored.append(Rendered(self.images.put(data), result.params, result.seconds, len(data)))
        return stored

    def _delivered(self, photo: Image.Image, small: Image.Image, edited: Image.Image) -> Image.Image:
        return edited if self.output == "working" else full_size(photo, small, edited)
