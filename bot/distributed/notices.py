"""What a front-end tells the people whose edits it follows, besides their steps: their place in the queue, and that
no live worker serves their model (bot.distributed.serving) so their edit runs when one starts."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from bot.distributed.followed import DistributedJob
from bot.distributed.keys import Keys
from bot.distributed.serving import served, unserved_line
from core.ports import Delayed, Position


async def tell_unserved(redis: Redis, keys: Keys, handles: Iterable[DistributedJob]) -> None:
    """Tell once whoever waits for a model no live worker serves (none started yet, or they all stopped, killed
    running it maybe) that the edit runs when one starts. Told again should its workers go once more; a waiting
    job's place is told on the next move (`announce_positions`)."""
    handles = list(handles)
    models = {handle.job.params.model for handle in handles}
    unserved = {model for model in models if not await served(redis, keys, model)}
    for handle in handles:
        model = handle.job.params.model
        if model in unserved and not handle.unserved:
            handle.unserved = True
            handle.report(Delayed(unserved_line(model)))
        elif model not in unserved and handle.started:
            handle.unserved = False


async def announce_positions(redis: Redis, keys: Keys, handles: Iterable[DistributedJob]) -> None:
    """Tell each waiting job of `handles` how many jobs wait in front of it (plus one: the work running ahead of
    them all), once a worker serves its model."""
    waiting = [handle for handle in handles if not handle.started]
    unserved = {handle.job.params.model for handle in waiting if handle.unserved}
    came = {model for model in unserved if await served(redis, keys, model)}  # a worker of it started
    for handle in waiting:  # their positions mean something now
        handle.unserved = handle.unserved and handle.job.params.model not in came
    waiting = [handle for handle in waiting if not handle.unserved]
    if not waiting:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for handle in waiting:
            pipe.zrank(keys.waiting, handle.id)
        ranks = await pipe.execute()
    for handle, rank in zip(waiting, ranks):
        if rank is not None and handle.announced != rank + 1 and not handle.started:
            handle.announced = rank + 1
            handle.report(Position(rank + 1))
