"""The in-process job queue (a core.ports.JobQueue) in front of the single editor.

One edit runs at a time (one model, one GPU), first come first served. A conversation has at most one job running
or waiting, a person at most `max_waiting_per_person` waiting across their chats, and the queue at most
`max_waiting_total`. Jobs report their queue position and denoising steps as they go, and can be cancelled while
waiting or running. The model runs in a dedicated thread, so the event loop never blocks on it.

An admin may pause the queue: it then starts no new job (the running one finishes, waiting ones keep their places
and new ones still queue up) until resumed. An observer (core.metrics.EditObserver) hears how each edit ended; a
failure's kind is core.errors.failure_kind, the one distributed workers keep in the job row.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from core.domain import EditJob, Node
from core.errors import (
    EDIT_FAILED_ON_OUR_SIDE,
    EditCancelled,
    QueueFull,
    ShuttingDown,
    UserError,
    failure_kind,
)
from core.metrics import EditObserver, NoObserver, log_conversation
from core.ports import JobQueue, Position, QueueStatus, Step, TrackedJob
from core.runner import EditRunner

log = logging.getLogger(__name__)


@dataclass(eq=False)
class QueuedJob(TrackedJob):
    """A job in this process's queue, with the switch that cancels it while it runs."""

    cancel_event: threading.Event = field(default_factory=threading.Event)
    conversation_label: str | None = None  # for the logs: the conversation that asked, as the engine named it


SHUTDOWN_BEFORE_START = ("I'm restarting, so your edit did not start; nothing was changed. I'll offer to run it "
                         "again when I'm back.")
SHUTDOWN_WHILE_RUNNING = ("I had to restart before your edit finished; nothing was changed. I'll offer to run it "
                          "again when I'm back.")


STOP_SECONDS = 5.0
"""How long close() waits for a stopped edit to notice (the editor checks between denoising steps)."""


