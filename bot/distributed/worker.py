"""`editbot worker`: one process per GPU. Loads the model once, then runs edit jobs from the Taskiq stream broker.

A job is acknowledged to the broker only after it ran, so a worker killed mid-edit leaves its delivery pending and
another worker gets it again: once the killed worker's lease lapses (bot.distributed.upkeep), or after
`redeliver_seconds` at the latest. The job row decides what happens: a job already done is not
run again, a job whose worker still reports steps is waited for, and `JobRepository.complete` records the nodes and
marks the job done in one transaction. So every job is recorded exactly once, however often it is delivered.

With EDITBOT_WORKER_BATCH_SIZE=N > 1 a worker that has nothing in hand reads up to N jobs at once (those waiting, and
those arriving within BATCH_WINDOW_SECONDS of the first), and runs the compatible ones (same working size, steps and
scheduler) as one `Editor.edit_many` call; the others run in their own calls. Each job is still claimed, recorded and
acknowledged on its own, so the guarantees above hold for every job of a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence

import redis
from PIL import Image
from redis.asyncio import Redis as AsyncRedis
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

from bot.distributed.broker import BatchingStreamBroker, Deliveries, make_broker
from bot.distributed.jobs import JobRecord, JobRepository, SqlJobRepository
from bot.distributed.keys import TASK_NAME, Keys
from bot.distributed.outage import DATABASE, IMAGE_STORE, REDIS, Outages
from bot.distributed.serving import (
    DEFAULT_MODEL,
    keep_serving,
    start_serving,
    stop_serving,
)
from bot.distributed.upkeep import TIDY_EVERY_SECONDS, keep_tidy, renew_lease
from core.errors import EDIT_FAILED_ON_OUR_SIDE, EditCancelled, UserError, failure_kind
from core.runner import EditRunner
from storage.database import make_engine

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
"""At most how often a running job's row is touched (its heartbeat)."""


