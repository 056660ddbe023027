"""What the front-end keeps about each job it follows, and how a finished job counts in the metrics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bot.distributed.jobs import JobRecord
from core.errors import INTERNAL_FAILURE
from core.metrics import EditObserver
from core.ports import TrackedJob


@dataclass(eq=False)
class DistributedJob(TrackedJob):
    """A job as the front-end follows it while a worker somewhere runs it. timed_from: when (time.monotonic) this
    front-end saw it start, or began following it if it has not seen that: where its edit time is measured from;
    None for a job that ended while this front-end was away. unserved: queued for a model no live worker served
    (the person was told); its queue position is announced once one does. cancelling: the person cancelled it."""

    started: bool = False
    timed_from: float | None = field(default_factory=time.monotonic)
    announced: int | None = None
    enqueued: asyncio.Task | None = None
    last_step: int = 0
    unserved: bool = False
    cancelling: bool = False


def observe_outcome(observer: EditObserver, handle: DistributedJob, record: JobRecord) -> None:
    """Tell the observer how a finished job ended, counted as EditQueue counts the edits it runs: a job cancelled
    before any worker took it is not an edit that ran, and one that ended while this front-end was away is left
    out (it was not seen running). The time is from the start this front-end saw to now; a failure's kind is the
    one its row keeps (core.errors.failure_kind, as EditQueue reports it)."""
    if handle.timed_from is None:
        return
    if record.state == "done":
        observer.edit_succeeded(time.monotonic() - handle.timed_from)
    elif record.state == "cancelled" and record.worker is None:
        return  # cancelled while it waited: not an edit that ran
    else:
        observer.edit_failed(record.failure_kind or INTERNAL_FAILURE)
