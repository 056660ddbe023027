"""Taskiq's Redis stream broker, as front-ends kick job ids into it and workers read them back.

A delivery is acknowledged only after its job ran, so a job whose worker died is delivered again (once that worker's
lease lapses, or after `redeliver_seconds`: bot.distributed.upkeep), and the job row makes it count once. Each
acknowledgement also removes its entry from the stream it came from. A worker reads the streams of the models it
serves (bot.distributed.serving), a front-end puts each job in its model's. Two readers: `ReclaimingStreamBroker`
(one job at a time) and `BatchingStreamBroker` (up to N jobs read together, held in `Deliveries` until they have
all run).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

from bot.distributed.keys import Keys
from bot.distributed.outage import REDIS, Outages
from bot.distributed.serving import DEFAULT_MODEL
from bot.distributed.upkeep import ACK_AND_TRIM

log = logging.getLogger(__name__)
T = TypeVar("T")
ACK_GIVE_UP_SECONDS = 30.0
"""How long an acknowledgement is retried while Redis is out; after that the job is delivered again (counted once)."""
BATCH_WINDOW_SECONDS = 0.03
"""A batching worker that got a job waits this long for more to run with it: a small delay next to an edit."""


class ReclaimingStreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, fetching one message at a time (so an idle worker finds the next job, not a
    busy one that fetched it early) and reclaiming deliveries left unacknowledged for `idle_timeout` ms by a dead
    worker on every round: the stock listen() looks for them only after a new message arrived.

    While Redis is out it waits and tries again (one log line when lost, one when back: `outages`), rather than
    raising: Taskiq would restart it at once, a traceback each time. An acknowledgement that cannot reach Redis is
    retried; if Redis stays out, the delivery comes again later and the job row makes it count once."""

    outages: Outages

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.outages = Outages()

    @property
    def streams(self) -> list[str]:
        """The job streams read: one per model served, the first model's first."""
        return [self.queue_name, *self.additional_streams]

    async def listen(self) -> AsyncIterator[AckableMessage]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                fetched = await self.outages.retry_async(lambda: self._in_group(lambda: self._read_one(redis)), REDIS)
                for stream, messages in fetched or []:
                    for message_id, fields in messages:
                        if fields:  # None for an entry trimmed from the stream meanwhile
                            yield AckableMessage(data=fields[b"data"], ack=self._patient_ack(message_id, stream))

    async def _in_group(self, read: Callable[[], Awaitable[T]]) -> T:
        """read(), after making the consumer group again if Redis lost it (restarted without its data): without
        it every read fails at once, forever. It starts at each stream's beginning, so jobs queued since are read."""
        try:
            return await read()
        except ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                raise
        log.warning("the workers' consumer group was gone from Redis (restarted without its data?): made again")
        await self._declare_consumer_group()
        return await read()

    async def _read_one(self, redis: Redis) -> list:
        for stream in self.streams:
            _, claimed, *_ = await redis.xautoclaim(
                stream, self.consumer_group_name, self.consumer_name, min_idle_time=self.idle_timeout, count=1,
            )
            if claimed:
                return [(stream, claimed)]
        # One job per stream at most: with several models, jobs arriving together on two streams both come here.
        return await redis.xreadgroup(
            self.consumer_group_name, self.consumer_name, dict.fromkeys(self.streams, ">"), block=self.block, count=1,
        )

    def _ack_and_trim(self, message_id: bytes, stream: str) -> Callable[[], Awaitable[None]]:
        """Acknowledge, and trim the entries no worker needs any more in the same script (bot.distributed.upkeep)."""
        async def ack() -> None:
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.register_script(ACK_AND_TRIM)(keys=[stream], args=[self.consumer_group_name, message_id])

        return ack

    def _patient_ack(self, message_id: bytes, stream: str) -> Callable[[], Awaitable[None]]:
        ack = self._ack_and_trim(message_id, stream)

        async def ack_while_redis_answers() -> None:
            try:
                await self.outages.retry_async(ack, REDIS, give_up_after=ACK_GIVE_UP_SECONDS)
            except Exception as error:
                if self.outages.failed(error) is None:
                    raise

        return ack_while_redis_answers


