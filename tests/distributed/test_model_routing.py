"""Per-model workers: each worker serves the models it was started with (its EDITBOT_MODELS), and a job goes only to
a worker serving its model; a job for a model no worker serves waits, told once, and runs when one starts.

The person's choice of model (/model, built in the engine) stands in here as the model a test gives each person's
jobs on their way into the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

redis_module = pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from redis.asyncio import Redis

from bot.distributed.keys import Keys
from bot.distributed.outage import Outages
from bot.distributed.serving import served, start_serving, unserved_line
from bot.distributed.upkeep import keep_tidy
from core.conversation.engine import ConversationEngine
from tests.support.chat import Chat, images, progress, texts
from tests.support.cluster import REDIS_URL, person, until
from tests.support.fakes import FakeEditor

pytestmark = pytest.mark.slow

KLEIN_ONLY = "klein=flux2-klein:tiny"
IP2P_ONLY = "ip2p=tiny"


def engine_choosing(cluster, models: dict[str, str]) -> ConversationEngine:
    """A front-end whose default model is ip2p, where person P's edits ask for models[P] ("" when not listed)."""
    queue = cluster.queue(default_model="ip2p")
    submit = queue.submit

    def submit_with_model(job):
        chosen = models.get(job.person, "")
        return submit(dataclasses.replace(job, params=dataclasses.replace(job.params, model=chosen)))

    queue.submit = submit_with_model
    return ConversationEngine(cluster.history, cluster.images, queue)


def model_and_worker_of_each_job(cluster) -> list[tuple[str, str]]:
    """(the model a job's row names, the pid of the worker that ran it) for every job."""
    return [(cluster.jobs.get(job_id).job.params.model, worker.rsplit(":", 1)[1])
            for job_id, _, worker, *_ in cluster.job_rows()]


def served_now(cluster, model: str) -> bool:
    client = redis_module.Redis.from_url(cluster.redis_url)
    try:
        now, _ = client.time()
        return client.zcount(Keys(cluster.queue_name).serving(model), now, "+inf") > 0
    finally:
        client.close()


async def test_each_job_runs_on_a_worker_serving_its_model(cluster):
    ip2p = cluster.start_worker(step_seconds=0.02, models=IP2P_ONLY)
    klein = cluster.start_worker(step_seconds=0.02, models=KLEIN_ONLY)
    await until(lambda: cluster.ready_workers() == 2, timeout=60, what="two workers ready")  # slow on a busy machine
    engine = engine_choosing(cluster, {person(n).person: "klein" for n in range(3)})
    await engine.start()
    try:
        chats = [Chat(engine, person(n)) for n in range(6)]
        replies = await asyncio.gather(*(chat.photo("make it snow") for chat in chats))
    finally:
        await engine.close()
    for reply in replies:
        assert len(images(reply)) == 1, texts(reply)
    ran = model_and_worker_of_each_job(cluster)
    assert sorted(model for model, _ in ran) == ["ip2p"] * 3 + ["klein"] * 3  # "" became the front-end's default
    assert {pid for model, pid in ran if model == "klein"} == {str(klein.pid)}
    assert {pid for model, pid in ran if model == "ip2p"} == {str(ip2p.pid)}


async def test_a_job_for_a_model_no_worker_serves_waits_told_once_and_runs_when_one_starts(cluster):
    cluster.start_worker(step_seconds=0.01, models=IP2P_ONLY)
    await until(lambda: cluster.ready_workers() == 1, timeout=60, what="the ip2p worker ready")
    engine = engine_choosing(cluster, {person(1).person: "klein"})
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        edit = asyncio.create_task(chat.photo("make it snow"))
        await until(lambda: [state for _, state, *_ in cluster.job_rows()] == ["queued"], what="the job queued")
        await asyncio.sleep(1.5)  # the ip2p worker is idle all along, and leaves it alone
        assert [state for _, state, *_ in cluster.job_rows()] == ["queued"]
        both = cluster.start_worker(step_seconds=0.01, models=f"{IP2P_ONLY},{KLEIN_ONLY}", batch_size=2)
        reply = await asyncio.wait_for(edit, timeout=90)
    finally:
        await engine.close()
    assert len(images(reply)) == 1, texts(reply)
    told = [update.text for update in progress(reply)]
    assert told.count(unserved_line("klein")) == 1, told
    assert told[told.index(unserved_line("klein")) + 1:][0] in ("Queued: 1 ahead of you", "Starting the edit…")
    [(_, state, worker, _, _)] = cluster.job_rows()
    assert state == "done" and worker.endswith(f":{both.pid}")


