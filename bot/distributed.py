"""The distributed edit queue: front-ends hand jobs to `editbot worker` processes through Taskiq on Redis.

`DistributedQueue` has the interface of core.queue.EditQueue (start, close, submit, cancel, busy, depth, and handles
with `id`, `updates()` and `result`), so the engine does not know which one it has. What travels where:

- the job row (storage.jobs) is the truth: the front-end records it before queueing, workers claim and complete it;
- the job id goes through Taskiq's Redis *stream* broker: a delivery is acknowledged only after the job ran, so a job
  whose worker died is delivered again (after `redeliver_seconds`) and the job row makes it count once;
- queue positions come from a Redis sorted set of waiting jobs; steps, start and end travel on a Redis pub/sub
  channel per front-end; a cancel is a Redis key the worker checks every step;
- a front-end that restarts re-attaches to its undelivered jobs (`recovered()`), and a slow poll of the job rows
  makes up for any pub/sub message lost while it was away.

Redis keys, all under the `queue_name` prefix P: P:jobs (stream), P:waiting (sorted set), P:events:FRONTEND and
P:moved (channels), P:cancel:JOB (flags).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from core.domain import Node
from core.errors import EditCancelled, QueueFull, UserError
from core.jobs import EditJob
from core.metrics import EditObserver, NoObserver
from core.ports import HistoryRepository, JobRecord, JobRepository
from core.queue import Position, QueueStatus, Step, TrackedJob

log = logging.getLogger(__name__)

TASK_NAME = "editbot.edit"
FAILED_ON_OUR_SIDE = "The edit failed on my side; nothing was changed. Please try again."
CANCEL_FLAG_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Keys:
    """The Redis names of one deployment (one `queue_name`)."""

    prefix: str

    @property
    def stream(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def waiting(self) -> str:
        return f"{self.prefix}:waiting"

    @property
    def moved(self) -> str:
        return f"{self.prefix}:moved"

    def events(self, frontend: str) -> str:
        return f"{self.prefix}:events:{frontend}"

    def cancel(self, job_id: str) -> str:
        return f"{self.prefix}:cancel:{job_id}"

    @property
    def paused(self) -> str:
        return f"{self.prefix}:paused"


class ReclaimingStreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, fetching one message at a time (so an idle worker finds the next job, not a
    busy one that fetched it early) and reclaiming deliveries left unacknowledged for `idle_timeout` ms by a dead
    worker on every round: the stock listen() looks for them only after a new message arrived."""

    async def listen(self) -> AsyncIterator[AckableMessage]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                _, claimed, *_ = await redis.xautoclaim(
                    self.queue_name, self.consumer_group_name, self.consumer_name,
                    min_idle_time=self.idle_timeout, count=1,
                )
                fetched = [(self.queue_name, claimed)] if claimed else await redis.xreadgroup(
                    self.consumer_group_name, self.consumer_name, {self.queue_name: ">"}, block=self.block, count=1,
                )
                for stream, messages in fetched or []:
                    for message_id, fields in messages:
                        if fields:  # None for an entry trimmed from the stream meanwhile
                            yield AckableMessage(data=fields[b"data"], ack=self._ack_generator(message_id, stream))


