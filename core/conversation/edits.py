"""The shared core of every command group: the ports, and the edit helpers the groups build on (find the head, run an
edit through the queue, relay its progress, show a node with its buttons, move the head).

Blocking calls hop to a thread: repository calls through `in_thread`, image work through `in_image_thread`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from PIL import Image

from core.commands import ButtonInfo, CommandInfo
from core import regions
from core.domain import DEFAULT_MODEL, Conversation, EditJob, EditParams, Node, Region, Translation
from core.conversation.captions import caption, quoted, short
from core.conversation.choices import refuse_references, runnable
from core.conversation.turns import let_next_message_go
from core.editing.families import family_named
from core.editing.registry import ModelRegistry
from core.errors import BadParams, PictureGone, QueueFull, ShuttingDown, UserError
from core.hints import control_character
from core.images import Intake, encode_png
from core.messages import Button, ImageReply, Press, ProgressReply, Send, TextReply
from core.offload import in_image_thread, in_thread, together
from core.picture_cache import PictureCache, decoded_pictures
from core.pictures import mask_preview
from core.reply_previews import ReplyPreviews, reply_previews
from core.storage_wait import patiently
from core.stored_images import decode_thumbnail, encode_preview, encode_stored, stored_as_png, stored_upload
from core.treeview import TreeView
from core.ports import Delayed, HistoryRepository, ImageStore, JobQueue, Position, Segmenter, Step, TrackedJob
from core.understanding import HeldBack, Understanding


def is_model_edit(node: Node) -> bool:
    return node.params is not None


def is_exact_edit(node: Node) -> bool:
    return node.params is None and node.instruction is not None


def clamp(value: float, bounds: tuple[float, float]) -> float:
    return round(min(max(value, bounds[0]), bounds[1]), 2)


def came_back_from(children: list[Node]) -> Node | None:
    """Of a node's children, the one we most recently came back from (where redo goes). Unadopted candidates (visit
    0) are not on the way."""
    return max((child for child in children if child.visit > 0), key=lambda child: (child.visit, child.id),
               default=None)


def can_not_find(region: Region) -> str:
    return f"I can't find '{region.words}' in this picture."


DELAYED_LINE = "Storage is not answering right now: your edit goes on by itself once it is back."
PAUSED_LINE = "Edits are paused for now: yours will run when they resume"
SOMEONE_ELSES = "That picture belongs to someone else's edits: reply to one of your own, or send your own photo."


def progress(job_id: int | str, update: Position | Step | Delayed, what: str = "") -> ProgressReply:
    """what: what runs, when it is more than one edit (e.g. "9 cells together")."""
    if isinstance(update, Delayed):
        return ProgressReply(job_id, update.why or DELAYED_LINE, notice=True)
    if isinstance(update, Step):
        doing = f"Editing {what}" if what else "Editing"
        return ProgressReply(job_id, f"{doing}: step {update.done}/{update.total}", 0, update.done, update.total)
    if update.paused:
        ahead = f" ({update.ahead} ahead of you)" if update.ahead else ""
        return ProgressReply(job_id, f"{PAUSED_LINE}{ahead}.", update.ahead, notice=True)
    if update.ahead:
        return ProgressReply(job_id, f"Queued: {update.ahead} ahead of you", update.ahead)
    return ProgressReply(job_id, "Starting the edit…")


def refuse_control_characters(instruction: str) -> None:
    """BadParams when the instruction holds a control character: refused before it is held back or costs model time."""
    if (char := control_character(instruction)) is not None:
        raise BadParams(f"Your instruction contains an invisible control character ({char}): please type it again "
                        "without it.")


class EditCore:
    """The ports and settings every command group shares, and the helpers they build on."""

    def __init__(self, history: HistoryRepository, images: ImageStore, queue: JobQueue, *, intake_limits: dict,
                 defaults: EditParams, understanding: Understanding, model: str, models: ModelRegistry,
                 max_stored_bytes_per_person: int | None = None, segmenter: Segmenter | None = None,
                 jpeg_previews: bool = False, pictures: PictureCache = decoded_pictures,
                 previews: ReplyPreviews = reply_previews) -> None:
        self.models = models
        self.previews = previews
        self.history = history
        self.jpeg_previews = jpeg_previews
        self.pictures = pictures
        self.segmenter = segmenter
        self.images = images
        self.queue = queue
        self.intake_limits = intake_limits
        self.defaults = defaults
        self.understanding = understanding
        self.model = model
        self.max_stored_bytes_per_person = max_stored_bytes_per_person
        # Filled in by the engine once every group is collected: what /help lists and what buttons show.
        self.commands: list[CommandInfo] = []
        self.buttons: dict[str, ButtonInfo] = {}

    def effective(self, conversation: Conversation) -> Conversation:
        """The conversation with settings its model can run (core.conversation.choices.runnable)."""
        settings = runnable(self.models, conversation.settings)
        return conversation if settings == conversation.settings else replace(conversation, settings=settings)

    # -------------------------------------------------------------- finding nodes

    async def own_node(self, conversation: Conversation, node_id: int) -> Node:
        node = await in_thread(self.history.node, node_id)
        if node is None:
            raise UserError("I can't find that image in your history any more.")
        if node.conversation_id != conversation.id:  # e.g. a reply, in a group, to someone else's result
            raise UserError(SOMEONE_ELSES)
        return node

    async def head(self, conversation: Conversation) -> Node:
        if conversation.head_id is None:
            raise UserError("Send me a photo first.")
        return await in_thread(self.history.node, conversation.head_id)

    async def last_edit(self, conversation: Conversation, name: str) -> Node:
        head = await self.head(conversation)
        if not is_model_edit(head):
            raise UserError(f"{name} re-renders your last edit: send an instruction first.")
        return head

    async def view(self, conversation: Conversation) -> tuple[TreeView, Node]:
        """The current photo's tree as /history, /goto and /tree show it, and the head."""
        head = await self.head(conversation)
        return TreeView.of(await in_thread(self.history.tree, head.id), head.id), head

    async def label(self, node_id: int) -> str:
        """node_id's label as /history shows it and /goto takes it. A candidate nobody adopted yet (a /sweep or
        /variations cell) is labelled as it would be once picked, so its picture is named too."""
        return TreeView.of(await in_thread(self.history.tree, node_id), node_id).label(node_id)

    async def redo_target(self, node: Node) -> Node | None:
        """The child we most recently came back from."""
        return came_back_from(await in_thread(self.history.children, node.id))

    async def move(self, conversation: Conversation, node_id: int | None) -> Node | None:
        """Make node_id the head, once its picture is known to be stored (PictureGone, and no move, if not)."""
        node = None if node_id is None else await in_thread(self.history.node, node_id)
        if node is not None:
            await self.require_stored(node)
        await in_thread(self.history.move_head, conversation.id, node_id)
        return None if node_id is None else await in_thread(self.history.node, node_id)

    async def claim(self, conversation: Conversation, parent: Node) -> None:
        """Before an edit of parent is queued: the person has room left, parent's picture is stored, and its tree
        counts as used now, so a retention purge running meanwhile keeps it (PictureGone if either is gone)."""
        await together(self.require_room(conversation.key.person), self.require_stored(parent))
        if not await in_thread(self.history.touch, parent.id):
            raise PictureGone()

    async def require_room(self, person: str) -> None:
        """QueueFull when what the person's pictures take in the image store has reached their limit."""
        limit = self.max_stored_bytes_per_person
        if limit is not None and await in_thread(self.history.stored_bytes, person) >= limit:
            raise QueueFull(f"Your pictures take all the room I keep for one person ({limit / 1e6:,.0f} MB), so I "
                            "can't store new ones: older edits are deleted after a while, or ask the operator.")

    async def require_stored(self, node: Node) -> None:
        """PictureGone when the node's image file is missing: checked before anything changes or a job queues."""
        if not await in_image_thread(self.images.exists, node.image_hash):
            raise PictureGone()

    def stored(self, digest: str) -> bytes:
        """Blocking: a stored image's bytes (call through in_image_thread); PictureGone if its file is missing."""
        try:
            return self.images.get(digest)
        except KeyError:
            raise PictureGone() from None

    def fetcher(self, digest: str) -> Callable[[], bytes]:
        """A stored image for core.pictures, fetched (and decoded small) only when it is drawn."""
        return partial(self.stored, digest)

    def store(self, image: Image.Image) -> tuple[str, int]:
        """Blocking: keep a picture in the image store (it must not be changed afterwards: it is also kept
        decoded); its digest and the bytes it takes there."""
        data = encode_stored(image)
        digest = self.images.put(data)
        self.pictures.put(digest, image)
        return digest, len(data)

    def store_upload(self, data: bytes, intake: Intake) -> tuple[str, int]:
        """Blocking: keep an accepted upload (core.stored_images: a JPEG as its own bytes without metadata);
        its digest and the bytes it takes there."""
        stored, picture = stored_upload(data, intake)
        digest = self.images.put(stored)
        self.pictures.put(digest, picture)
        return digest, len(stored)

    def image(self, digest: str) -> Image.Image:
        """Blocking: a stored image at full size, decoded once per process (call through in_image_thread)."""
        try:
            return self.pictures.load(digest, self.images)
        except KeyError:
            raise PictureGone() from None

    def shown(self, digest: str) -> bytes:
        """Blocking: the picture a result reply carries: a full-size JPEG where the chat shows photos
        (jpeg_previews), else the lossless PNG."""
        return encode_preview(self.image(digest)) if self.jpeg_previews else stored_as_png(self.stored(digest))

    # -------------------------------------------------------------- edits

    async def instruct(self, conversation: Conversation, parent: Node, text: str, send: Send) -> None:
        """An instruction the person typed ("in the sky: make it a sunset" confines it to a region, else the
        conversation's region applies): made English (core/understanding.py) before it costs GPU time, or held
        back with a hint (for /anyway and /asis) when the model could not read it well."""
        refuse_control_characters(text)
        inline, instruction = regions.split_region(text)
        try:
            understood = await in_thread(self.understanding.understand, instruction)
        except HeldBack:
            await in_thread(self.history.hold_back, conversation.id, parent.id, text)
            raise
        await self.edit(conversation, parent, understood.english, conversation.settings, send, understood.translation,
                        region=inline or conversation.region, references=conversation.references)

    async def run_held_back(self, conversation: Conversation, send: Send) -> bool:
        """Run the instruction a hint held back, as it is; False when none is waiting."""
        held = await in_thread(self.history.take_held_back, conversation.id)
        if held is None:
            return False
        parent_id, text = held
        parent = await self.own_node(conversation, parent_id)
        inline, instruction = regions.split_region(text)
        if parent.id != conversation.head_id:
            # It belongs to the image it was asked on, not to wherever the person has moved since.
            await send(TextReply(f"Running {quoted(text)} on the image you asked it for (step "
                                 f"{await self.label(parent.id)}: {short(parent)}), as a new branch; your other edits "
                                 "stay in /history."))
        await self.edit(conversation, parent, instruction, conversation.settings, send,
                        region=inline or conversation.region, references=conversation.references)
        return True

    async def edit(self, conversation: Conversation, parent: Node, instruction: str, params: EditParams,
                   send: Send, translation: Translation | None = None, *, region: Region | None = None,
                   references: tuple[str, ...] = ()) -> Node:
        """Edit `parent` with `instruction` (English, translated from `translation` when set; inside `region` only,
        when given; with the reference pictures `references`, image digests); the result becomes a child of parent
        and the new head. A region whose words name nothing in the picture is refused before any GPU time. The
        conversation's waiting references are cleared once an edit took them."""
        params = family_named(params.family).validated(params.validated())
        if references:
            refuse_references(family_named(params.family), len(references), self.models)
        if not instruction:
            raise BadParams("Tell me what to change, for example “make it night”.")
        refuse_control_characters(instruction)
        if region is not None:
            await self.require_region(parent, region, send)
        await self.claim(conversation, parent)
        job = EditJob(conversation.id, conversation.key.person, parent.id, parent.image_hash, instruction, params,
                      translation=translation, region=region, references=references)
        [node] = await self.run(job, send)
        if references and references == conversation.references:
            await in_thread(self.history.save_references, conversation.id, ())
        await send(await self.show(node, caption(node), waiting=send))
        return node

    async def rerun(self, conversation: Conversation, node: Node, params: EditParams, send: Send) -> None:
        """Edit node's parent again with node's instruction (the same English, if translated): a sibling of node."""
        if node.parent_id is None:
            raise UserError("That is the original photo: send an instruction to edit it.")
        if not is_model_edit(node):
            raise UserError("That was an exact edit, not the model's: send an instruction to edit the image.")
        parent = await in_thread(self.history.node, node.parent_id)
        await self.edit(conversation, parent, node.instruction, params, send, node.translation,
                        region=node.region, references=node.inputs)

    # -------------------------------------------------------------- regions

    async def find_region(self, node: Node, region: Region) -> tuple[bool, bytes]:
        """Whether `region`'s words name anything in node's picture, and the /mask picture showing the region
        (PNG): computed on a small copy in a worker thread, before any GPU time."""
        if self.segmenter is None:
            raise UserError("Editing part of the picture is not available on this bot.")

        def look() -> tuple[bool, bytes]:
            photo = decode_thumbnail(self.images.get(node.image_hash), regions.MASK_SIDE)
            found, mask = regions.find(self.segmenter, photo, region)
            return found, encode_png(mask_preview(photo, mask, caption=region.describe()))

        return await in_image_thread(look)

    async def require_region(self, node: Node, region: Region, send: Send) -> None:
        """Refuse (with the mask picture) a region whose words name nothing in node's picture."""
        found, picture = await self.find_region(node, region)
        if not found:
            await send(ImageReply(picture, can_not_find(region), node.id, kind="mask"))
            raise UserError("Nothing was changed: name the part in other words (/only WORDS), or send /region clear "
                            "to edit the whole picture.")

    async def run(self, job: EditJob, send: Send, what: str = "") -> list[Node]:
        """Queue a job, relay its progress, and return the nodes it recorded. With a queue whose jobs end with the
        process, the edit is noted in the history until it ends, so a restart meanwhile can offer it again."""
        noted = self.queue.forgets_jobs_on_exit
        if noted:
            await in_thread(self.history.note_edit, job.conversation_id, job.parent_id, job.instruction)
        try:
            nodes = await self.follow(self.queue.submit(job), send, what)
        except ShuttingDown:
            raise  # stays noted: offered again after the restart
        except Exception:
            if noted:
                await in_thread(self.history.forget_edit, job.conversation_id)
            raise
        if noted:
            await in_thread(self.history.forget_edit, job.conversation_id)
        return nodes

    async def follow(self, queued: TrackedJob, send: Send, what: str = "") -> list[Node]:
        """Relay a queued job's progress to `send`; then the nodes it recorded (or its error)."""
        let_next_message_go()  # the job is queued: the person's next message need not wait for the model
        async for update in queued.updates():
            await send(progress(queued.id, update, what))
        return await queued.result

    async def show(self, node: Node, text: str, waiting: Send | None = None) -> ImageReply:
        """An image reply for a node, with the buttons that make sense on it. waiting: where a finished edit's
        person is told while its picture waits for the image store to come back (core.storage_wait)."""
        made = self.previews.take(node.image_hash) if self.jpeg_previews else None
        if made is not None:  # a result's JPEG, encoded by the edit runner while it stored the node
            read = partial(asyncio.wrap_future, made)
        else:
            read = partial(in_image_thread, self.shown, node.image_hash)
        # The picture is encoded in an image thread (or taken from the runner) while the tree is read (once: the
        # label and the redo button both come from it) in a database thread.
        data, tree = await asyncio.gather(read() if waiting is None else patiently(read, waiting),
                                          in_thread(self.history.tree, node.id))
        if is_model_edit(node) and not node.params.model and self.model not in ("", DEFAULT_MODEL):
            text += f" · model {self.model}"
        redo = came_back_from([child for child in tree if child.parent_id == node.id]) is not None
        label = TreeView.of(tree, node.id).label(node.id)
        return ImageReply(data, text, node.id, self._buttons(node, redo), label=label)

    def _buttons(self, node: Node, redo: bool) -> tuple[Button, ...]:
        actions = []
        if node.parent_id is not None:
            actions.append("undo")
        if redo:
            actions.append("redo")
        if is_model_edit(node):
            actions += ["retry", "stronger", "weaker"]
        if node.parent_id is not None:
            actions.append("compare")
        if node.translation is not None and node.parent_id is not None:
            actions.append("meant")  # Fix translation (core/conversation/language.py)
        return tuple(Button(self.buttons[action].label, Press(action, node.id)) for action in actions)


class CommandGroup:
    """A file of commands and buttons over the shared core. Every subclass is found and made by the engine
    (`GROUPS`, in `position` order: that is the order of /help), so a new command is one new file."""

    position = 100

    def __init__(self, core: EditCore) -> None:
        self.core = core

    def __init_subclass__(cls, register: bool = True, **kwargs) -> None:
        """register=False: a group the caller makes and hands to the engine itself (it needs more than the core)."""
        super().__init_subclass__(**kwargs)
        if register:
            GROUPS.append(cls)

    def admits(self, conversation: Conversation) -> bool:
        """Whether this person may use this group's commands; anyone else gets the unknown-command answer."""
        return True


GROUPS: list[type[CommandGroup]] = []
