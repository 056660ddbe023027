"""The job stream stays small: entries every worker is done with are trimmed and consumers of workers gone are
removed, while jobs pending on a worker that is then killed are all still delivered, once."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from redis.asyncio import Redis  # noqa: E402

from bot.distributed.keys import Keys  # noqa: E402
from bot.distributed.serving import DEFAULT_MODEL  # noqa: E402
from bot.distributed.upkeep import tidy_stream  # noqa: E402
from tests.support.chat import Chat, images, texts  # noqa: E402
from tests.support.cluster import person, until  # noqa: E402

pytestmark = pytest.mark.slow


async def test_trimming_while_jobs_are_pending_on_a_worker_that_dies_loses_nothing(private_cluster, private_redis):
    cluster = private_cluster
    stream, group = Keys(cluster.queue_name).jobs(DEFAULT_MODEL), f"{cluster.queue_name}-workers"
    quick = cluster.start_worker(step_seconds=0.01)
    await until(lambda: cluster.ready_workers() == 1, what="the first worker ready")
    engine = cluster.engine()
    await engine.start()
    redis = Redis.from_url(private_redis.url)
    try:
        for number in range(3):  # done and acknowledged: what trimming is for
            assert len(images(await Chat(engine, person(number)).photo("make it snow"))) == 1
        quick.terminate()
        quick.wait()
        slow = cluster.start_worker(step_seconds=0.15)  # 3 s per edit
        chats = [Chat(engine, person(number)) for number in range(3, 6)]
        edits = [asyncio.create_task(chat.photo("make it night")) for chat in chats]
        await until(lambda: sum(state == "running" for _, state, *_ in cluster.job_rows()) == 1, what="one running")
        trimmed, _ = await tidy_stream(redis, stream, group, gone_after=60)
        assert trimmed >= 3, "the acknowledged entries went"
        assert await redis.xlen(stream) >= 3, "the running job's entry and the two waiting ones stay"
        os.kill(slow.pid, signal.SIGKILL)
        slow.wait()
        cluster.start_worker(step_seconds=0.01)
        replies = await asyncio.wait_for(asyncio.gather(*edits), timeout=40)
        assert all(len(images(reply)) == 1 for reply in replies), [texts(reply) for reply in replies]
        time.sleep(1.2)
        trimmed, removed = await tidy_stream(redis, stream, group, gone_after=1.0)
        consumers = [consumer["name"].decode() for consumer in await redis.xinfo_consumers(stream, group)]
    finally:
        await redis.aclose()
        await engine.close()
    # The dead workers' consumers are gone (the live one may go too when idle: its next read makes it again).
    assert removed >= 2 and not any(name.endswith((f":{quick.pid}", f":{slow.pid}")) for name in consumers), consumers
    assert cluster.children_of_roots() == [1] * 6
    assert {(state, delivered) for _, state, _, _, delivered in cluster.job_rows()} == {("done", True)}
