"""The small interfaces core/ needs from the outside world: the edit history and the image store (storage/ implements
them), the editor (core/editing/ implements it) and the edit queue (core.queue in process,
bot.distributed.frontend for the distributed mode). Tests use in-memory fakes. The first three are synchronous: the
engine calls them through core/offload.py, so the event loop never waits on a disk, a database or the model.
"""

from __future__ import annotations

import asyncio
import threading
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from PIL import Image

from core.domain import ChatKey, Conversation, EditJob, EditParams, NewNode, Node, Region


class HistoryRepository(Protocol):
    """The edit tree of every conversation. Every method is one transaction: it happens whole or not at all."""

    def conversation(self, key: ChatKey) -> Conversation:
        """The conversation of this person in this chat, created on first use with default settings."""

    def conversation_by_id(self, conversation_id: int) -> Conversation | None: ...

    def node(self, node_id: int) -> Node | None: ...

    def children(self, node_id: int) -> list[Node]:
        """Direct children, oldest first."""

    def path(self, node_id: int) -> list[Node]:
        """From the root down to this node, inclusive."""

    def tree(self, node_id: int) -> list[Node]:
        """Every node of the tree node_id belongs to (its root and all the root's descendants, candidates
        included), oldest first; empty for an unknown node."""

    def roots(self, conversation_id: int) -> list[Node]:
        """The photos this conversation started from (the roots of its trees), newest first."""

    def add_node(self, new: NewNode) -> Node:
        """Record a node and make it the head, in one transaction. The image must already be in the store.

        new.make_head=False records a candidate (a sweep cell, a variation): a child that is not visited (visit 0)
        until someone adopts it with move_head. Raises ValueError if the parent belongs to another conversation.
        """

    def move_head(self, conversation_id: int, node_id: int | None) -> Conversation:
        """Make node_id the head (None: no current image), raise its visit counter and count it as used now.

        Raises ValueError if the node belongs to another conversation.
        """

    def touch(self, node_id: int) -> bool:
        """Count the node as used now (a button pressed on it, an edit of it starting): retention keeps its tree.
        False if there is no such node (any more)."""

    def save_settings(self, conversation_id: int, settings: EditParams) -> Conversation: ...

    def save_references(self, conversation_id: int, digests: Sequence[str]) -> Conversation:
        """Keep the reference pictures (image digests, in order) the next model edit takes (/ref); empty clears
        them. ValueError if the conversation is unknown."""

    def save_region(self, conversation_id: int, region: Region | None) -> Conversation:
        """Store the region instructions edit (/only, /except; None: the whole picture). ValueError if unknown."""

    def save_offer(self, conversation_id: int, node_ids: Sequence[int]) -> None:
        """Remember the cells of the grid just offered (/sweep, /variations), in order, for /pick N. Raises
        ValueError if a cell belongs to another conversation."""

    def offer(self, conversation_id: int) -> list[int]:
        """The cells of the last grid offered; empty if none."""

    def hold_back(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep an instruction a hint held back, with the node it was meant for, for /anyway (replacing any
        earlier one). Raises ValueError if the node belongs to another conversation."""

    def take_held_back(self, conversation_id: int) -> tuple[int, str] | None:
        """The held-back (parent id, instruction), forgotten as it is returned; None if there is none."""

    def note_edit(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep the conversation's edit while it waits or runs in this process (replacing any earlier one)."""

    def forget_edit(self, conversation_id: int) -> None:
        """The conversation's edit ended (done, failed, cancelled): nothing to offer again."""

    def take_interrupted_edits(self) -> list[tuple[Conversation, int, str]]:
        """Every kept edit, as (conversation, parent id, instruction), forgotten as they are returned: at start-up
        these are the edits a restart interrupted. An edit whose parent is gone is forgotten without being listed."""

    def referenced_images(self) -> set[str]:
        """Every image hash some node refers to (its picture or a reference picture it was given) or a
        conversation keeps for its next edit, for the image store's sweep."""

    def note_reference(self, digest: str, stored_bytes: int) -> None:
        """Record what a reference picture (/ref) takes in the image store, for stored_bytes."""

    def stored_bytes(self, person: str) -> int:
        """What the pictures of a person's ("platform:user_id") nodes take in the image store, across their chats,
        with the reference pictures their edits were given or their chats keep for the next edit (as noted by
        note_reference); a picture counted once however often it is used."""

    def purge_before(self, cutoff: datetime) -> int:
        """Retention: delete every edit tree whose nodes were all made and last used before cutoff, whole, one transaction per
        conversation, clearing heads that pointed into it (conversations and settings stay). Returns how many nodes
        were deleted; sweep the image store afterwards."""

    def edit_counts(self, since: datetime, limit: int) -> list[tuple[str, int]]:
        """Usage: people ("platform:user_id", across their chats) by the edits they made since `since`, most
        first, at most limit."""


class ImageStore(Protocol):
    """Content-addressed image bytes (lossless JPEG XL; an upload's own JPEG without metadata; WebP and PNG of older
    nodes). `put` is durable before it returns:
    written to a temporary file, fsynced and renamed, so a row that refers to the hash can be committed safely
    afterwards."""

    def put(self, data: bytes) -> str:
        """Store the bytes and return their SHA-256 hex digest."""

    def get(self, digest: str) -> bytes:
        """The bytes for a digest; KeyError if unknown."""

    def exists(self, digest: str) -> bool: ...

    def sweep(self, keep: set[str]) -> int:
        """Delete stored files whose digest is not in keep (and that are older than a grace period, so a file
        put just before its row is committed survives). Returns how many were removed."""


ProgressCallback = Callable[[int, int], None]
"""Called from the editing thread as (step done, total steps)."""


@dataclass(frozen=True)
class EditResult:
    image: Image.Image
    params: EditParams  # seed always set: the one actually used
    seconds: float


class Editor(Protocol):
    """Runs InstructPix2Pix. Blocking; called from one worker thread at a time."""

    def edit(
        self,
        image: Image.Image,
        instruction: str,
        params: EditParams,
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """Edit an RGB image (any size: the editor picks the working resolution and returns the result at it).

        Raises BadParams for out-of-range params, EditCancelled when cancel is set (checked every step),
        UnsafeImage when the safety checker flags the result.
        """

    def edit_batch(
        self,
        image: Image.Image,
        instruction: str,
        variants: Sequence[EditParams],
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[EditResult]:
        """Several renders of one photo and instruction in as few model calls as possible (the photo and the text
        are encoded once). Variants may differ in guidance and seed, not in steps or scheduler. Each result equals
        what `edit` gives for that variant alone."""

    def edit_many(
        self,
        requests: Sequence[tuple[Image.Image, str, EditParams]],
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[EditResult]:
        """Several edits (photo, instruction, params) in as few model calls as possible: a worker's compatible jobs.
        They must share `batch_key` (BadParams otherwise); each result equals what `edit` gives for it alone.
        on_step and cancel cover the whole batch; UnsafeImage when the checker flags any result."""

    def batch_key(self, image: Image.Image, params: EditParams) -> tuple:
        """Edits with equal keys (working size, steps, scheduler) can run together in one `edit_many` call."""

    def working_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size the editor edits a picture of `size` at: an input already at it is edited as it is, so the
        caller can shrink a full-size photo once and bring the change back up to full size (core.editing.transfer)."""


class Segmenter(Protocol):
    """Finds what words name in a picture (e.g. CLIPSeg). Blocking; called from worker threads."""

    def mask(self, image: Image.Image, words: str) -> Image.Image:
        """An "L" mask at the image's size: 255 where `words` are, 0 elsewhere, soft in between."""


@dataclass(frozen=True)
class Position:
    """The job waits with `ahead` jobs in front of it (the running one included); paused: an admin paused the queue,
    so it starts only once they resume it."""

    ahead: int
    paused: bool = False


@dataclass(frozen=True)
class Step:
    done: int
    total: int


@dataclass(frozen=True)
class Delayed:
    """The job waits for storage that does not answer (the database, the image store); it goes on by itself once
    that is back, nothing lost. why: another reason it waits, told instead (no worker serves its model yet)."""

    why: str = ""


@dataclass(frozen=True)
class QueueStatus:
    """What an admin sees: whether an edit runs, how many wait, whether the queue is paused."""

    running: bool
    waiting: int
    paused: bool


@dataclass(eq=False)
class TrackedJob:
    """A job as a front-end follows it, whichever queue runs it: progress (`updates`), then the outcome (`result`:
    the nodes recorded, or the UserError to show). The queue running it reports through `report`, `succeed`,
    `fail` and `end`."""

    id: int | str
    job: EditJob
    result: asyncio.Future[list[Node]]
    _events: asyncio.Queue[Position | Step | Delayed | None] = field(default_factory=asyncio.Queue)
    _ended: bool = field(default=False, init=False)

    @property
    def owner(self) -> int:
        return self.job.conversation_id

    async def updates(self) -> AsyncIterator[Position | Step | Delayed]:
        """Progress until the job ends (successfully or not); then await `result`."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def report(self, update: Position | Step | Delayed) -> None:
        """Queue side: pass on where the job stands. Call from the event loop."""
        self._events.put_nowait(update)

    def succeed(self, nodes: list[Node]) -> None:
        """Queue side: the job recorded `nodes`; its updates end. No effect on a job already settled."""
        if not self.result.done():
            self.result.set_result(nodes)
        self.end()

    def fail(self, error: BaseException) -> None:
        """Queue side: the job ended without a result; its updates end. No effect on a job already settled."""
        if not self.result.done():
            self.result.set_exception(error)
        self.end()

    def end(self) -> None:
        """Queue side: no more updates (the result is settled, or the queue is closing). Idempotent."""
        if not self._ended:
            self._ended = True
            self._events.put_nowait(None)


class JobQueue(Protocol):
    """What the engine needs from an edit queue. Implementations subclass it (so a missing method is an error when
    the queue is made, not when someone first uses it)."""

    forgets_jobs_on_exit: bool = False
    """True for a queue whose jobs end with its process: the engine then keeps each conversation's edit in the
    history while it waits or runs, and offers the ones a restart interrupted again at start."""

    @abstractmethod
    async def start(self) -> None:
        """Start taking jobs (and, for a queue that outlives its process, re-attach the ones not yet delivered)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop following jobs and release what the queue holds."""

    @abstractmethod
    def submit(self, job: EditJob) -> TrackedJob:
        """Queue an edit. Raises QueueFull with a line the person can act on."""

    @abstractmethod
    def cancel(self, conversation_id: int) -> bool:
        """Cancel the conversation's waiting or running job. True if there was one."""

    @abstractmethod
    def busy(self, conversation_id: int) -> bool:
        """Whether the conversation has a job waiting or running."""

    @abstractmethod
    def recovered(self) -> list[TrackedJob]:
        """Jobs re-attached by start(): submitted before a restart, not yet delivered."""

    def prepare(self, digest: str) -> None:
        """A hint, from the event loop: the stored picture `digest` (a photo just stored) is likely to be edited next.
        A queue running the model in this process gets it ready meanwhile, in the background; by default, nothing."""

    def deliver_reattached(self, deliver: Callable[[TrackedJob], None]) -> None:
        """Hand `deliver` each job re-attached from now on, after start() (a distributed front-end taking on those
        of one that stopped), to relay to its conversation. The in-process queue re-attaches none."""

    @property
    @abstractmethod
    def depth(self) -> int:
        """Jobs waiting plus those running (for /healthz and the queue-depth metric)."""

    @property
    @abstractmethod
    def status(self) -> QueueStatus: ...

    @abstractmethod
    async def pause(self) -> None:
        """Admin: start no new job until resume(); running ones finish, waiting ones keep their places. Returns once
        the pause is in force (a distributed queue: once every worker sees it)."""

    @abstractmethod
    async def resume(self) -> None: ...


class Translator(Protocol):
    """Turns an instruction into English for the editor (core/translation.py). Blocking; thread-safe."""

    def translate(self, text: str, source_language: str) -> str:
        """The English of `text`, written in `source_language` (a name like "French", as core.hints reports it).
        May return the text unchanged or empty when it cannot translate it; the caller holds such a text back."""
