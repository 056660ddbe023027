"""The small interfaces the engine needs from the outside world. Storage implements the first two, the editing
package the third; tests use in-memory fakes. Everything here is synchronous: the engine calls it from worker threads
so the event loop never waits on a disk, a database or the model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

from PIL import Image

from core.domain import ChatKey, Conversation, EditParams, Node, Translation

if TYPE_CHECKING:  # core.jobs imports this module
    from core.jobs import EditJob


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

    def add_node(
        self,
        conversation_id: int,
        parent_id: int | None,
        image_hash: str,
        instruction: str | None,
        params: EditParams | None,
        seconds: float | None,
        make_head: bool = True,
        translation: Translation | None = None,
    ) -> Node:
        """Record a node and make it the head, in one transaction. The image must already be in the store.

        instruction is what the model was given; translation, the person's own words when that is a translation.

        make_head=False records a candidate (a sweep cell, a variation): a child that is not visited (visit 0) until
        someone adopts it with move_head. Raises ValueError if the parent belongs to another conversation.
        """

    def move_head(self, conversation_id: int, node_id: int | None) -> Conversation:
        """Make node_id the head (None: no current image) and raise its visit counter.

        Raises ValueError if the node belongs to another conversation.
        """

    def save_settings(self, conversation_id: int, settings: EditParams) -> Conversation: ...

    def referenced_images(self) -> set[str]:
        """Every image hash some node refers to, for the image store's sweep."""

    def purge_before(self, cutoff: datetime) -> int:
        """Retention: delete every edit tree whose newest node was made before cutoff, whole, one transaction per
        conversation, clearing heads that pointed into it (conversations and settings stay). Returns how many nodes
        were deleted; sweep the image store afterwards."""

    def edit_counts(self, since: datetime, limit: int) -> list[tuple[str, int]]:
        """Usage: people ("platform:user_id", across their chats) by the edits they made since `since`, most
        first, at most limit."""


class ImageStore(Protocol):
    """Content-addressed image bytes (PNG). `put` is durable before it returns: written to a temporary file,
    fsynced and renamed, so a row that refers to the hash can be committed safely afterwards."""

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


JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED_STATES: frozenset[str] = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class JobRecord:
    """One edit job as the job table holds it (distributed mode): the row is the truth about the job.

    frontend: the front-end that submitted it and delivers its result (re-attached after a restart).
    worker/heartbeat: who runs it and when it last reported a step; a stale heartbeat lets another worker take over.
    node_ids: the nodes recorded once done. error: the one human line of a failed or cancelled job.
    delivered: the outcome reached the front-end.
    """

    id: str
    job: EditJob
    frontend: str
    state: JobState
    worker: str | None
    attempts: int
    step: int
    total: int
    node_ids: tuple[int, ...]
    error: str | None
    delivered: bool
    created_at: datetime
    heartbeat_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


class JobRepository(Protocol):
    """Edit jobs of the distributed mode. Every method is one transaction. The job id is the idempotency key: a job
    delivered twice (a worker died, the broker redelivered) is recorded once."""

    def create(self, job_id: str, job: EditJob, frontend: str) -> JobRecord:
        """Record a queued job; creating an existing id returns the existing row unchanged."""

    def get(self, job_id: str) -> JobRecord | None: ...

    def claim(self, job_id: str, worker: str, stale_after: float) -> tuple[JobRecord | None, bool]:
        """Take the job for `worker`: (the row, True) if it was queued, or running with no heartbeat for
        `stale_after` seconds (its worker died). (row, False) when it is finished or alive elsewhere; (None, False)
        for an unknown id."""

    def progress(self, job_id: str, step: int, total: int) -> None:
        """Record a denoising step; doubles as the running worker's heartbeat."""

    def complete(self, job_id: str, results: Sequence[tuple[str, EditParams, float]]) -> list[Node]:
        """Record the job's nodes (image digest, params used, seconds each; the images already stored) AND mark the
        job done, in one transaction. Idempotent: for a job already done, the nodes it recorded, never new ones.
        Raises ValueError for an unknown job, or one failed or cancelled meanwhile (nothing is recorded)."""

    def fail(self, job_id: str, error: str, *, cancelled: bool = False) -> JobRecord | None:
        """Mark an unfinished job failed (or cancelled) with the line to show; a finished job is left as it is."""

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel the job if it is still queued (a running one is stopped by its worker). Returns the row."""

    def mark_delivered(self, job_id: str) -> None: ...

    def undelivered(self, frontend: str) -> list[JobRecord]:
        """The front-end's jobs whose outcome it has not delivered yet, oldest first: re-attached on restart."""


class Translator(Protocol):
    """Turns an instruction into English for the editor (core/translation.py). Blocking; thread-safe."""

    def translate(self, text: str, source_language: str) -> str:
        """The English of `text`, written in `source_language` (a name like "French", as core.hints reports it).
        May return the text unchanged or empty when it cannot translate it; the caller holds such a text back."""
