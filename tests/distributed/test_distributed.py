"""The distributed mode end to end: a front-end engine in this process, `editbot worker` processes beside it (with the
fake editor: the model is not the point here), real Redis, and SQLite or PostgreSQL shared by all of them.

Skipped when Redis is not reachable (EDITBOT_TEST_REDIS_URL, default redis://127.0.0.1:6379/14); PostgreSQL runs
when EDITBOT_TEST_POSTGRES_URL is set. Every test uses its own Redis key prefix and removes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

redis_module = pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from bot.distributed.serving import DEFAULT_MODEL, unserved_line  # noqa: E402
from core.conversation.engine import ConversationEngine  # noqa: E402
from core.domain import ChatKey  # noqa: E402
from tests.support.chat import Chat, images, photo_bytes, progress, texts  # noqa: E402
from tests.support.cluster import REDIS_URL, Cluster, person, until  # noqa: E402
from tests.support.fakes import FakeEditor  # noqa: E402


async def test_several_workers_share_the_jobs_and_record_each_edit_once(cluster):
    for _ in range(3):
        cluster.start_worker(step_seconds=0.02)
    # Under load a worker can take seconds to start; one alone would take every job.
    await until(lambda: cluster.ready_workers() == 3, what="three workers ready")
    engine = cluster.engine()
    await engine.start()
    try:
        chats = [Chat(engine, person(n)) for n in range(6)]
        replies = await asyncio.gather(*(chat.photo("make it snow") for chat in chats))
    finally:
        await engine.close()
    for reply in replies:
        assert len(images(reply)) == 1, texts(reply)
        assert any("step 20/20" in update.text for update in progress(reply))
    assert cluster.children_of_roots() == [1] * 6
    rows = cluster.job_rows()
    assert {state for _, state, *_ in rows} == {"done"} and all(delivered for *_, delivered in rows)
    assert len({worker for _, _, worker, *_ in rows}) >= 2, "the jobs were spread over the workers"


async def test_waiting_jobs_are_told_their_place_in_the_queue(cluster):
    engine = cluster.engine()
    await engine.start()
    try:
        chats = [Chat(engine, person(n)) for n in range(3)]
        for chat in chats:
            assert not images(await chat.photo())
        edits = []
        for number, chat in enumerate(chats, start=1):  # one after the other, so the queue's order is known
            edits.append(asyncio.create_task(chat("make it night")))
            await until(lambda: len(cluster.job_rows()) == number, what=f"job {number} queued")
        cluster.start_worker(step_seconds=0.01)  # only now: every job waits at first
        replies = await asyncio.gather(*edits)
    finally:
        await engine.close()
    last = [update.text for update in progress(replies[2]) if not update.text.startswith("Editing")]
    # Told once that no worker runs, then its place from the moment one does.
    assert last == [unserved_line(DEFAULT_MODEL), "Queued: 2 ahead of you", "Queued: 1 ahead of you",
                    "Starting the edit…"]
    assert all(len(images(reply)) == 1 for reply in replies)


async def test_a_worker_killed_mid_edit_loses_nothing_and_doubles_nothing(any_cluster):
    cluster = any_cluster
    first = cluster.start_worker(step_seconds=0.1)  # 20 steps: 2 s per edit
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        edit = asyncio.create_task(chat.photo("make it snow"))
        await until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="a running job")
        [(job_id, _, worker, _, _)] = cluster.job_rows()
        assert worker.endswith(f":{first.pid}")
        time.sleep(0.3)  # a few steps in
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        cluster.start_worker(step_seconds=0.01)
        replies = await asyncio.wait_for(edit, timeout=30)
    finally:
        await engine.close()
    assert len(images(replies)) == 1, texts(replies)
    [(_, state, worker, attempts, delivered)] = cluster.job_rows()
    assert (state, attempts, delivered) == ("done", 2, True)
    assert not worker.endswith(f":{first.pid}")
    assert cluster.children_of_roots() == [1]


async def test_a_restarted_front_end_delivers_the_jobs_it_left_in_flight(cluster):
    cluster.start_worker(step_seconds=0.03)  # 0.6 s per edit
    before = cluster.engine(frontend="telegram")
    await before.start()
    chats = [Chat(before, person(n)) for n in range(2)]
    for chat in chats:
        await chat.photo()
    edits = [asyncio.create_task(chat("make it snow")) for chat in chats]
    await until(lambda: len(cluster.job_rows()) == 2, what="both jobs recorded")
    await before.close()
    for edit in edits:
        assert [reply.text for reply in texts(await edit)] == ["I'm restarting: your edit will arrive when I'm back."]
    await until(lambda: any(state == "done" for _, state, *_ in cluster.job_rows()), what="a job done while away")

    delivered: dict[ChatKey, list] = {}

    def send_to(key: ChatKey):
        async def send(reply) -> None:
            delivered.setdefault(key, []).append(reply)
        return send

    after = cluster.engine(frontend="telegram")
    await after.start(send_to=send_to)
    try:
        await until(lambda: all(images(delivered.get(chat.key, [])) for chat in chats), what="both results")
    finally:
        await after.close()
    assert all(len(images(delivered[chat.key])) == 1 for chat in chats)
    assert {(state, delivered) for _, state, _, _, delivered in cluster.job_rows()} == {("done", True)}
    assert cluster.children_of_roots() == [1, 1]


async def test_cancel_reaches_the_worker_running_the_edit(cluster):
    cluster.start_worker(step_seconds=0.1)
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        edit = asyncio.create_task(chat.photo("make it snow"))
        await until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="a running job")
        assert [reply.text for reply in await chat("/cancel")] == ["Cancelling your edit."]
        replies = await asyncio.wait_for(edit, timeout=10)
    finally:
        await engine.close()
    assert not images(replies)
    assert [reply.text for reply in texts(replies) if reply.error] == ["Edit cancelled."]
    [(_, state, _, _, _)] = cluster.job_rows()
    assert state == "cancelled"
    assert cluster.children_of_roots() == [0]


WIDE, TALL = (96, 64), (64, 96)


async def _queue_edits(cluster: Cluster, engine: ConversationEngine, sizes: list[tuple[int, int]]) -> list:
    """One person per photo size given; each sends a photo, then an edit of it, in this order (so the stream's order
    is known). Returns the edits' tasks; nothing runs them until a worker starts."""
    edits = []
    for number, size in enumerate(sizes):
        chat = Chat(engine, person(number))
        assert not images(await chat.photo(data=photo_bytes(size=size)))
        edits.append(asyncio.create_task(chat(f"make it snow {number}")))
        await until(lambda: len(cluster.job_rows()) == number + 1, what=f"job {number} queued")
    return edits


