"""What a front-end tells the people whose edits it follows, besides their steps: their place in the queue, and that
no live worker serves their model (bot.distributed.serving) so their edit runs when one starts."""

from __future__ import annotations

import time
from collections.abc import Iterable

from redis.asyncio import Redis

from bot.distributed.followed import DistributedJob
from bot.distributed.keys import Keys
from bot.distributed.serving import BEAT_SECONDS, served, unserved_line
from core.ports import Delayed, Position


async def tell_unserved(redis: Redis, keys: Keys, handles: Iterable[DistributedJob],
                        unserved_since: dict[str, float] | None = None) -> None:
    """Tell once whoever waits for a model no live worker serves (none started yet, or they all stopped, killed
    running it maybe) that the edit runs when one starts. Told again should its workers go once more; a waiting
    job's place is told on the next move (`announce_positions`). unserved_since: the caller's memory, across calls,
    of since when (time.monotonic) each model has had no worker; with it a model counts as unserved only after a
    whole beat (BEAT_SECONDS) without one, as the live workers say so again within one after Redis restarted
    without its data."""
    handles = list(handles)
    models = {handle.job.params.model for handle in handles}
    unserved = {model for model in models if not await served(redis, keys, model)}
    if unserved_since is not None:
        now = time.monotonic()
        for model in models:
            if model in unserved:
                unserved_since.setdefault(model, now)
            else:
                unserved_since.pop(model, None)
        unserved = {model for model in unserved if now - unserved_since[model] >= BEAT_SECONDS}
    for handle in handles:
        model = handle.job.params.model
        if model in unserved and not handle.unserved:
            handle.unserved = True
            handle.report(Delayed(unserved_line(model)))
        elif model not in unserved and handle.started:
            handle.unserved = False


async def announce_positions(redis: Redis, keys: Keys, handles: Iterable[DistributedJob]) -> None:
    """Tell each waiting job of `handles` how many jobs of its model wait in front of it (plus one: the work running
    ahead of them all), once a worker serves its model; other models' jobs go to other workers, or take turns with
    it on a worker serving both."""
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
            pipe.zrank(keys.waiting_for(handle.job.params.model), handle.id)
        ranks = await pipe.execute()
    for handle, rank in zip(waiting, ranks):
        if rank is not None and handle.announced != rank + 1 and not handle.started:
            handle.announced = rank + 1
            handle.report(Position(rank + 1))
