"""The job stream stays small: every acknowledgement trims what all workers are done with, the deliveries of a worker
whose lease is gone go to another worker at once and its consumer is removed, and no pending job is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from redis.asyncio import Redis

from bot.distributed.keys import Keys
from bot.distributed.serving import DEFAULT_MODEL
from bot.distributed.upkeep import ACK_AND_TRIM, WORKER_LEASE_SECONDS, tidy_stream
from core.errors import EDIT_FAILED_ON_OUR_SIDE
from tests.support.chat import Chat, images, texts
from tests.support.cluster import person, until

pytestmark = pytest.mark.slow


async def test_an_acknowledgement_trims_up_to_the_oldest_delivery_still_pending(private_redis):
    """The soak's stream was a saw-tooth of up to 30 s of jobs: trimming ran every 30 s. Now each ack removes its
    entry and trims, never a delivery still pending (here one held by a worker that died) nor entries nobody read."""
    redis = Redis.from_url(private_redis.url)
    stream, group = "q:jobs:ip2p", "q-workers"
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
        ids = [await redis.xadd(stream, {"data": str(number)}) for number in range(6)]
        await redis.xreadgroup(group, "dead", {stream: ">"}, count=1)  # ids[0], never acknowledged
        await redis.xreadgroup(group, "live", {stream: ">"}, count=3)  # ids[1:4]; ids[4:] unread
        ack = redis.register_script(ACK_AND_TRIM)
        for entry_id in ids[1:4]:
            assert await ack(keys=[stream], args=[group, entry_id]) == 1
        assert [entry for entry, _ in await redis.xrange(stream)] == [ids[0], *ids[4:]], "held by the pending one"
        await ack(keys=[stream], args=[group, ids[0]])
        assert [entry for entry, _ in await redis.xrange(stream)] == ids[4:], "trimmed to the first unread"
        await redis.xreadgroup(group, "live", {stream: ">"}, count=2)
        for entry_id in ids[4:]:
            await ack(keys=[stream], args=[group, entry_id])
        assert await redis.xlen(stream) == 0
    finally:
        await redis.aclose()


async def test_trimming_while_jobs_are_pending_on_a_worker_that_dies_loses_nothing(private_cluster, private_redis):
    cluster = private_cluster
    stream, group = Keys(cluster.queue_name).jobs(DEFAULT_MODEL), f"{cluster.queue_name}-workers"
    quick = cluster.start_worker(step_seconds=0.01)
    await until(lambda: cluster.ready_workers() == 1, what="the first worker ready")
    engine = cluster.engine()
    await engine.start()
    redis = Redis.from_url(private_redis.url)
    try:
        for number in range(3):
            assert len(images(await Chat(engine, person(number)).photo("make it snow"))) == 1
        await until(lambda: _entries(private_redis.url, stream) == 0, timeout=5,
                    what="the acknowledgements trimming the done entries")
        quick.terminate()
        quick.wait()
        slow = cluster.start_worker(step_seconds=0.15)  # 3 s per edit
        chats = [Chat(engine, person(number)) for number in range(3, 6)]
        edits = [asyncio.create_task(chat.photo("make it night")) for chat in chats]
        await until(lambda: sum(state == "running" for _, state, *_ in cluster.job_rows()) == 1, what="one running")
        await tidy_stream(redis, cluster.queue_name, stream, group, redeliver_ms=1000)
        assert await redis.xlen(stream) == 3, "the running job's entry and the two waiting ones stay"
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
        cluster.start_worker(step_seconds=0.01)
        replies = await asyncio.wait_for(asyncio.gather(*edits), timeout=40)
        assert all(len(images(reply)) == 1 for reply in replies), [texts(reply) for reply in replies]
        await until(lambda: _no_lease(cluster, quick.pid, slow.pid), timeout=WORKER_LEASE_SECONDS + 5,
                    what="the dead workers' leases lapse")
        await tidy_stream(redis, cluster.queue_name, stream, group, redeliver_ms=1000)
        consumers = [consumer["name"].decode() for consumer in await redis.xinfo_consumers(stream, group)]
        length = await redis.xlen(stream)
    finally:
        await redis.aclose()
        await engine.close()
    assert not any(name.endswith((f":{quick.pid}", f":{slow.pid}")) for name in consumers), consumers
    assert length == 0
    assert cluster.children_of_roots() == [1] * 6
    assert {(state, delivered) for _, state, _, _, delivered in cluster.job_rows()} == {("done", True)}


async def test_a_killed_workers_job_goes_on_when_its_lease_lapses_not_after_the_redelivery_time(private_cluster,
                                                                                               private_redis):
    cluster = private_cluster
    stream, group = Keys(cluster.queue_name).jobs(DEFAULT_MODEL), f"{cluster.queue_name}-workers"
    patient = {"EDITBOT_REDELIVER_SECONDS": "300"}  # so only the lease can hand the job on in time
    slow = cluster.start_worker(step_seconds=1.0, extra_env=patient)  # 20 s per edit
    await until(lambda: cluster.ready_workers() == 1, what="the slow worker ready")
    engine = cluster.engine()
    await engine.start()
    redis = Redis.from_url(private_redis.url)
    try:
        edit = asyncio.create_task(Chat(engine, person(1)).photo("make it snow"))
        await until(lambda: [state for _, state, *_ in cluster.job_rows()] == ["running"], what="the edit running")
        quick = cluster.start_worker(step_seconds=0.01, extra_env=patient)
        await until(lambda: cluster.ready_workers() == 2, what="the quick worker ready")
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
        killed = time.monotonic()
        reply = await asyncio.wait_for(edit, timeout=60)
        handed_on_after = time.monotonic() - killed
        await until(lambda: _consumer_names(private_redis.url, stream, group) == {f":{quick.pid}"},
                    timeout=10, what="the dead worker's consumer removed")
        length = await redis.xlen(stream)
    finally:
        await redis.aclose()
        await engine.close()
    assert len(images(reply)) == 1, texts(reply)
    assert handed_on_after < WORKER_LEASE_SECONDS + 15, handed_on_after
    assert length == 0
    [(_, state, _, _, delivered)] = cluster.job_rows()
    assert (state, delivered) == ("done", True) and cluster.children_of_roots() == [1]


async def test_a_job_already_recorded_that_a_gone_worker_held_is_acknowledged_and_trimmed(private_cluster,
                                                                                          private_redis):
    cluster = private_cluster
    stream, group = Keys(cluster.queue_name).jobs(DEFAULT_MODEL), f"{cluster.queue_name}-workers"
    engine = cluster.engine()
    await engine.start()
    redis = Redis.from_url(private_redis.url)
    try:
        edit = asyncio.create_task(Chat(engine, person(1)).photo("make it snow"))
        await until(lambda: len(cluster.job_rows()) == 1, what="the job queued")
        await until(lambda: _entries(private_redis.url, stream) == 1, what="the job in the stream")
        await redis.xreadgroup(group, "host:1", {stream: ">"}, count=1)  # a worker that then died
        [(job_id, *_)] = cluster.job_rows()
        cluster.jobs.fail(job_id, EDIT_FAILED_ON_OUR_SIDE, "internal")  # it recorded, then died
        cluster.start_worker(step_seconds=0.01, extra_env={"EDITBOT_REDELIVER_SECONDS": "300"})
        reply = await asyncio.wait_for(edit, timeout=WORKER_LEASE_SECONDS + 20)
        # The reply may come first, from the front-end's poll of the job rows; the worker acknowledges meanwhile.
        await until(lambda: _entries(private_redis.url, stream) == 0, timeout=30, what="the entry trimmed")
        pending = await redis.xpending(stream, group)
    finally:
        await redis.aclose()
        await engine.close()
    assert [line.text for line in texts(reply)] == [EDIT_FAILED_ON_OUR_SIDE]
    assert pending["pending"] == 0 and cluster.children_of_roots() == [0]


def _sync_redis(url: str):
    import redis

    return redis.Redis.from_url(url)


def _entries(url: str, stream: str) -> int:
    with _sync_redis(url) as client:
        return client.xlen(stream)


def _consumer_names(url: str, stream: str, group: str) -> set[str]:
    """Each consumer's name from its ':' on (host:pid gives ':pid')."""
    with _sync_redis(url) as client:
        return {name[name.rindex(":"):] for name in
                (consumer["name"].decode() for consumer in client.xinfo_consumers(stream, group))}


def _no_lease(cluster, *pids: int) -> bool:
    with _sync_redis(cluster.redis_url) as client:
        return not any(client.keys(f"{cluster.queue_name}:worker:*:{pid}") for pid in pids)