def make_broker(redis_url: str, queue_name: str, *, redeliver_seconds: float, consumer_name: str | None = None,
                broker_class: type[ReclaimingStreamBroker] = ReclaimingStreamBroker,
                models: Sequence[str] = (DEFAULT_MODEL,)) -> ReclaimingStreamBroker:
    """The broker front-ends kick jobs into and workers listen on, over the job streams of `models` (a worker's:
    those it serves). The consumer group starts at each stream's beginning ("0"), so jobs queued before any worker
    of their model ever started are not skipped. broker_class: a subclass that reads differently (a batching
    worker's, BatchingStreamBroker)."""
    idle_ms = int(redeliver_seconds * 1000)
    keys = Keys(queue_name)
    return broker_class(
        redis_url,
        queue_name=keys.jobs(models[0]),
        additional_streams={keys.jobs(model): ">" for model in models[1:]},
        consumer_group_name=f"{queue_name}-workers",
        consumer_name=consumer_name,
        consumer_id="0",
        idle_timeout=idle_ms,
        xread_block=min(2000, max(100, idle_ms // 2)),
        xread_count=1,
    )


class Deliveries:
    """The jobs a batching worker holds: delivered by the broker and not acknowledged yet. The broker reads more
    only when none are held, so jobs that arrive while a batch runs stay in the stream for idle workers; the jobs of
    one read run as one `run_batch` call (a worker's `EditWorker.process_batch`, in a thread) once every one of them
    has reached its task."""

    def __init__(self, run_batch: Callable[[list[str]], None], size: int) -> None:
        self.run_batch = run_batch
        self.size = size
        self.held = 0
        self._arrived: list[tuple[str, asyncio.Future]] = []
        self._none_held = asyncio.Event()
        self._none_held.set()
        self._batches: set[asyncio.Task] = set()

    def delivered(self, count: int) -> None:
        """The broker hands over `count` deliveries read together (counted before the first reaches its task)."""
        self.held += count
        self._none_held.clear()

    def acknowledged(self) -> None:
        self.held -= 1
        if self.held == 0:
            self._none_held.set()
        self._start_when_all_arrived()  # a delivery Taskiq acknowledged without running it (malformed) counts too

    async def wait_until_none_held(self) -> None:
        await self._none_held.wait()

    async def run(self, job_id: str) -> None:
        """The task body: wait for the job's batch to run."""
        done = asyncio.get_running_loop().create_future()
        self._arrived.append((job_id, done))
        self._start_when_all_arrived()
        await done

    def _start_when_all_arrived(self) -> None:
        if not self._arrived or len(self._arrived) < self.held:
            return
        batch, self._arrived = self._arrived, []
        task = asyncio.create_task(asyncio.to_thread(self.run_batch, [job_id for job_id, _ in batch]))
        self._batches.add(task)

        def settle(task: asyncio.Task) -> None:
            self._batches.discard(task)
            for _, done in batch:
                if done.done():
                    continue
                if task.cancelled():
                    done.cancel()
                elif task.exception() is not None:
                    done.set_exception(task.exception())
                else:
                    done.set_result(None)

        task.add_done_callback(settle)


class BatchingStreamBroker(ReclaimingStreamBroker):
    """The stream broker of a batching worker: reads only when its `deliveries` hold nothing, then up to
    `deliveries.size` jobs (deliveries left by a dead worker first), waiting BATCH_WINDOW_SECONDS at most for more
    once one came. Each delivery's acknowledgement releases it from `deliveries`."""

    deliveries: Deliveries

    async def listen(self) -> AsyncIterator[AckableMessage]:
        async with Redis(connection_pool=self.connection_pool) as redis_client:
            while True:
                await self.deliveries.wait_until_none_held()
                messages = await self.outages.retry_async(
                    lambda: self._in_group(lambda: self._read(redis_client, self.deliveries.size)), REDIS)
                if not messages:
                    continue
                self.deliveries.delivered(len(messages))
                for stream, message_id, fields in messages:
                    yield AckableMessage(data=fields[b"data"], ack=self._releasing_ack(message_id, stream))

    async def _read(self, redis_client: Redis, size: int) -> list[tuple[str, bytes, dict]]:
        """Up to `size` deliveries, (stream, id, fields): with several models, jobs arriving together on several
        streams may make a few more (one read takes up to the count from each stream)."""
        messages = []
        for stream in self.streams:
            if len(messages) < size:
                _, claimed, *_ = await redis_client.xautoclaim(
                    stream, self.consumer_group_name, self.consumer_name, min_idle_time=self.idle_timeout,
                    count=size - len(messages),
                )
                messages += [(stream, message_id, fields) for message_id, fields in claimed if fields]
        deadline = None
        while len(messages) < size:
            block_ms = self.block
            if messages:
                deadline = deadline or time.monotonic() + BATCH_WINDOW_SECONDS
                block_ms = int((deadline - time.monotonic()) * 1000)
                if block_ms <= 0:
                    break
            fetched = await redis_client.xreadgroup(
                self.consumer_group_name, self.consumer_name, dict.fromkeys(self.streams, ">"), block=block_ms,
                count=size - len(messages),
            )
            new = [(_text(stream), message_id, fields)
                   for stream, entries in fetched or [] for message_id, fields in entries if fields]
            if not new and not messages:
                break  # nothing for a while: reclaim again
            messages += new
        return messages

    def _releasing_ack(self, message_id: bytes, stream: str) -> Callable[[], Awaitable[None]]:
        ack = self._patient_ack(message_id, stream)

        async def ack_and_release() -> None:
            try:
                await ack()
            finally:
                self.deliveries.acknowledged()

        return ack_and_release


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