class EditQueue(JobQueue):
    """The in-process queue: this process runs the model, one edit at a time."""

    forgets_jobs_on_exit = True

    def __init__(
        self,
        runner: EditRunner,
        *,
        max_waiting_per_person: int = 1,
        max_waiting_total: int = 100,
        observer: EditObserver | None = None,
        shutdown_grace_seconds: float = 0.0,
    ) -> None:
        """shutdown_grace_seconds: how long close() lets the running edit finish before stopping it."""
        self._runner = runner
        self._grace = shutdown_grace_seconds
        self._closing = False
        self._observer = observer or NoObserver()
        self._paused = False
        self._max_per_person = max_waiting_per_person
        self._max_total = max_waiting_total
        self._waiting: deque[QueuedJob] = deque()
        self._running: QueuedJob | None = None
        self._wakeup = asyncio.Event()
        self._ids = itertools.count(1)
        # One thread: the model is not re-entrant and one edit at a time is the point of the queue.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="editor")
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="edit-queue")

    async def close(self) -> None:
        """Take no new edit, tell the waiting ones they did not start, let the running one finish within the grace
        period (then stop it). Every one of them stays noted in the history, to be offered again at start."""
        self._closing = True
        for job in list(self._waiting):
            self._waiting.remove(job)
            job.fail(ShuttingDown(SHUTDOWN_BEFORE_START))
        if (running := self._running) is not None:
            await asyncio.wait([running.result], timeout=self._grace)
            running.cancel_event.set()  # the editor stops at its next step
            await asyncio.wait([running.result], timeout=STOP_SECONDS)
            if not running.result.done():
                running.fail(ShuttingDown(SHUTDOWN_WHILE_RUNNING))
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        self._executor.shutdown(wait=True)

    def prepare(self, digest: str) -> None:
        """The runner shrinks the picture for its editor in the background (core.runner.EditRunner.prepare)."""
        self._runner.prepare(digest)

    def recovered(self) -> list[QueuedJob]:
        """Jobs re-attached at start: none, since in-process jobs end with the process (see bot.distributed)."""
        return []

    @property
    def depth(self) -> int:
        """Jobs waiting plus the one running."""
        return len(self._waiting) + (self._running is not None)

    @property
    def status(self) -> QueueStatus:
        return QueueStatus(self._running is not None, len(self._waiting), self._paused)

    async def pause(self) -> None:
        """Start no new job until resume(); the running one finishes, waiting ones stay (and are told why)."""
        self._paused = True
        self._announce_positions()

    async def resume(self) -> None:
        self._paused = False
        self._announce_positions()
        self._wakeup.set()

    def busy(self, conversation_id: int) -> bool:
        return self._job_of(conversation_id) is not None

    def submit(self, job: EditJob) -> QueuedJob:
        """Queue an edit. Raises QueueFull with a line the person can act on (ShuttingDown while closing)."""
        if self._closing:
            raise ShuttingDown(SHUTDOWN_BEFORE_START)
        if self.busy(job.conversation_id):
            raise QueueFull("You already have an edit on the way: wait for it, or send /cancel.")
        if sum(queued.job.person == job.person for queued in self._waiting) >= self._max_per_person:
            raise QueueFull("You have too many edits waiting: wait for one to finish, or send /cancel.")
        if len(self._waiting) >= self._max_total:
            raise QueueFull("I'm very busy right now: please try again in a minute.")
        queued = QueuedJob(next(self._ids), job, asyncio.get_running_loop().create_future(),
                           conversation_label=log_conversation.get())
        self._waiting.append(queued)
        queued.report(Position(self._ahead_of(queued), self._paused))
        self._wakeup.set()
        return queued

    def cancel(self, conversation_id: int) -> bool:
        """Cancel the conversation's waiting or running job. True if there was one."""
        job = self._job_of(conversation_id)
        if job is None:
            return False
        if job is self._running:
            job.cancel_event.set()  # the editor checks it every step
        else:
            self._drop(job)
            self._announce_positions()
        return True

    def _job_of(self, conversation_id: int) -> QueuedJob | None:
        if self._running is not None and self._running.owner == conversation_id:
            return self._running
        return next((job for job in self._waiting if job.owner == conversation_id), None)

    def _ahead_of(self, job: QueuedJob) -> int:
        return self._waiting.index(job) + (self._running is not None)

    def _drop(self, job: QueuedJob) -> None:
        self._waiting.remove(job)
        job.fail(EditCancelled("Edit cancelled."))

    def _announce_positions(self) -> None:
        for job in self._waiting:
            job.report(Position(self._ahead_of(job), self._paused))

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._waiting or self._paused:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            job = self._running = self._waiting.popleft()
            self._announce_positions()
            job.report(Position(0))

            def on_step(done: int, total: int, job: QueuedJob = job) -> None:
                loop.call_soon_threadsafe(job.report, Step(done, total))

            # Log lines of this job, here and in the editor thread, name its conversation.
            label = log_conversation.set(job.conversation_label)
            started = time.perf_counter()
            try:
                in_job_context = contextvars.copy_context().run
                result = await loop.run_in_executor(self._executor, in_job_context, self._run, job, on_step)
            except Exception as error:
                self._observer.edit_failed(failure_kind(error))
                if self._closing and isinstance(error, EditCancelled):  # stopped by close(), not by the person
                    job.fail(ShuttingDown(SHUTDOWN_WHILE_RUNNING))
                elif isinstance(error, UserError):
                    job.fail(error)
                else:  # a bug or a device failure: log it whole, tell the person one line
                    log.exception("edit %s failed", job.id)
                    job.fail(UserError(EDIT_FAILED_ON_OUR_SIDE))
            else:
                self._observer.edit_succeeded(time.perf_counter() - started)
                job.succeed(result)
            finally:
                log_conversation.reset(label)
                self._running = None
                job.end()  # also when the queue closes mid-edit

    def _run(self, queued: QueuedJob, on_step) -> list[Node]:
        if queued.cancel_event.is_set():
            raise EditCancelled("Edit cancelled.")
        return self._runner.run(queued.job, on_step, queued.cancel_event)