def make_broker(redis_url: str, queue_name: str, *, redeliver_seconds: float, consumer_name: str | None = None,
                broker_class: type[ReclaimingStreamBroker] = ReclaimingStreamBroker) -> ReclaimingStreamBroker:
    """The broker front-ends kick jobs into and workers listen on. The consumer group starts at the stream's
    beginning ("0"), so jobs queued before any worker ever started are not skipped. broker_class: a subclass that
    reads differently (a batching worker's, bot.worker.BatchingStreamBroker)."""
    idle_ms = int(redeliver_seconds * 1000)
    return broker_class(
        redis_url,
        queue_name=Keys(queue_name).stream,
        consumer_group_name=f"{queue_name}-workers",
        consumer_name=consumer_name,
        consumer_id="0",
        idle_timeout=idle_ms,
        xread_block=min(2000, max(100, idle_ms // 2)),
        xread_count=1,
    )


@dataclass(eq=False)
class DistributedJob(TrackedJob):
    """A job as the front-end follows it while a worker somewhere runs it. timed_from: when (time.monotonic) this
    front-end saw it start, or began following it if it has not seen that: where its edit time is measured from;
    None for a job that ended while this front-end was away."""

    started: bool = False
    timed_from: float | None = field(default_factory=time.monotonic)
    announced: int | None = None
    enqueued: asyncio.Task | None = None


class DistributedQueue:
    """EditQueue's interface over Redis and the job table. One per front-end process; `frontend` names it in the job
    table so a restarted process re-attaches to its own jobs. The observer hears how each of its jobs ended, as
    EditQueue's does (see `_observe`)."""

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
    ) -> None:
        self._broker = broker
        self._observer = observer or NoObserver()
        self._redis = redis
        self._jobs = jobs
        self._history = history
        self._frontend = frontend
        self._keys = Keys(queue_name)
        self._max_per_person = max_waiting_per_person
        self._max_total = max_waiting_total
        self._poll_seconds = poll_seconds
        self._kicker = AsyncKicker(TASK_NAME, broker, {})
        self._handles: dict[str, DistributedJob] = {}
        self._recovered: list[DistributedJob] = []
        self._background: set[asyncio.Task] = set()
        self._listener: asyncio.Task | None = None
        self._pubsub = None
        self._paused = False

    # ------------------------------------------------------------------ EditQueue's interface

    async def start(self) -> None:
        """Connect, listen for this front-end's events, then re-attach to its jobs not yet delivered."""
        if self._listener is not None:
            return
        await self._broker.startup()
        self._paused = bool(await self._redis.exists(self._keys.paused))
        self._pubsub = self._redis.pubsub()
        # Subscribe before reading the job rows, so a job that ends in between is seen one way or the other.
        await self._pubsub.subscribe(self._keys.events(self._frontend), self._keys.moved)
        self._listener = asyncio.create_task(self._listen(), name="distributed-queue")
        for record in await asyncio.to_thread(self._jobs.undelivered, self._frontend):
            handle = self._track(record.id, record.job)
            self._recovered.append(handle)
            if record.finished:
                handle.timed_from = None  # it ran unseen: not observed
                await self._resolve(handle, record)
            elif record.state == "queued":
                # The process may have died between recording the job and queueing it: queue it (again). A job
                # delivered twice is claimed once; the other delivery sees it taken and is dropped.
                handle.enqueued = self._spawn(self._queue(handle, record.created_at.timestamp()))
            else:
                self._mark_started(handle)

    async def close(self) -> None:
        """Stop following jobs. They carry on in the workers; a restarted front-end delivers their results."""
        for task in [self._listener, *self._background]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(task for task in [self._listener, *self._background] if task), return_exceptions=True)
        self._listener = None
        for handle in list(self._handles.values()):
            self._settle(handle, exception=UserError("I'm restarting: your edit will arrive when I'm back."))
        if self._pubsub is not None:
            await self._pubsub.aclose()
        await self._redis.aclose()  # the queue owns the client it was given
        await self._broker.shutdown()

    @property
    def depth(self) -> int:
        """This front-end's jobs not finished yet."""
        return len(self._handles)

    @property
    def status(self) -> QueueStatus:
        """This front-end's view: whether one of its edits runs, how many of its edits wait, whether paused."""
        handles = self._handles.values()
        return QueueStatus(any(handle.started for handle in handles), sum(not handle.started for handle in handles),
                           self._paused)

    def pause(self) -> None:
        """Every worker starts no new job until resume(); running ones finish, waiting ones stay queued."""
        self._paused = True
        self._spawn(self._redis.set(self._keys.paused, 1))

    def resume(self) -> None:
        self._paused = False
        self._spawn(self._redis.delete(self._keys.paused))

    def busy(self, conversation_id: int) -> bool:
        return any(handle.owner == conversation_id for handle in self._handles.values())

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
        handle.enqueued = self._spawn(self._create_and_queue(handle))
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
        handle = DistributedJob(job_id, job, asyncio.get_running_loop().create_future())
        self._handles[job_id] = handle
        return handle

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _create_and_queue(self, handle: DistributedJob) -> None:
        try:
            if await self._redis.zcard(self._keys.waiting) >= self._max_total:
                self._settle(handle, exception=QueueFull("I'm very busy right now: please try again in a minute."))
                return
            await asyncio.to_thread(self._jobs.create, handle.id, handle.job, self._frontend)
            await self._queue(handle, time.time())
        except Exception:
            log.exception("could not queue job %s", handle.id)
            await self._fail(handle, FAILED_ON_OUR_SIDE)

    async def _queue(self, handle: DistributedJob, since: float) -> None:
        await self._redis.zadd(self._keys.waiting, {handle.id: since}, nx=True)
        await self._kicker.with_task_id(handle.id).kiq(handle.id)
        await self._announce_positions()

    async def _cancel(self, handle: DistributedJob) -> None:
        if handle.enqueued is not None:
            await asyncio.gather(handle.enqueued, return_exceptions=True)
        await self._redis.set(self._keys.cancel(handle.id), 1, ex=CANCEL_FLAG_SECONDS)  # reaches a running worker
        record = await asyncio.to_thread(self._jobs.cancel, handle.id)
        if record is not None and record.finished:
            await self._resolve(handle, record)
            await self._announce_positions()

    async def _fail(self, handle: DistributedJob, line: str) -> None:
        try:
            await asyncio.to_thread(self._jobs.fail, handle.id, line)
        finally:
            await self._resolve(handle)

    # ------------------------------------------------------------------ following jobs

    async def _listen(self) -> None:
        """Apply events from workers; poll the job rows now and then for anything pub/sub lost."""
        last_poll = time.monotonic()
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=self._poll_seconds)
                if message is not None:
                    await self._on_message(message)
                if time.monotonic() - last_poll >= self._poll_seconds:
                    last_poll = time.monotonic()
                    await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("distributed queue: event handling failed; carrying on")
                await asyncio.sleep(self._poll_seconds)

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
            handle._emit(Step(event["done"], event["total"]))
        elif event["kind"] == "finished":
            await self._resolve(handle)

    @staticmethod
    def _mark_started(handle: DistributedJob) -> None:
        handle.started = True
        handle.timed_from = time.monotonic()
        handle._emit(Position(0))

    async def _poll(self) -> None:
        for handle in list(self._handles.values()):
            if handle.enqueued is None or handle.enqueued.done():
                await self._resolve(handle)

    async def _announce_positions(self) -> None:
        """Tell each waiting job how many jobs wait in front of it (plus one: the work running ahead of them all)."""
        waiting = [handle for handle in self._handles.values() if not handle.started]
        if not waiting:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for handle in waiting:
                pipe.zrank(self._keys.waiting, handle.id)
            ranks = await pipe.execute()
        for handle, rank in zip(waiting, ranks):
            if rank is not None and handle.announced != rank + 1 and not handle.started:
                handle.announced = rank + 1
                handle._emit(Position(rank + 1))

    async def _resolve(self, handle: DistributedJob, record: JobRecord | None = None) -> None:
        """If the job row says the job is finished, hand its outcome to the handle and mark it delivered."""
        if handle.result.done():
            return
        record = record or await asyncio.to_thread(self._jobs.get, handle.id)
        if record is None or not record.finished:
            return
        nodes = [await asyncio.to_thread(self._history.node, node_id) for node_id in record.node_ids]
        await self._redis.zrem(self._keys.waiting, handle.id)
        # Delivered means handed to this live front-end: the engine sends it on at once.
        await asyncio.to_thread(self._jobs.mark_delivered, handle.id)
        if handle.result.done():  # resolved meanwhile (a cancel and the event loop both got here): observed once
            return
        self._observe(handle, record)
        if record.state == "done":
            self._settle(handle, result=nodes)
        elif record.state == "cancelled":
            self._settle(handle, exception=EditCancelled(record.error or "Edit cancelled."))
        else:
            self._settle(handle, exception=UserError(record.error or FAILED_ON_OUR_SIDE))

    def _observe(self, handle: DistributedJob, record: JobRecord) -> None:
        """Tell the observer how a finished job ended, counted as EditQueue counts the edits it runs: a job cancelled
        before any worker took it is not an edit that ran, and one that ended while this front-end was away is left
        out (it was not seen running). The time is from the start this front-end saw to now. The row keeps a
        failure's line, not its class, so a refused edit's kind is "UserError" (EditQueue names the class, e.g.
        UnsafeImage)."""
        if handle.timed_from is None:
            return
        if record.state == "done":
            self._observer.edit_succeeded(time.monotonic() - handle.timed_from)
        elif record.state == "cancelled":
            if record.worker is not None:
                self._observer.edit_failed(EditCancelled.__name__)
        else:
            self._observer.edit_failed("internal" if record.error in (None, FAILED_ON_OUR_SIDE) else UserError.__name__)

    def _settle(self, handle: DistributedJob, *, result: list[Node] | None = None,
                exception: BaseException | None = None) -> None:
        if handle.result.done():
            return
        if exception is not None:
            handle.result.set_exception(exception)
        else:
            handle.result.set_result(result)
        self._handles.pop(handle.id, None)
        handle._emit(None)