async def test_a_place_in_the_queue_counts_the_jobs_of_its_own_model_only(cluster):
    redis = Redis.from_url(cluster.redis_url)
    # Workers of both models are busy elsewhere: every job waits, and is told its place.
    await start_serving(redis, Keys(cluster.queue_name), ["ip2p", "klein"], "busy:1")
    engine = engine_choosing(cluster, {person(3).person: "klein"})
    await engine.start()
    try:
        chats = [Chat(engine, person(n)) for n in (1, 2, 3)]
        for chat in chats:
            assert not images(await chat.photo())
        edits = []
        for number, chat in enumerate(chats, start=1):  # in order: two ip2p edits, then a klein one
            edits.append(asyncio.create_task(chat("make it snow")))
            await until(lambda: len(cluster.job_rows()) == number, what=f"job {number} queued")
        async with cluster.worker_here(FakeEditor(), batch_size=1, models=("ip2p", "klein")):
            replies = await asyncio.wait_for(asyncio.gather(*edits), timeout=60)
    finally:
        await engine.close()
        await redis.aclose()
    places = [[update.text for update in progress(reply) if update.text.startswith("Queued")] for reply in replies]
    assert places[1][0] == "Queued: 2 ahead of you"  # the first ip2p edit, and the work running
    assert places[2][0] == "Queued: 1 ahead of you"  # no klein edit before it: the ip2p ones are not its wait
    assert all(len(images(reply)) == 1 for reply in replies)


async def test_a_worker_says_which_models_it_serves_while_it_runs(cluster):
    redis = Redis.from_url(cluster.redis_url)
    try:
        async with cluster.worker_here(FakeEditor(), batch_size=1, models=("ip2p", "klein")):
            await until(lambda: served_now(cluster, "ip2p") and served_now(cluster, "klein"), what="both served")
            assert await served(redis, Keys(cluster.queue_name), "klein")  # what a front-end asks
            assert not await served(redis, Keys(cluster.queue_name), "qwen")
        assert not served_now(cluster, "ip2p")  # withdrawn on the way out, not only once it expires
    finally:
        await redis.aclose()


async def test_upkeep_tidies_every_stream_a_worker_reads_under_its_one_lease(redis_prefix):
    redis, keys, group = Redis.from_url(REDIS_URL), Keys(redis_prefix), f"{redis_prefix}-workers"
    streams = [keys.jobs("ip2p"), keys.jobs("klein")]
    try:
        for stream in streams:
            await redis.xgroup_create(stream, group, id="0", mkstream=True)
            for _ in range(3):
                await redis.xadd(stream, {"data": b"job"})
            for entry_id, _ in (await redis.xreadgroup(group, "worker", {stream: ">"}, count=3))[0][1]:
                await redis.xack(stream, group, entry_id)  # a plain ack: trimming is left to the tidying
            await redis.xgroup_createconsumer(stream, group, "host:1")  # a worker gone, its lease lapsed
        tidying = asyncio.create_task(keep_tidy(redis, redis_prefix, streams, group, "worker", 1000, Outages(),
                                                every=0.05))
        await asyncio.sleep(0.5)
        leased = await redis.exists(keys.worker("worker"))
        tidying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tidying
        assert [await redis.xlen(stream) for stream in streams] == [0, 0]
        assert [[consumer["name"] for consumer in await redis.xinfo_consumers(stream, group)]
                for stream in streams] == [[b"worker"], [b"worker"]]
        assert leased and not await redis.exists(keys.worker("worker")), "one lease, held, then given up"
    finally:
        await redis.aclose()
