"""The distributed mode while its own Redis fails: a private redis-server per test, stopped and restarted under a
front-end engine (this process) and `editbot worker` processes (the fake editor).

Every edit ends: recorded once and delivered, or told to the person in one line; and a process logs one line per
change ("lost Redis", "Redis back after N s"), never a traceback per try.
"""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from bot.distributed.enqueue import QUEUE_UNREACHABLE  # noqa: E402
from bot.distributed.jobs import SqlJobRepository  # noqa: E402
from bot.distributed.serving import DEFAULT_MODEL, unserved_line  # noqa: E402
from core.messages import Incoming  # noqa: E402
from storage.database import make_engine  # noqa: E402
from tests.support.chat import Chat, images, photo_bytes, progress, texts  # noqa: E402
from tests.support.cluster import Cluster, person, until  # noqa: E402

pytestmark = pytest.mark.slow


class UnrecordableJobs(SqlJobRepository):
    """The cluster's job table, except that new jobs go to a database that cannot be opened (the driver's own
    error, as from a lost database)."""

    def __init__(self, database, missing_folder) -> None:
        super().__init__(database)
        self._unreachable = SqlJobRepository(make_engine(f"sqlite:///{missing_folder / 'jobs.sqlite3'}"))

    def create(self, *arguments):
        return self._unreachable.create(*arguments)


def states(cluster: Cluster) -> list[tuple[str, bool]]:
    return [(state, delivered) for _, state, _, _, delivered in cluster.job_rows()]


async def test_the_next_edit_after_a_redis_restart_is_recorded_and_delivered(private_cluster, private_redis):
    cluster = private_cluster
    cluster.start_worker(step_seconds=0.01)
    await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        assert len(images(await chat.photo("make it snow"))) == 1
        private_redis.restart(down_seconds=0.5)  # data kept: the stream, the consumer group
        replies = await asyncio.wait_for(chat("make it night"), timeout=30)
    finally:
        await engine.close()
    assert len(images(replies)) == 1, texts(replies)
    assert states(cluster) == [("done", True), ("done", True)]
    assert cluster.children_of_roots() == [1]
    [first] = cluster.history.children(cluster.history.node(1).id)
    assert len(cluster.history.children(first.id)) == 1


async def test_an_edit_that_cannot_be_queued_is_told_in_one_line_and_never_runs_later(private_cluster, private_redis):
    cluster = private_cluster
    engine = cluster.engine(give_up_seconds=1.5)
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        assert not images(await chat.photo())
        private_redis.stop()
        replies = await asyncio.wait_for(chat("make it snow"), timeout=20)
        assert [reply.text for reply in texts(replies) if reply.error] == [QUEUE_UNREACHABLE]
        private_redis.start()
        cluster.start_worker(step_seconds=0.01)
        await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
        assert len(images(await asyncio.wait_for(chat("make it night"), timeout=30))) == 1  # works again
    finally:
        await engine.close()
    # The edit given up was recorded first (its row failed, so it never runs later), and is not delivered twice.
    assert sorted(states(cluster)) == [("done", True), ("failed", True)]
    assert cluster.children_of_roots() == [1]


async def test_a_database_error_recording_the_job_is_told_in_one_line(private_cluster, tmp_path):
    cluster = private_cluster
    engine = cluster.engine(give_up_seconds=1.0, jobs=UnrecordableJobs(cluster.db, tmp_path / "missing"))
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        assert not images(await chat.photo())
        replies = await asyncio.wait_for(chat("make it snow"), timeout=20)
    finally:
        await engine.close()
    assert [reply.text for reply in texts(replies) if reply.error] == [QUEUE_UNREACHABLE]
    assert engine.queue.depth == 0, "the edit is settled: the person can send another"


async def test_a_redis_outage_during_an_edit_keeps_the_finished_work(private_cluster, private_redis, tmp_path):
    cluster = private_cluster
    log = tmp_path / "worker.log"
    cluster.start_worker(step_seconds=0.15, log=log)  # 20 steps: 3 s per edit
    await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        edit = asyncio.create_task(chat.photo("make it snow"))
        await until(lambda: [state for state, _ in states(cluster)] == ["running"], what="the edit running")
        private_redis.restart(down_seconds=2.0)  # most of the edit runs without Redis
        replies = await asyncio.wait_for(edit, timeout=40)
    finally:
        await engine.close()
    assert len(images(replies)) == 1, texts(replies)
    steps = [update.text for update in progress(replies) if "step" in update.text]
    assert steps and "step 20/20" in steps[-1], "progress resumed once Redis was back"
    [(_, state, _, attempts, delivered)] = cluster.job_rows()
    assert (state, attempts, delivered) == ("done", 1, True), "finished once, by the worker that started it"
    assert cluster.children_of_roots() == [1]
    time.sleep(0.5)
    logged = log.read_text()
    assert logged.count("lost Redis") == 1, logged
    assert logged.count("Redis back after") == 1, logged
    assert "Traceback" not in logged, logged


async def test_workers_carry_on_after_redis_restarted_without_its_data(private_cluster, private_redis, tmp_path):
    cluster = private_cluster
    log = tmp_path / "worker.log"
    cluster.start_worker(step_seconds=0.01, log=log)
    await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        assert len(images(await chat.photo("make it snow"))) == 1
        private_redis.keep_data = False
        private_redis.restart(down_seconds=0.5)  # the stream and the workers' consumer group are gone
        replies = await asyncio.wait_for(chat("make it night"), timeout=30)
    finally:
        await engine.close()
    assert len(images(replies)) == 1, texts(replies)
    assert states(cluster) == [("done", True), ("done", True)]
    logged = log.read_text()
    assert "Traceback" not in logged, logged[-3000:]


async def test_an_edit_waiting_when_redis_lost_its_data_is_queued_again(private_cluster, private_redis):
    cluster = private_cluster
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, person(1))
        assert not images(await chat.photo())
        edit = asyncio.create_task(chat("make it snow"))  # no worker yet: it waits in the stream
        await until(lambda: states(cluster) == [("queued", False)], what="the edit queued")
        private_redis.keep_data = False
        private_redis.restart(down_seconds=0.5)  # the stream, with the edit's entry, is gone
        cluster.start_worker(step_seconds=0.01)
        replies = await asyncio.wait_for(edit, timeout=40)
    finally:
        await engine.close()
    assert len(images(replies)) == 1, texts(replies)
    assert states(cluster) == [("done", True)]
    assert cluster.children_of_roots() == [1]


async def test_a_redis_restarted_without_its_data_is_not_told_as_no_worker_running(private_cluster, private_redis):
    cluster = private_cluster
    cluster.start_worker(step_seconds=0.4)  # 8 s per edit: the restart, and the workers' next beat, fall within
    await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
    engine = cluster.engine()
    await engine.start()
    replies = []

    async def send(reply) -> None:
        replies.append(reply)

    try:
        edit = asyncio.create_task(engine.handle(Incoming(person(1), text="make it snow", image=photo_bytes()), send))
        await until(lambda: [state for state, _ in states(cluster)] == ["running"], what="the edit running")
        private_redis.keep_data = False
        private_redis.restart()  # every worker's presence is gone until its next beat
        await asyncio.wait_for(edit, timeout=40)
    finally:
        await engine.close()
    assert len(images(replies)) == 1, texts(replies)
    assert unserved_line(DEFAULT_MODEL) not in [update.text for update in progress(replies)]
