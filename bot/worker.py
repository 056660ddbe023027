"""`editbot worker`: one process per GPU. Loads the model once, then runs edit jobs from the Taskiq stream broker.

A job is acknowledged to the broker only after it ran, so a worker killed mid-edit leaves its delivery pending and
another worker gets it again after `redeliver_seconds`. The job row decides what happens: a job already done is not
run again, a job whose worker still reports steps is waited for, and `JobRepository.complete` records the nodes and
marks the job done in one transaction. So every job is recorded exactly once, however often it is delivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import redis
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

from bot.distributed import FAILED_ON_OUR_SIDE, TASK_NAME, Keys, make_broker
from core.errors import EditCancelled, UserError
from core.jobs import EditRunner
from core.ports import JobRecord, JobRepository

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
"""At most how often a running job's row is touched (its heartbeat)."""


class EditWorker:
    """Runs one job at a time, by id, against the job table. Blocking: call `process` from a worker thread."""

    def __init__(
        self,
        runner: EditRunner,
        jobs: JobRepository,
        redis_client: redis.Redis,
        *,
        queue_name: str,
        name: str | None = None,
        stale_after: float = 120.0,
    ) -> None:
        self.runner = runner
        self.jobs = jobs
        self.redis = redis_client
        self.keys = Keys(queue_name)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.stale_after = stale_after
        # Beat well within stale_after, or a live job could look dead to a worker it was redelivered to.
        self.heartbeat_seconds = min(HEARTBEAT_SECONDS, stale_after / 4)

    def process(self, job_id: str) -> None:
        """Run the job if nobody has (or is still) running it; record the outcome in the job row."""
        record = self._claim(job_id)
        if record is None:
            return
        self.redis.zrem(self.keys.waiting, job_id)
        self.redis.publish(self.keys.moved, job_id)
        self._tell(record, kind="started")
        cancel = threading.Event()
        last_heartbeat = time.monotonic()

        def on_step(done: int, total: int) -> None:
            nonlocal last_heartbeat
            if self.redis.exists(self.keys.cancel(job_id)):
                cancel.set()  # the editor stops at its next step
            # The row's step doubles as the heartbeat; a write per second is plenty and spares the database.
            if time.monotonic() - last_heartbeat >= self.heartbeat_seconds:
                last_heartbeat = time.monotonic()
                self.jobs.progress(job_id, done, total)
            self._tell(record, kind="step", done=done, total=total)

        try:
            if self.redis.exists(self.keys.cancel(job_id)):
                raise EditCancelled("Edit cancelled.")
            results = self.runner.render(record.job, on_step, cancel)
            self.jobs.complete(job_id, results)
        except UserError as error:
            self.jobs.fail(job_id, str(error), cancelled=isinstance(error, EditCancelled))
        except Exception:
            log.exception("job %s failed", job_id)
            self.jobs.fail(job_id, FAILED_ON_OUR_SIDE)
        finally:
            self._tell(record, kind="finished")
            self.redis.delete(self.keys.cancel(job_id))

    def _claim(self, job_id: str) -> JobRecord | None:
        """The job row, claimed for this worker; None when there is nothing to run. A job running on a live worker
        (delivered again because it ran longer than redeliver_seconds) is waited for until it ends or that worker
        stops reporting."""
        while True:
            while self.redis.exists(self.keys.paused):  # an admin paused the queue: start nothing new
                time.sleep(0.5)
            record, claimed = self.jobs.claim(job_id, self.name, self.stale_after)
            if record is None:
                log.warning("job %s is not in the job table; dropped", job_id)
                return None
            if claimed:
                if record.attempts > 1:
                    log.warning("job %s taken over from a worker that stopped (attempt %d)", job_id, record.attempts)
                return record
            if record.finished:
                self._tell(record, kind="finished")  # in case the front-end missed it
                return None
            time.sleep(min(1.0, self.stale_after / 4))

    def _tell(self, record: JobRecord, **event) -> None:
        self.redis.publish(self.keys.events(record.frontend), json.dumps({"job": record.id, **event}))


async def serve(worker: EditWorker, redis_url: str, queue_name: str, redeliver_seconds: float,
                on_ready: Callable[[], None] | None = None) -> None:
    """Listen for jobs until cancelled: one at a time, acknowledged once run. on_ready: called once connected."""
    broker = make_broker(redis_url, queue_name, redeliver_seconds=redeliver_seconds, consumer_name=worker.name)

    async def edit(job_id: str) -> None:
        await asyncio.to_thread(worker.process, job_id)

    broker.register_task(edit, task_name=TASK_NAME)
    await broker.startup()
    if on_ready is not None:
        on_ready()
    try:
        await run_receiver_task(broker, max_async_tasks=1, max_prefetch=0, ack_time=AcknowledgeType.WHEN_EXECUTED)
    finally:
        await broker.shutdown()


def run_worker(settings, *, editor=None, on_ready: Callable[[], None] | None = None) -> None:
    """`editbot worker`: build the editor (the model loads here, once), the storage, and serve until interrupted.
    Pass `editor` to skip loading the model (tests, benchmarks)."""
    from bot.bootstrap import build_editor, build_storage, warm_up
    from storage.database import make_engine
    from storage.jobs import SqlJobRepository

    options = settings.distributed
    history, images = build_storage(settings)
    jobs = SqlJobRepository(make_engine(settings.storage.url))
    if editor is None:
        editor = build_editor(settings)
        if settings.ops.warmup:
            warm_up(editor)
    if options.worker_batch_size > 1:
        # Batching jobs needs one model call over several photos and instructions; the editor's edit_batch renders
        # variants of one photo only. So the setting is accepted, and jobs run one by one.
        log.warning("EDITBOT_WORKER_BATCH_SIZE=%d: the editor cannot batch different photos yet; jobs run one by one",
                    options.worker_batch_size)
    worker = EditWorker(
        EditRunner(editor, history, images),
        jobs,
        redis.Redis.from_url(options.redis_url),
        queue_name=options.queue_name,
        stale_after=options.redeliver_seconds,
    )
    log.info("worker %s ready", worker.name)
    asyncio.run(serve(worker, options.redis_url, options.queue_name, options.redeliver_seconds, on_ready))
