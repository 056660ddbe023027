"""The front-end's edit queue: it hands jobs to `editbot worker` processes through Taskiq on Redis.

`DistributedQueue` is a core.ports.JobQueue, like the in-process core.queue.EditQueue, so the engine does not know
which one it has. What travels where (the Redis names: bot.distributed.keys):

- the job row (bot.distributed.jobs) is the truth: the front-end records it before queueing, workers claim and complete it;
- the job id goes through Taskiq's Redis *stream* broker, in its model's stream (read only by workers serving that
  model; with none, the person is told once and it waits: bot.distributed.serving): a delivery is acknowledged only
  after the job ran, so a job whose worker died is delivered again (after `redeliver_seconds`) and counts once;
- queue positions come from a Redis sorted set of the waiting jobs of each model (each model's workers take only
  its jobs, so a job waits for those alone); steps, start and end travel on a Redis pub/sub
  channel per front-end; a cancel is a Redis key the worker checks every step;
- a front-end that restarts re-attaches to its undelivered jobs (`recovered()`), and a slow poll of the job rows
  makes up for any pub/sub message lost while it was away.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable

from redis.asyncio import Redis

from bot.distributed.broker import ReclaimingStreamBroker
from bot.distributed.enqueue import Enqueuer
from bot.distributed.followed import DistributedJob, observe_outcome
from bot.distributed.identity import LEASE_SECONDS, FrontendLease
from bot.distributed.jobs import CANCELLED, CANCELLED_KIND, JobRecord, JobRepository
from bot.distributed.keys import CANCEL_FLAG_SECONDS, Keys
from bot.distributed.notices import announce_positions, tell_unserved
from bot.distributed.outage import DATABASE, REDIS, Outages, log_unless_outage
from bot.distributed.serving import DEFAULT_MODEL, routed, waiting_jobs
from core.domain import EditJob, Node
from core.errors import EDIT_FAILED_ON_OUR_SIDE, EditCancelled, QueueFull, UserError
from core.metrics import EditObserver, NoObserver
from core.ports import Delayed, HistoryRepository, JobQueue, Position, QueueStatus, Step

log = logging.getLogger(__name__)

GIVE_UP_SECONDS = 20.0
"""How long recording or queueing an edit (or a cancel) is retried while Redis or the database is out."""
RESTARTING = "I'm restarting: your edit will arrive when I'm back."


class DistributedQueue(JobQueue):
    """The JobQueue of a front-end, over Redis and the job table. One per front-end process; `frontend` names it in the job
    table so a restarted process re-attaches to its own jobs; the name is leased in Redis while the process lives
    (bot.distributed.identity): exact_frontend=False takes the next free NAME-2, NAME-3... when it is held, and takes on
    the jobs of those siblings once they stopped. The observer hears how each of its jobs ended, as EditQueue's does
    (see `observe_outcome`). default_model: the name jobs asking for the default model ("") run on. lease_seconds: how
    long its name stays held once it stopped renewing it (bot.distributed.identity)."""

    def __init__(
        self,
        broker: ReclaimingStreamBroker,
        redis: Redis,
        jobs: JobRepository,
        history: HistoryRepository,
        *,
        frontend: str,
        queue_name: str,
        max_waiting_per_person: int = 1,
        max_waiting_total: int = 100,
        poll_seconds: float = 2.0,
        observer: EditObserver | None = None,
        give_up_seconds: float = GIVE_UP_SECONDS,
        exact_frontend: bool = True,
        default_model: str = DEFAULT_MODEL,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self._broker = broker
        self._observer = observer or NoObserver()
        self._redis = redis
        self._jobs = jobs
        self._history = history
        self._frontend = frontend
        self._lease = FrontendLease(redis, Keys(queue_name), frontend, exact=exact_frontend, lease_seconds=lease_seconds)
        self._keys = Keys(queue_name)
        self._max_per_person = max_waiting_per_person
        self._poll_seconds = poll_seconds
        self._default_model = default_model  # what a job's model "" means: EDITBOT_MODELS' first
        self._handles: dict[str, DistributedJob] = {}
        self._recovered: list[DistributedJob] = []
        self._deliver_reattached: Callable[[DistributedJob], None] | None = None
        self._unserved_since: dict[str, float] = {}  # models the poll found without a worker, since when
        self._background: set[asyncio.Task] = set()
        self._listener: asyncio.Task | None = None
        self._pubsub = None
        self._paused = False
        self._outages = Outages()
        self._give_up_seconds = give_up_seconds
        self._enqueuer = Enqueuer(broker, redis, jobs, self._keys, self._outages, max_waiting_total=max_waiting_total,
                                  give_up_seconds=give_up_seconds, settle=lambda handle, error: self._settle(
                                      handle, exception=error), queued=self._queued)

    # ------------------------------------------------------------------ JobQueue

    async def start(self) -> None:
        """Connect, listen for this front-end's events, then re-attach to its jobs not yet delivered."""
        if self._listener is not None:
            return
        await self._broker.startup()
        self._frontend = await self._lease.take()  # no other live front-end hears this name's events
        self._paused = bool(await self._redis.exists(self._keys.paused))
        self._pubsub = self._redis.pubsub()
        # Subscribe before reading the job rows, so a job that ends in between is seen one way or the other.
        await self._pubsub.subscribe(self._keys.events(self._frontend), self._keys.moved)
        self._listener = asyncio.create_task(self._listen(), name="distributed-queue")
        self._recovered += await self._reattach(await asyncio.to_thread(self._jobs.undelivered, self._frontend))

    async def _reattach(self, records: list[JobRecord]) -> list[DistributedJob]:
        """Follow jobs recorded for this front-end's name by a process that stopped (this one's predecessor, or a
        sibling's whose jobs it took on)."""
        handles = []
        for record in records:
            handle = self._track(record.id, record.job)
            handles.append(handle)
            if record.finished:
                handle.timed_from = None  # it ran unseen: not observed
                await self._resolve(handle, record)
            elif record.state == "queued":
                # The process may have died between recording the job and queueing it: queue it (again). A job
                # delivered twice is claimed once; the other delivery sees it taken and is dropped.
                handle.enqueued = self._spawn(self._enqueuer.queue_or_give_up(handle, record.created_at.timestamp()))
            else:
                self._mark_started(handle)
        return handles

    async def close(self) -> None:
        """Stop following jobs. They carry on in the workers; a restarted front-end delivers their results."""
        for task in [self._listener, *self._background]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(task for task in [self._listener, *self._background] if task), return_exceptions=True)
        self._listener = None
        for handle in list(self._handles.values()):
            self._settle(handle, exception=UserError(RESTARTING))
            if not handle.result.cancelled():  # whoever followed it may be gone (Ctrl-C): no "never retrieved"
                handle.result.exception()
        await self._lease.release()
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._redis.aclose()  # the queue owns the client it was given
        await self._broker.shutdown()

    @property
    def frontend(self) -> str:
        """The name this front-end holds (after start(): the configured one, or a free variant of it)."""
        return self._frontend

    @property
    def depth(self) -> int:
        """This front-end's jobs not finished yet."""
        return len(self._handles)

    @property
    def status(self) -> QueueStatus:
        """This front-end's view: whether one of its edits runs, how many of its edits wait, whether paused."""
        started = [handle.started for handle in self._handles.values()]
        return QueueStatus(any(started), started.count(False), self._paused)

    async def pause(self) -> None:
        """Every worker starts no new job until resume(); running ones finish, waiting ones stay queued. Returns
        once the pause is in Redis, where every worker checks it before starting a job (and again once claimed)."""
        await self._set_paused(True)

    async def resume(self) -> None:
        await self._set_paused(False)

    async def _set_paused(self, paused: bool) -> None:
        def change():
            return self._redis.set(self._keys.paused, 1) if paused else self._redis.delete(self._keys.paused)

        try:
            await self._outages.retry_async(change, REDIS, give_up_after=self._give_up_seconds)
        except Exception as error:
            log_unless_outage(log, error, "could not change the pause")
            raise UserError("I can't reach the edit queue right now: please try again in a minute.") from None
        self._paused = paused

    def busy(self, conversation_id: int) -> bool:
        return any(handle.owner == conversation_id for handle in self._handles.values())

    def deliver_reattached(self, deliver: Callable[[DistributedJob], None]) -> None:
        self._deliver_reattached = deliver

    def recovered(self) -> list[DistributedJob]:
        """The jobs re-attached at start(): submitted before a restart, not yet delivered."""
        return list(self._recovered)

    def submit(self, job: EditJob) -> DistributedJob:
        """Queue an edit. Raises QueueFull for this person's limits; the global limit fails the handle's result."""
        if self.busy(job.conversation_id):
            raise QueueFull("You already have an edit on the way: wait for it, or send /cancel.")
        waiting = sum(handle.job.person == job.person and not handle.started for handle in self._handles.values())
        if waiting >= self._max_per_person:
            raise QueueFull("You have too many edits waiting: wait for one to finish, or send /cancel.")
        handle = self._track(uuid.uuid4().hex, job)
        handle.enqueued = self._spawn(self._enqueuer.create_and_queue(handle, self._frontend))
        return handle

    def cancel(self, conversation_id: int) -> bool:
        """Cancel the conversation's job, waiting or running. True if there was one."""
        handle = next((handle for handle in self._handles.values() if handle.owner == conversation_id), None)
        if handle is None:
            return False
        self._spawn(self._cancel(handle))
        return True

    # ------------------------------------------------------------------ queueing

    def _track(self, job_id: str, job: EditJob) -> DistributedJob:
        loop = asyncio.get_running_loop()
        handle = self._handles[job_id] = DistributedJob(job_id, routed(job, self._default_model), loop.create_future())
        return handle

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _queued(self, handle: DistributedJob) -> None:
        try:  # courtesies, after the job is safely queued: the next move announces positions again
            await tell_unserved(self._redis, self._keys, [handle])
            await self._announce_positions()
        except Exception as error:
            log_unless_outage(log, error, "could not announce positions")

    async def _cancel(self, handle: DistributedJob) -> None:
        if handle.enqueued is not None:
            await asyncio.gather(handle.enqueued, return_exceptions=True)
        try:
            await self._outages.retry_async(  # reaches a running worker
                lambda: self._redis.set(self._keys.cancel(handle.id), 1, ex=CANCEL_FLAG_SECONDS), REDIS,
                give_up_after=self._give_up_seconds)
            handle.cancelling = True
            record = await self._outages.retry_async(lambda: asyncio.to_thread(self._jobs.cancel, handle.id),
                                                     DATABASE, give_up_after=self._give_up_seconds)
            if record is not None and record.finished:
                await self._resolve(handle, record)
                await self._announce_positions()
            elif record is not None:
                await self._cancel_if_orphaned(handle, record)
        except Exception as error:
            log_unless_outage(log, error, "could not cancel job %s", handle.id)

    async def _cancel_if_orphaned(self, handle: DistributedJob, record: JobRecord) -> None:
        """End a cancelled job whose worker died (its lease is gone) at once: no worker would see the cancel flag
        until one took the job over, and the person could send nothing else meanwhile. Should a live worker hold
        it after all (Redis lost the lease), it stops at its next step, or finds the row cancelled when it records."""
        if record.worker is None or await self._redis.exists(self._keys.worker(record.worker)):
            return  # queued, or its live worker stops it at its next step
        record = await asyncio.to_thread(self._jobs.fail, handle.id, CANCELLED, CANCELLED_KIND, cancelled=True)
        if record is not None and record.state == "cancelled":  # no worker runs it now: nobody needs the flag
            await self._redis.delete(self._keys.cancel(handle.id))
        await self._resolve(handle, record)

    # ------------------------------------------------------------------ following jobs

    async def _listen(self) -> None:
        """Apply events from workers; poll the job rows now and then for anything pub/sub lost."""
        last_poll = last_renewal = time.monotonic()
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=self._poll_seconds)
                self._outages.fine(REDIS)
                if message is not None:
                    await self._on_message(message)
                if time.monotonic() - last_poll >= self._poll_seconds:
                    last_poll = time.monotonic()
                    # The events already here first: a job's row, read next, can be newer than its events (its
                    # start, the places it moved up), which would otherwise come after its result, and be dropped.
                    while message := await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0):
                        await self._on_message(message)
                    if await self._poll():
                        self._outages.fine(DATABASE)
                if time.monotonic() - last_renewal >= self._lease.lease_seconds / 3:
                    await self._lease.renew()
                    last_renewal = time.monotonic()
                    await self._adopt_abandoned()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                wait = self._outages.failed(error)
                if wait is None:
                    log.exception("distributed queue: event handling failed; carrying on")
                await asyncio.sleep(wait or self._poll_seconds)

    async def _on_message(self, message: dict) -> None:
        channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
        if channel == self._keys.moved:
            await self._announce_positions()
            return
        event = json.loads(message["data"])
        handle = self._handles.get(event["job"])
        if handle is None:
            return
        if event["kind"] == "started" and not handle.started:
            self._mark_started(handle)
        elif event["kind"] == "step":
            handle.last_step = max(handle.last_step, event["done"])
            handle.report(Step(event["done"], event["total"]))
        elif event["kind"] == "delayed":
            handle.report(Delayed())
        elif event["kind"] == "finished":
            await self._resolve(handle)

    @staticmethod
    def _mark_started(handle: DistributedJob) -> None:
        handle.started = True
        handle.timed_from = time.monotonic()
        handle.report(Position(0))

    async def _poll(self) -> bool:
        """Resolve the jobs whose rows say they ended; queue again those Redis lost (restarted without its data);
        end the cancelled ones whose worker died; tell whoever waits for a model no live worker serves. Whether any
        row was read."""
        followed = [handle for handle in self._handles.values() if handle.enqueued is None or handle.enqueued.done()]
        if not followed:
            return False
        # Read before the rows: a worker takes a job in its row before the job leaves the waiting set.
        waiting = await waiting_jobs(self._redis, self._keys, [handle.id for handle in followed])
        for handle in followed:
            record = await asyncio.to_thread(self._jobs.get, handle.id)
            if record is not None and record.state == "queued" and handle.id not in waiting:
                log.warning("job %s was gone from Redis (restarted without its data?): queued again", handle.id)
                handle.enqueued = self._spawn(self._enqueuer.queue_or_give_up(handle, record.created_at.timestamp()))
            elif record is not None and record.state == "running" and handle.cancelling:
                await self._cancel_if_orphaned(handle, record)
            else:
                await self._resolve(handle, record)
        await tell_unserved(self._redis, self._keys, [handle for handle in followed if not handle.result.done()],
                            self._unserved_since)
        return True

    async def _adopt_abandoned(self) -> None:
        """Take on the undelivered jobs of sibling names whose front-ends stopped (bot.distributed.identity): a
        front-end restarted before its predecessor's lease ran out runs as NAME-2, and would never deliver them."""
        if self._deliver_reattached is None:
            return  # nobody to deliver them to: left to a front-end that can
        abandoned = await self._lease.abandoned()
        records = await asyncio.to_thread(self._jobs.adopt, abandoned, self._frontend) if abandoned else []
        if records:
            log.warning("took on %d undelivered jobs of front-ends that stopped", len(records))
        for handle in await self._reattach(records):
            self._deliver_reattached(handle)

    async def _announce_positions(self) -> None:
        await announce_positions(self._redis, self._keys, self._handles.values())

    async def _resolve(self, handle: DistributedJob, record: JobRecord | None = None) -> None:
        """If the job row says the job is finished, hand its outcome to the handle and mark it delivered."""
        if handle.result.done():
            return
        record = record or await asyncio.to_thread(self._jobs.get, handle.id)
        if record is None or not record.finished:
            return
        nodes = [await asyncio.to_thread(self._history.node, node_id) for node_id in record.node_ids]
        for waiting in self._keys.waiting_sets(handle.job.params.model):
            await self._redis.zrem(waiting, handle.id)
        # Delivered means handed to this live front-end: the engine sends it on at once.
        await asyncio.to_thread(self._jobs.mark_delivered, handle.id)
        if handle.result.done():  # resolved meanwhile (a cancel and the event loop both got here): observed once
            return
        observe_outcome(self._observer, handle, record)
        if record.state == "done":
            if record.total and handle.last_step < record.total:
                # The row can say "done" before the last steps' events arrive (they travel apart, on pub/sub): the
                # person still sees the edit reach its last step before the result.
                handle.report(Step(record.total, record.total))
            self._settle(handle, result=nodes)
        elif record.state == "cancelled":
            self._settle(handle, exception=EditCancelled(record.error or "Edit cancelled."))
        else:
            self._settle(handle, exception=UserError(record.error or EDIT_FAILED_ON_OUR_SIDE))

    def _settle(self, handle: DistributedJob, *, result: list[Node] | None = None,
                exception: BaseException | None = None) -> None:
        if handle.result.done():
            return
        self._handles.pop(handle.id, None)
        if exception is not None:
            handle.fail(exception)
        else:
            handle.succeed(result)