class EditWorker:
    """Runs jobs by id against the job table: one at a time (`process`) or delivered together (`process_batch`).
    Blocking: call from a worker thread."""

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
        # A random part too: a restarted container keeps its host name and often its pid, and must not inherit the
        # dead worker's lease, consumer and running job.
        self.name = name or f"{socket.gethostname()}:{secrets.token_hex(3)}:{os.getpid()}"
        self.stale_after = stale_after
        # Beat well within stale_after, or a live job could look dead to a worker it was redelivered to.
        self.heartbeat_seconds = min(HEARTBEAT_SECONDS, stale_after / 4)
        # Redis, the database or the image store out: what a job needs is retried until it is back (the delivery
        # stays unacknowledged meanwhile); progress, events and cancel checks are skipped, never fatal to the edit.
        self.outages = Outages()

    def process(self, job_id: str) -> None:
        """Run the job if nobody has (or is still) running it; record the outcome in the job row."""
        record = self._claim(job_id)
        if record is not None:
            self._run([record])

    def process_batch(self, job_ids: Sequence[str]) -> None:
        """Run jobs delivered together: compatible plain edits in one `EditRunner.render_many` call, the others on
        their own. Each job is claimed just before its call and recorded in its own row, as `process` does; one
        running on another live worker is waited for afterwards."""
        if len(job_ids) == 1:
            self.process(job_ids[0])
            return
        groups, photos = self._compatible_groups(job_ids)
        busy_elsewhere = []
        for group in groups:
            self._wait_while_paused()
            records = []
            for job_id in group:
                record, busy = self._take(job_id)
                if record is not None:
                    records.append(record)
                elif busy:
                    busy_elsewhere.append(job_id)
            if records:
                self._run(records, photos)
        for job_id in busy_elsewhere:
            self.process(job_id)

    def _compatible_groups(self, job_ids: Sequence[str]) -> tuple[list[list[str]], dict[str, Image.Image]]:
        """The job ids grouped by the editor's batch_key (first come first), and the photos loaded to tell it. Jobs
        with variants (already one batched call), finished, unknown, or that cannot be grouped (their photo cannot be
        read, say) run alone: the single path reports what is wrong with them."""
        groups: dict[object, list[str]] = {}
        photos: dict[str, Image.Image] = {}
        for job_id in job_ids:
            key: object = job_id
            record = self.outages.retry(lambda: self.jobs.get(job_id), DATABASE)
            if record is not None and not record.finished and not record.job.variants and not record.job.references:
                try:
                    photo = self.runner.photo(record.job)
                    editor = self.runner.editor_for(record.job.params)
                    key = ("batch", record.job.params.model, editor.batch_key(photo, record.job.params))
                except Exception:
                    log.warning("job %s cannot be grouped; it runs alone", job_id, exc_info=True)
                else:
                    photos[job_id] = photo
            groups.setdefault(key, []).append(job_id)
        return list(groups.values()), photos

    def _run(self, records: list[JobRecord], photos: dict[str, Image.Image] | None = None) -> None:
        """Run claimed jobs, one alone or several compatible ones (`photos` loaded) in one call, and record each
        outcome. A job cancelled meanwhile is dropped and told at once; the others carry on. When a call of several
        fails (a flagged result, bad params...), each of its jobs runs again alone, so one job's problem never fails
        another's."""
        self._wait_while_paused(records)  # a pause that came between the check before claiming and the claim
        live = {record.id: record for record in records}  # the jobs not cancelled
        for record in records:
            for waiting in self.keys.waiting_sets(record.job.params.model):
                self.outages.attempt(lambda: self.redis.zrem(waiting, record.id), REDIS, None)
            self.outages.attempt(lambda: self.redis.publish(self.keys.moved, record.id), REDIS, None)
            self._tell(record, kind="started")
        cancel = threading.Event()
        last_heartbeat = time.monotonic()

        def on_step(done: int, total: int) -> None:
            nonlocal last_heartbeat
            self._drop_cancelled(live)
            if not live:
                cancel.set()  # the editor stops at its next step
                return
            # The row's step doubles as the heartbeat; a write per second is plenty and spares the database.
            if time.monotonic() - last_heartbeat >= self.heartbeat_seconds:
                last_heartbeat = time.monotonic()
                for job_id in live:
                    self.outages.attempt(lambda: self.jobs.progress(job_id, done, total), DATABASE, None)
            for record in live.values():
                self._tell(record, kind="step", done=done, total=total)

        self._drop_cancelled(live)
        running = list(live.values())
        if not running:
            return
        try:
            outcomes = self._render(running, photos, on_step, cancel)
        except Exception as error:
            if len(live) > 1 and not isinstance(error, EditCancelled):
                log.warning("a batch of %d jobs failed (%s); running them one by one", len(live), error,
                            exc_info=not isinstance(error, UserError))
                for record in list(live.values()):
                    self._run([record])
                return
            for record in list(live.values()):
                self._fail(record, error)
            return
        for record, results in zip(running, outcomes):
            if record.id in live:
                self._complete(record, results)

    def _render(self, running: list[JobRecord], photos: dict[str, Image.Image] | None, on_step, cancel) -> list:
        """The edits' results; tried again from the start while the image store or the database is out (the
        results are recorded only afterwards, so a try cut short leaves nothing behind)."""
        def render() -> list:
            if len(running) == 1:
                return [self.runner.render(running[0].job, on_step, cancel)]
            return self.runner.render_many([record.job for record in running],
                                           [photos[record.id] for record in running], on_step, cancel)

        return self.outages.retry(render, IMAGE_STORE, on_wait=lambda: self._tell_delayed(running))

    def _complete(self, record: JobRecord, results) -> None:
        try:
            self.outages.retry(lambda: self.jobs.complete(record.id, results), DATABASE,
                               on_wait=lambda: self._tell_delayed([record]))
        except Exception as error:  # e.g. the job row failed meanwhile: nothing was recorded
            self._fail(record, error)
        else:
            self._end(record)

    def _fail(self, record: JobRecord, error: BaseException) -> None:
        try:
            if isinstance(error, UserError):
                line, cancelled = str(error), isinstance(error, EditCancelled)
            else:
                log.error("job %s failed", record.id, exc_info=error)
                line, cancelled = EDIT_FAILED_ON_OUR_SIDE, False
            self.outages.retry(lambda: self.jobs.fail(record.id, line, failure_kind(error), cancelled=cancelled),
                               DATABASE)
        finally:
            self._end(record)

    def _end(self, record: JobRecord) -> None:
        self._tell(record, kind="finished")
        self.outages.attempt(lambda: self.redis.delete(self.keys.cancel(record.id)), REDIS, None)

    def _drop_cancelled(self, live: dict[str, JobRecord]) -> None:
        """Record as cancelled, and tell at once, the jobs of `live` someone cancelled; remove them from it."""
        job_ids = list(live)

        def cancel_flags() -> list:
            with self.redis.pipeline(transaction=False) as pipe:
                for job_id in job_ids:
                    pipe.exists(self.keys.cancel(job_id))
                return pipe.execute()

        flags = self.outages.attempt(cancel_flags, REDIS, [0] * len(job_ids))  # checked again next step
        for job_id, flagged in zip(job_ids, flags):
            if flagged:
                self._fail(live.pop(job_id), EditCancelled("Edit cancelled."))

    def _claim(self, job_id: str) -> JobRecord | None:
        """The job row, claimed for this worker; None when there is nothing to run. A job running on a live worker
        (delivered again because it ran longer than redeliver_seconds) is waited for until it ends or that worker
        stops reporting."""
        while True:
            self._wait_while_paused()
            record, busy = self._take(job_id)
            if not busy:
                return record
            time.sleep(min(1.0, self.stale_after / 4))

    def _take(self, job_id: str) -> tuple[JobRecord | None, bool]:
        """One try at claiming the job: (the row, False) when claimed; (None, True) while it runs on a live worker;
        (None, False) when there is nothing to run. A job whose worker's lease is gone (bot.distributed.upkeep) is
        taken over at once, without waiting for its heartbeat to go stale."""
        stale_after = self.stale_after
        while True:
            record, claimed = self.outages.retry(lambda after=stale_after: self.jobs.claim(job_id, self.name, after),
                                                 DATABASE)
            if record is None:
                log.warning("job %s is not in the job table; dropped", job_id)
                return None, False
            if claimed:
                if record.attempts > 1:
                    log.warning("job %s taken over from a worker that stopped (attempt %d)", job_id, record.attempts)
                return record, False
            if record.finished:
                self._tell(record, kind="finished")  # in case the front-end missed it
                return None, False
            if stale_after == 0 or self._worker_alive(record.worker):
                return None, True
            stale_after = 0

    def _worker_alive(self, name: str | None) -> bool:
        """Whether the worker of that name holds its lease; yes while Redis cannot tell. A lease missing is looked
        for again after a renewal period: a Redis that restarted without its data lost every lease at once, and live
        workers renew theirs within that period."""
        def holds_lease() -> bool:
            return bool(self.outages.attempt(lambda: self.redis.exists(self.keys.worker(name)), REDIS, 1))

        if name is None or holds_lease():
            return True
        time.sleep(TIDY_EVERY_SECONDS + 0.5)
        return holds_lease()

    def _wait_while_paused(self, claimed: Sequence[JobRecord] = ()) -> None:
        """Start nothing new while an admin paused the queue; the jobs already claimed keep their heartbeat."""
        while self.outages.retry(lambda: self.redis.exists(self.keys.paused), REDIS):
            for record in claimed:
                self.outages.attempt(lambda: self.jobs.progress(record.id, 0, 0), DATABASE, None)
            time.sleep(min(0.5, self.heartbeat_seconds))

    def _tell_delayed(self, records: Sequence[JobRecord]) -> None:
        """The people waiting for these jobs hear that storage is out and their edits go on once it is back."""
        for record in records:
            self._tell(record, kind="delayed")

    def _tell(self, record: JobRecord, **event) -> None:
        message = json.dumps({"job": record.id, **event})
        self.outages.attempt(lambda: self.redis.publish(self.keys.events(record.frontend), message), REDIS, None)