@pytest.mark.parametrize(
    ("sizes", "together"),
    [
        ([WIDE, WIDE, WIDE, TALL], ["make it snow 0", "make it snow 1", "make it snow 2"]),  # the 4th: next read
        ([WIDE, TALL, WIDE], ["make it snow 0", "make it snow 2"]),  # one read, two groups
    ],
)
async def test_a_batching_worker_runs_compatible_jobs_in_one_call_and_records_each_once(cluster, sizes, together):
    editor = FakeEditor()
    engine = cluster.engine()
    await engine.start()
    try:
        edits = await _queue_edits(cluster, engine, sizes)
        async with cluster.worker_here(editor, batch_size=3):
            replies = await asyncio.wait_for(asyncio.gather(*edits), timeout=20)
    finally:
        await engine.close()
    assert all(len(images(reply)) == 1 for reply in replies), [texts(reply) for reply in replies]
    assert editor.many == [tuple(together)]
    # Every job edited once: the batch's in its one call, the incompatible ones alone.
    assert sorted(instruction for instruction, _ in editor.calls) == [f"make it snow {n}" for n in range(len(sizes))]
    assert cluster.children_of_roots() == [1] * len(sizes)
    assert {(state, attempts, delivered) for _, state, _, attempts, delivered in cluster.job_rows()} == {
        ("done", 1, True)}


async def test_a_job_cancelled_in_a_batch_is_dropped_and_the_others_complete(cluster, redis_prefix):
    gate = threading.Event()
    editor = FakeEditor(gate=gate)  # holds the batch after its first step until the test opens the gate
    engine = cluster.engine()
    await engine.start()
    flags = redis_module.Redis.from_url(REDIS_URL)
    try:
        edits = await _queue_edits(cluster, engine, [WIDE, WIDE, WIDE])
        async with cluster.worker_here(editor, batch_size=3):
            await until(lambda: editor.started.is_set(), what="the batch running")
            assert [reply.text for reply in await Chat(engine, person(1))("/cancel")] == ["Cancelling your edit."]
            await until(lambda: bool(flags.keys(f"{redis_prefix}:cancel:*")), what="the cancel flag")
            gate.set()
            replies = await asyncio.wait_for(asyncio.gather(*edits), timeout=20)
    finally:
        flags.close()
        await engine.close()
    assert editor.many == [("make it snow 0", "make it snow 1", "make it snow 2")]
    assert [len(images(reply)) for reply in replies] == [1, 0, 1]
    assert [reply.text for reply in texts(replies[1]) if reply.error] == ["Edit cancelled."]
    assert sorted(state for _, state, *_ in cluster.job_rows()) == ["cancelled", "done", "done"]
    assert cluster.children_of_roots() == [1, 0, 1]


async def test_a_batching_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(cluster):
    engine = cluster.engine()
    await engine.start()
    try:
        edits = await _queue_edits(cluster, engine, [WIDE, WIDE, WIDE])
        first = cluster.start_worker(step_seconds=0.1, batch_size=3)  # the fake edits one after the other: 6 s
        await until(lambda: [state for _, state, *_ in cluster.job_rows()] == ["running"] * 3,
                     what="the batch running")
        time.sleep(0.3)  # a few steps in
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        cluster.start_worker(step_seconds=0.01, batch_size=3)
        replies = await asyncio.wait_for(asyncio.gather(*edits), timeout=30)
    finally:
        await engine.close()
    assert all(len(images(reply)) == 1 for reply in replies), [texts(reply) for reply in replies]
    rows = cluster.job_rows()
    assert {(state, attempts, delivered) for _, state, _, attempts, delivered in rows} == {("done", 2, True)}
    assert not any(worker.endswith(f":{first.pid}") for _, _, worker, _, _ in rows)
    assert cluster.children_of_roots() == [1, 1, 1]
