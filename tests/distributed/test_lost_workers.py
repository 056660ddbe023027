"""Edits whose worker, or whose front-end, was SIGKILLed and not replaced at once: the person is told that the edit
waits for a worker, /cancel ends it without one, and a front-end restarted under another name (its predecessor's
lease still held) delivers its predecessor's results."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

redis_module = pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from bot.distributed.serving import DEFAULT_MODEL, unserved_line  # noqa: E402
from core.domain import ChatKey  # noqa: E402
from core.messages import Incoming  # noqa: E402
from tests.support.chat import Chat, images, photo_bytes, progress, texts  # noqa: E402
from tests.support.cluster import Cluster, person, until  # noqa: E402

pytestmark = pytest.mark.slow


def _running(cluster: Cluster) -> bool:
    return any(state == "running" for _, state, *_ in cluster.job_rows())


async def _kill_the_worker(cluster: Cluster) -> None:
    [worker] = cluster.workers
    await until(lambda: _running(cluster), what="the edit running")
    await asyncio.sleep(0.3)  # a few steps in
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()


async def test_cancelling_an_edit_whose_worker_was_killed_ends_it_without_a_worker(cluster, redis_prefix):
    cluster.start_worker(step_seconds=0.2)  # 4 s per edit
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        edit = asyncio.create_task(chat.photo("make it snow"))
        await _kill_the_worker(cluster)
        assert [reply.text for reply in await chat("/cancel")] == ["Cancelling your edit."]
        replies = await asyncio.wait_for(edit, timeout=30)  # no worker is left to see the cancel
    finally:
        await engine.close()
    assert [reply.text for reply in texts(replies) if reply.error] == ["Edit cancelled."]
    [(_, state, _, _, _)] = cluster.job_rows()
    assert state == "cancelled"
    assert cluster.children_of_roots() == [0]
    with redis_module.Redis.from_url(cluster.redis_url) as flags:
        assert not flags.keys(f"{redis_prefix}:cancel:*"), "no worker needs the cancel flag: it is not left behind"


async def test_an_edit_whose_only_worker_was_killed_is_told_it_waits_for_one(cluster):
    cluster.start_worker(step_seconds=0.2)
    await until(lambda: cluster.ready_workers() == 1, what="the worker ready")  # the edit starts served
    engine = cluster.engine()
    await engine.start()
    replies = []

    async def send(reply) -> None:
        replies.append(reply)

    try:
        edit = asyncio.create_task(engine.handle(Incoming(person(1), text="make it snow", image=photo_bytes()), send))
        await _kill_the_worker(cluster)
        told = unserved_line(DEFAULT_MODEL)
        await until(lambda: told in [update.text for update in progress(replies)], timeout=40,
                    what="the person told no worker runs")
        cluster.start_worker(step_seconds=0.01)
        await asyncio.wait_for(edit, timeout=40)
    finally:
        await engine.close()
    assert len(images(replies)) == 1, texts(replies)
    assert [update.text for update in progress(replies)].count(told) == 1
    assert cluster.children_of_roots() == [1]


async def _die(engine) -> None:
    """Stop a front-end as SIGKILL would: its work ends, and nothing is given back (its lease runs out by itself)."""
    queue = engine.queue
    tasks = [queue._listener, *queue._background]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_front_end_restarted_before_its_lease_ran_out_delivers_its_predecessors_results(cluster):
    name = "console@host-1a2b3c4d"  # a default name (not EDITBOT_FRONTEND_ID): a held one is not waited for
    before = cluster.engine(frontend=name, exact_frontend=False, lease_seconds=2)
    await before.start()
    chat = Chat(before, person(1))
    assert not images(await chat.photo())
    edit = asyncio.create_task(chat("make it snow"))  # no worker yet: it waits
    await until(lambda: len(cluster.job_rows()) == 1, what="the edit queued")
    await _die(before)
    edit.cancel()

    delivered: dict[ChatKey, list] = {}

    def send_to(key: ChatKey):
        async def send(reply) -> None:
            delivered.setdefault(key, []).append(reply)
        return send

    after = cluster.engine(frontend=name, exact_frontend=False, lease_seconds=2)
    await after.start(send_to=send_to)
    try:
        assert after.queue.frontend == f"{name}-2", "its predecessor's name was still held"
        cluster.start_worker(step_seconds=0.01)
        await until(lambda: images(delivered.get(chat.key, [])), timeout=40, what="the result delivered")
    finally:
        await after.close()
    assert len(images(delivered[chat.key])) == 1
    assert [(state, done) for _, state, _, _, done in cluster.job_rows()] == [("done", True)]
    assert cluster.children_of_roots() == [1]
