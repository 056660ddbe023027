"""Jobs go only to workers that serve their model.

Each enabled model has its own job stream (Keys.jobs); a worker reads the streams of the models it was started with
(its EDITBOT_MODELS) and says so every BEAT_SECONDS in each model's presence set (Keys.serving), scored by when that
presence expires on Redis's clock (so machines' clocks need not agree). A front-end names the model of every job
(`routed`), puts it in that model's stream, and asks `served` whether any live worker reads it: if none does, the
job waits there, nothing lost (a worker that starts later reads its stream from the beginning), and the person is
told once (`unserved_line`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence

from redis.asyncio import Redis

from bot.distributed.keys import Keys
from bot.distributed.outage import REDIS, Outages
from core.domain import EditJob

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
"""The one model's name when EDITBOT_MODELS is unset (core.config.EditorSettings.model_specs)."""
BEAT_SECONDS = 5.0
PRESENCE_SECONDS = 15.0
"""A worker that has not said it serves a model for this long (killed, cut off) no longer counts as serving it."""


def unserved_line(model: str) -> str:
    if model == DEFAULT_MODEL:  # the operator enabled one model, unnamed: no worker runs at all
        return "No worker is running right now; your edit will run when one starts."
    return f"No worker serves {model} right now; your edit will run when one starts."


def routed(job: EditJob, default_model: str) -> EditJob:
    """The job with its model named: "" (the operator's default) becomes the front-end's default model, so a worker
    whose own first model is another one still runs the model this job was queued for."""
    if job.params.model:
        return job
    return dataclasses.replace(job, params=dataclasses.replace(job.params, model=default_model))


async def served(redis: Redis, keys: Keys, model: str) -> bool:
    """Whether a live worker serves `model` now."""
    now, _ = await redis.time()
    return await redis.zcount(keys.serving(model), now, "+inf") > 0


async def waiting_jobs(redis: Redis, keys: Keys, job_ids: Sequence[str]) -> set[str]:
    """Those of `job_ids` in the waiting set (queued and not started)."""
    async with redis.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.zscore(keys.waiting, job_id)
        scores = await pipe.execute()
    return {job_id for job_id, score in zip(job_ids, scores) if score is not None}


async def start_serving(redis: Redis, keys: Keys, models: Sequence[str], worker: str) -> None:
    """Say that `worker` serves `models` (for PRESENCE_SECONDS), and drop the presence of workers gone meanwhile.
    A worker says it once before it reads its first job, so front-ends never see a job of a model start unserved."""
    now, _ = await redis.time()
    async with redis.pipeline(transaction=False) as pipe:
        for model in models:
            pipe.zadd(keys.serving(model), {worker: now + PRESENCE_SECONDS})
            pipe.zremrangebyscore(keys.serving(model), "-inf", now)
        await pipe.execute()


async def keep_serving(redis: Redis, keys: Keys, models: Sequence[str], worker: str, outages: Outages,
                       every: float = BEAT_SECONDS) -> None:
    """A worker's background task: say it again every `every` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            await start_serving(redis, keys, models, worker)
        except Exception as error:
            if outages.failed(error) is None:
                log.exception("could not say which models this worker serves")
        else:
            outages.fine(REDIS)


async def stop_serving(redis: Redis, keys: Keys, models: Sequence[str], worker: str) -> None:
    """A worker stopping: front-ends stop counting it at once (if Redis answers; else its presence expires)."""
    with contextlib.suppress(Exception):
        async with redis.pipeline(transaction=False) as pipe:
            for model in models:
                pipe.zrem(keys.serving(model), worker)
            await asyncio.wait_for(pipe.execute(), timeout=2.0)
