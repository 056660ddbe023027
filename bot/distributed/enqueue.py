"""How a front-end records and queues its jobs (bot.distributed.frontend): the job row first, then the job id in its
model's stream, each retried while the database or Redis is out; a job neither recorded nor queued within
`give_up_seconds` ends with one line to the person, never silence, its row failed so that no worker runs it later."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from taskiq.kicker import AsyncKicker

from bot.distributed.broker import ReclaimingStreamBroker
from bot.distributed.followed import DistributedJob
from bot.distributed.jobs import JobRepository
from bot.distributed.keys import TASK_NAME, Keys
from bot.distributed.outage import DATABASE, REDIS, Outages, log_unless_outage
from core.errors import QueueFull, UserError

log = logging.getLogger(__name__)

QUEUE_UNREACHABLE = "I can't reach the edit queue right now: please send your edit again in a minute."
QUEUE_BUSY = "I'm very busy right now: please try again in a minute."


class Enqueuer:
    """Records and queues one front-end's jobs. settle(handle, error): end a job that could not be (the person
    hears the error); queued(handle): called once a job is safely queued (courtesies: its place, no worker...)."""

    def __init__(self, broker: ReclaimingStreamBroker, redis: Redis, jobs: JobRepository, keys: Keys,
                 outages: Outages, *, max_waiting_total: int, give_up_seconds: float,
                 settle: Callable[[DistributedJob, UserError], None],
                 queued: Callable[[DistributedJob], Awaitable[None]]) -> None:
        self._broker, self._redis, self._jobs, self._keys, self._outages = broker, redis, jobs, keys, outages
        self._max_total, self._give_up_seconds = max_waiting_total, give_up_seconds
        self._settle, self._queued = settle, queued

    async def create_and_queue(self, handle: DistributedJob, frontend: str) -> None:
        """Record a new job for `frontend`, then queue it while the queue has room."""
        try:
            await self._outages.retry_async(
                lambda: asyncio.to_thread(self._jobs.create, handle.id, handle.job, frontend), DATABASE,
                give_up_after=self._give_up_seconds)
        except Exception as error:
            log_unless_outage(log, error, "could not record job %s", handle.id)
            self._settle(handle, UserError(QUEUE_UNREACHABLE))
            return
        await self.queue_or_give_up(handle, time.time(), new=True)

    async def queue_or_give_up(self, handle: DistributedJob, since: float, *, new: bool = False) -> None:
        """Queue a recorded job (a new one only while the queue has room), its place in the queue from `since`
        (a timestamp). A job not queued ends here: its row failed and delivered, and the person told."""
        async def queue() -> bool:
            if new and await self._redis.zcard(self._keys.waiting) >= self._max_total:
                return False
            await self._queue(handle, since)
            return True

        try:
            queued = await self._outages.retry_async(queue, REDIS, give_up_after=self._give_up_seconds)
        except Exception as error:
            log_unless_outage(log, error, "could not queue job %s", handle.id)
            await self._end_unqueued(handle, UserError(QUEUE_UNREACHABLE))
            return
        if not queued:
            await self._end_unqueued(handle, QueueFull(QUEUE_BUSY))
            return
        await self._queued(handle)

    async def _end_unqueued(self, handle: DistributedJob, error: UserError) -> None:
        try:
            await asyncio.to_thread(self._jobs.fail, handle.id, str(error), type(error).__name__)
            await asyncio.to_thread(self._jobs.mark_delivered, handle.id)
        except Exception as failure:  # the row stays queued: a restarted front-end queues it again
            log_unless_outage(log, failure, "could not fail job %s", handle.id)
        self._settle(handle, error)

    async def _queue(self, handle: DistributedJob, since: float) -> None:
        model = handle.job.params.model
        for waiting in self._keys.waiting_sets(model):
            await self._redis.zadd(waiting, {handle.id: since}, nx=True)
        stream = self._keys.jobs(model)  # read only by the workers serving its model
        await AsyncKicker(TASK_NAME, self._broker, {"queue_name": stream}).with_task_id(handle.id).kiq(handle.id)
