"""The shared core of every command group: the ports, and the edit helpers the groups build on (find the head, run an
edit through the queue, relay its progress, show a node with its buttons, move the head).

Blocking calls hop to a thread: repository calls through `in_thread`, image work through `in_image_thread`.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from core.commands import ButtonInfo, CommandInfo
from core import regions
from core.domain import Conversation, EditJob, EditParams, Node, Region
from core.errors import BadParams, UserError
from core.hints import instruction_problem
from core.images import decode_stored, decode_thumbnail, encode_png, stored_as_png
from core.messages import Button, ImageReply, Press, ProgressReply, Send
from core.offload import in_image_thread, in_thread
from core.pictures import mask_preview
from core.ports import HistoryRepository, ImageStore, JobQueue, Position, Segmenter, Step, TrackedJob

# Exact operations' captions (core/conversation/exact.py does them); here because every caption is made here.
EXACT_CAPTIONS = {
    "rotate 90": "Rotated 90° clockwise",
    "rotate 180": "Rotated 180°",
    "rotate 270": "Rotated 270° clockwise",
    "flip h": "Flipped left to right",
    "flip v": "Flipped top to bottom",
    "crop square": "Cropped to a square",
}


def is_model_edit(node: Node) -> bool:
    return node.params is not None


def is_exact_edit(node: Node) -> bool:
    return node.params is None and node.instruction is not None


def clamp(value: float, bounds: tuple[float, float]) -> float:
    return round(min(max(value, bounds[0]), bounds[1]), 2)


def caption(node: Node) -> str:
    """What a result says under it: the instruction and everything needed to reproduce it."""
    if node.instruction is None:
        return "Original photo"
    if node.params is None:
        return f"{EXACT_CAPTIONS.get(node.instruction, node.instruction)} (exact, no model)"
    seconds = f" · {node.seconds:.1f} s" if node.seconds is not None else ""
    where = f" ({node.region.describe()})" if node.region is not None else ""
    return f"“{node.instruction}”{where}\n{node.params.describe()}{seconds}"


def can_not_find(region: Region) -> str:
    return f"I can't find '{region.words}' in this picture."


def short(node: Node) -> str:
    if node.instruction is None:
        return "original photo"
    return f"“{node.instruction}”" if is_model_edit(node) else f"{node.instruction} (exact)"


def progress(job_id: int | str, update: Position | Step) -> ProgressReply:
    if isinstance(update, Step):
        return ProgressReply(job_id, f"Editing: step {update.done}/{update.total}", 0, update.done, update.total)
    if update.ahead:
        return ProgressReply(job_id, f"Queued: {update.ahead} ahead of you", update.ahead)
    return ProgressReply(job_id, "Starting the edit…")


class EditCore:
    """The ports and settings every command group shares, and the helpers they build on."""

    def __init__(self, history: HistoryRepository, images: ImageStore, queue: JobQueue, *, intake_limits: dict,
                 defaults: EditParams, count_tokens: Callable[[str], int], model: str,
                 segmenter: Segmenter | None = None) -> None:
        self.history = history
        self.segmenter = segmenter
        self.images = images
        self.queue = queue
        self.intake_limits = intake_limits
        self.defaults = defaults
        self.count_tokens = count_tokens
        self.model = model
        # Filled in by the engine once every group is collected: what /help lists and what buttons show.
        self.commands: list[CommandInfo] = []
        self.buttons: dict[str, ButtonInfo] = {}

    # -------------------------------------------------------------- finding nodes

    async def own_node(self, conversation: Conversation, node_id: int) -> Node:
        node = await in_thread(self.history.node, node_id)
        if node is None or node.conversation_id != conversation.id:
            raise UserError("I can't find that image in your history any more.")
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

    async def line(self, conversation: Conversation) -> list[Node]:
        """The path from the root to the head, continued by the redo chain: what /history shows."""
        head = await self.head(conversation)
        line = await in_thread(self.history.path, head.id)
        while (after := await self.redo_target(line[-1])) is not None:
            line.append(after)
        return line

    async def redo_target(self, node: Node) -> Node | None:
        """The child we most recently came back from. Unadopted candidates (visit 0) are not on the way."""
        children = [child for child in await in_thread(self.history.children, node.id) if child.visit > 0]
        return max(children, key=lambda child: (child.visit, child.id), default=None)

    async def move(self, conversation: Conversation, node_id: int | None) -> Node | None:
        await in_thread(self.history.move_head, conversation.id, node_id)
        return None if node_id is None else await in_thread(self.history.node, node_id)

    def image(self, digest: str) -> Image.Image:
        """Blocking: decode a stored image (call through in_image_thread)."""
        return decode_stored(self.images.get(digest))

    # -------------------------------------------------------------- edits

    async def instruct(self, conversation: Conversation, parent: Node, text: str, send: Send, *,
                       checked: bool = True) -> None:
        """An instruction the person typed ("in the sky: make it a sunset" confines it to a region, else the
        conversation's region applies): checked for what the model cannot read before it costs GPU time, unless
        the person already said to run it anyway (checked=False)."""
        inline, instruction = regions.split_region(text)
        problem = await in_thread(instruction_problem, instruction, self.count_tokens) if checked else None
        if problem is not None:
            await in_thread(self.history.hold_back, conversation.id, parent.id, text)
            raise UserError(problem)
        await self.edit(conversation, parent, instruction, conversation.settings, send,
                        region=inline or conversation.region)

    async def edit(self, conversation: Conversation, parent: Node, instruction: str, params: EditParams,
                   send: Send, *, region: Region | None = None) -> Node:
        """Edit `parent` with `instruction` (inside `region` only, when given); the result becomes a child of parent
        and the new head. A region whose words name nothing in the picture is refused before any GPU time."""
        params = params.validated()
        if not instruction:
            raise BadParams("Tell me what to change, for example “make it night”.")
        if region is not None:
            await self.require_region(parent, region, send)
        job = EditJob(conversation.id, conversation.key.person, parent.id, parent.image_hash, instruction, params,
                      region=region)
        [node] = await self.run(job, send)
        await send(await self.show(node, caption(node)))
        return node

    async def rerun(self, conversation: Conversation, node: Node, params: EditParams, send: Send) -> None:
        """Edit node's parent again with node's instruction: a sibling of node."""
        if node.parent_id is None:
            raise UserError("That is the original photo: send an instruction to edit it.")
        if not is_model_edit(node):
            raise UserError("That was an exact edit, not the model's: send an instruction to edit the image.")
        parent = await in_thread(self.history.node, node.parent_id)
        await self.edit(conversation, parent, node.instruction, params, send, region=node.region)

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

    async def run(self, job: EditJob, send: Send) -> list[Node]:
        """Queue a job, relay its progress, and return the nodes it recorded."""
        return await self.follow(self.queue.submit(job), send)

    async def follow(self, queued: TrackedJob, send: Send) -> list[Node]:
        """Relay a queued job's progress to `send`; then the nodes it recorded (or its error)."""
        async for update in queued.updates():
            await send(progress(queued.id, update))
        return await queued.result

    async def show(self, node: Node, text: str) -> ImageReply:
        """An image reply for a node, with the buttons that make sense on it."""
        data = await in_image_thread(lambda: stored_as_png(self.images.get(node.image_hash)))
        actions = []
        if node.parent_id is not None:
            actions.append("undo")
        if await self.redo_target(node) is not None:
            actions.append("redo")
        if is_model_edit(node):
            actions += ["retry", "stronger", "weaker"]
        if node.parent_id is not None:
            actions.append("compare")
        buttons = tuple(Button(self.buttons[action].label, Press(action, node.id)) for action in actions)
        return ImageReply(data, text, node.id, buttons)


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