async def serve(worker: EditWorker, redis_url: str, queue_name: str, redeliver_seconds: float,
                on_ready: Callable[[], None] | None = None, *, batch_size: int = 1,
                models: Sequence[str] = (DEFAULT_MODEL,)) -> None:
    """Listen for the jobs of `models` (those this worker serves) until cancelled, each acknowledged once run: one at
    a time, or with batch_size > 1 up to that many read together and run as batches (see the module's docstring).
    on_ready: called once connected."""
    if batch_size == 1:
        broker = make_broker(redis_url, queue_name, redeliver_seconds=redeliver_seconds, consumer_name=worker.name,
                             models=models)

        async def edit(job_id: str) -> None:
            await asyncio.to_thread(worker.process, job_id)
    else:
        broker = make_broker(redis_url, queue_name, redeliver_seconds=redeliver_seconds, consumer_name=worker.name,
                             broker_class=BatchingStreamBroker, models=models)
        deliveries = broker.deliveries = Deliveries(worker.process_batch, batch_size)

        async def edit(job_id: str) -> None:
            await deliveries.run(job_id)

    broker.outages = worker.outages  # one line per change of Redis's state for the whole process
    broker.register_task(edit, task_name=TASK_NAME)
    await broker.startup()
    redis_client = AsyncRedis(connection_pool=broker.connection_pool)
    # The lease (one for all the streams read) is held before the first read, so a delivery never sits on a consumer
    # without one.
    await worker.outages.retry_async(lambda: renew_lease(redis_client, queue_name, worker.name), REDIS)
    tidying = asyncio.create_task(keep_tidy(redis_client, queue_name, broker.streams, broker.consumer_group_name,
                                            worker.name, broker.idle_timeout, worker.outages))
    await start_serving(redis_client, worker.keys, models, worker.name)
    serving = asyncio.create_task(keep_serving(redis_client, worker.keys, models, worker.name, worker.outages))
    if on_ready is not None:
        on_ready()
    try:
        # Room for exactly one read's jobs (max_prefetch=0): the rest stay in the streams for other workers.
        await run_receiver_task(broker, max_async_tasks=batch_size, max_prefetch=0,
                                ack_time=AcknowledgeType.WHEN_EXECUTED)
    finally:
        tidying.cancel()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tidying  # gives the lease up
        await stop_serving(redis_client, worker.keys, models, worker.name)
        await broker.shutdown()


def run_worker(settings, *, editor=None, on_ready: Callable[[], None] | None = None) -> None:
    """`editbot worker`: build the editor (the model loads here, once), the storage, and serve until interrupted.
    Pass `editor` to skip loading the model (tests, benchmarks)."""
    from bot.bootstrap import build_models, build_segmenter, build_storage, warm_up

    options = settings.distributed
    history, images = build_storage(settings)
    jobs = SqlJobRepository(make_engine(settings.storage.url))
    models = build_models(settings, editor)
    if editor is None:  # the default model loads now; the others on their first job
        default = models.editor()
        if settings.ops.warmup:
            warm_up(default, models.family(models.default).name)
    worker = EditWorker(
        EditRunner(None, history, images, output=settings.editor.output, segmenter=build_segmenter(settings),
                   models=models),
        jobs,
        redis.Redis.from_url(options.redis_url),
        queue_name=options.queue_name,
        stale_after=options.redeliver_seconds,
    )
    served = list(models.specs)
    log.info("worker %s ready (batch size %d), serving %s", worker.name, options.worker_batch_size, ", ".join(served))
    asyncio.run(serve(worker, options.redis_url, options.queue_name, options.redeliver_seconds, on_ready,
                      batch_size=options.worker_batch_size, models=served))
