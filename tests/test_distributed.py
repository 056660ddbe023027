"""The distributed mode end to end: a front-end engine in this process, `editbot worker` processes beside it (with the
fake editor: the model is not the point here), real Redis, and SQLite or PostgreSQL shared by all of them.

Skipped when Redis is not reachable (EDITBOT_TEST_REDIS_URL, default redis://127.0.0.1:6379/14); PostgreSQL runs
when EDITBOT_TEST_POSTGRES_URL is set. Every test uses its own Redis key prefix and removes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

redis_module = pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from redis.asyncio import Redis  # noqa: E402

from bot.distributed import DistributedQueue, make_broker  # noqa: E402
from bot.worker import EditWorker, serve  # noqa: E402
from core.domain import ChatKey  # noqa: E402
from core.engine import ConversationEngine  # noqa: E402
from core.jobs import EditRunner  # noqa: E402
from storage.blobs import FileImageStore  # noqa: E402
from storage.database import make_engine  # noqa: E402
from storage.jobs import SqlJobRepository  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.repository import SqlHistoryRepository  # noqa: E402
from tests.conftest import Chat, images, photo_bytes, progress, texts  # noqa: E402
from tests.fakes import FakeEditor  # noqa: E402
from tests.test_repository import postgres_url  # noqa: E402,F401  (fixture: a fresh PostgreSQL schema)

REDIS_URL = os.environ.get("EDITBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
REDELIVER_SECONDS = 1.0
ROOT = Path(__file__).resolve().parent.parent


def _worker_main() -> None:
    """Entry point of a worker subprocess: `editbot worker`'s wiring with the fake editor."""
    from bot.worker import run_worker
    from core.config import Settings
    from tests.fakes import FakeEditor

    settings = Settings()
    ready = settings.storage.data_dir / f"worker-ready-{os.getpid()}"
    run_worker(settings, editor=FakeEditor(step_seconds=float(os.environ["TEST_STEP_SECONDS"])),
               on_ready=ready.touch)


class Cluster:
    """Storage, Redis names and worker processes of one test; front-ends made on demand."""

    def __init__(self, database_url: str, data_dir: Path, queue_name: str) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.queue_name = queue_name
        self.db = make_engine(database_url)
        self.history = SqlHistoryRepository(self.db)
        self.images = FileImageStore(data_dir / "images")
        self.jobs = SqlJobRepository(self.db)
        self.workers: list[subprocess.Popen] = []

    def start_worker(self, step_seconds: float, batch_size: int = 1) -> subprocess.Popen:
        env = {
            **os.environ,
            "EDITBOT_DATA_DIR": str(self.data_dir),
            "EDITBOT_DATABASE_URL": self.database_url,
            "EDITBOT_MODE": "distributed",
            "EDITBOT_REDIS_URL": REDIS_URL,
            "EDITBOT_QUEUE_NAME": self.queue_name,
            "EDITBOT_REDELIVER_SECONDS": str(REDELIVER_SECONDS),
            "EDITBOT_WORKER_BATCH_SIZE": str(batch_size),
            "TEST_STEP_SECONDS": str(step_seconds),
        }
        process = subprocess.Popen(
            [sys.executable, "-c", "from tests.test_distributed import _worker_main; _worker_main()"],
            cwd=ROOT, env=env,
        )
        self.workers.append(process)
        return process

    def ready_workers(self) -> int:
        """Workers connected to the queue so far (each marks itself ready in the data folder)."""
        return len(list(self.data_dir.glob("worker-ready-*")))

    @contextlib.asynccontextmanager
    async def worker_here(self, editor: FakeEditor, batch_size: int):
        """A worker in this process (so the test can look at its editor's calls), served until the block ends."""
        worker = EditWorker(EditRunner(editor, self.history, self.images), self.jobs,
                            redis_module.Redis.from_url(REDIS_URL), queue_name=self.queue_name,
                            stale_after=REDELIVER_SECONDS)
        serving = asyncio.create_task(serve(worker, REDIS_URL, self.queue_name, REDELIVER_SECONDS,
                                            batch_size=batch_size))
        try:
            yield worker
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            worker.redis.close()

    def engine(self, frontend: str = "test") -> ConversationEngine:
        queue = DistributedQueue(
            make_broker(REDIS_URL, self.queue_name, redeliver_seconds=REDELIVER_SECONDS),
            Redis.from_url(REDIS_URL),
            self.jobs,
            self.history,
            frontend=frontend,
            queue_name=self.queue_name,
            max_waiting_per_person=1,
            poll_seconds=0.5,
        )
        return ConversationEngine(self.history, self.images, queue)

    def children_of_roots(self) -> list[int]:
        """For each photo sent, how many edits of it were recorded."""
        with self.db.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT r.id, (SELECT COUNT(*) FROM nodes c WHERE c.parent_id = r.id) FROM nodes r "
                "WHERE r.parent_id IS NULL ORDER BY r.id"
            ).all()
        return [count for _, count in rows]

    def job_rows(self) -> list[tuple]:
        with self.db.connect() as connection:
            return connection.exec_driver_sql("SELECT id, state, worker, attempts, delivered FROM jobs").all()

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.db.dispose()


@pytest.fixture
def redis_prefix():
    client = redis_module.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis_module.ConnectionError:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _cluster(url: str, tmp_path: Path, prefix: str):
    upgrade(url)  # once, before any worker starts
    cluster = Cluster(url, tmp_path, prefix)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(tmp_path, redis_prefix):
    yield from _cluster(f"sqlite:///{tmp_path / 'editbot.sqlite3'}", tmp_path, redis_prefix)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_cluster(request, tmp_path, redis_prefix):
    url = f"sqlite:///{tmp_path / 'editbot.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue(
        "postgres_url")
    yield from _cluster(url, tmp_path, redis_prefix)


async def _until(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _person(number: int) -> ChatKey:
    return ChatKey("test", f"chat-{number}", f"user-{number}")


async def test_several_workers_share_the_jobs_and_record_each_edit_once(cluster):
    for _ in range(3):
        cluster.start_worker(step_seconds=0.02)
    # Under load a worker can take seconds to start; one alone would take every job.
    await _until(lambda: cluster.ready_workers() == 3, what="three workers ready")
    engine = cluster.engine()
    await engine.start()
    try:
        chats = [Chat(engine, _person(n)) for n in range(6)]
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
        chats = [Chat(engine, _person(n)) for n in range(3)]
        for chat in chats:
            assert not images(await chat.photo())
        edits = []
        for number, chat in enumerate(chats, start=1):  # one after the other, so the queue's order is known
            edits.append(asyncio.create_task(chat("make it night")))
            await _until(lambda: len(cluster.job_rows()) == number, what=f"job {number} queued")
        cluster.start_worker(step_seconds=0.01)  # only now: every job waits at first
        replies = await asyncio.gather(*edits)
    finally:
        await engine.close()
    last = [update.text for update in progress(replies[2]) if not update.text.startswith("Editing")]
    assert last == ["Queued: 3 ahead of you", "Queued: 2 ahead of you", "Queued: 1 ahead of you", "Starting the edit…"]
    assert all(len(images(reply)) == 1 for reply in replies)


async def test_a_worker_killed_mid_edit_loses_nothing_and_doubles_nothing(any_cluster):
    cluster = any_cluster
    first = cluster.start_worker(step_seconds=0.1)  # 20 steps: 2 s per edit
    engine = cluster.engine()
    await engine.start()
    try:
        chat = Chat(engine, _person(1))
        edit = asyncio.create_task(chat.photo("make it snow"))
        await _until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="a running job")
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
    chats = [Chat(before, _person(n)) for n in range(2)]
    for chat in chats:
        await chat.photo()
    edits = [asyncio.create_task(chat("make it snow")) for chat in chats]
    await _until(lambda: len(cluster.job_rows()) == 2, what="both jobs recorded")
    await before.close()
    for edit in edits:
        assert [reply.text for reply in texts(await edit)] == ["I'm restarting: your edit will arrive when I'm back."]
    await _until(lambda: any(state == "done" for _, state, *_ in cluster.job_rows()), what="a job done while away")

    delivered: dict[ChatKey, list] = {}

    def send_to(key: ChatKey):
        async def send(reply) -> None:
            delivered.setdefault(key, []).append(reply)
        return send

    after = cluster.engine(frontend="telegram")
    await after.start(send_to=send_to)
    try:
        await _until(lambda: all(images(delivered.get(chat.key, [])) for chat in chats), what="both results")
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
        chat = Chat(engine, _person(1))
        edit = asyncio.create_task(chat.photo("make it snow"))
        await _until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="a running job")
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
        chat = Chat(engine, _person(number))
        assert not images(await chat.photo(data=photo_bytes(size=size)))
        edits.append(asyncio.create_task(chat(f"make it snow {number}")))
        await _until(lambda: len(cluster.job_rows()) == number + 1, what=f"job {number} queued")
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
            await _until(lambda: editor.started.is_set(), what="the batch running")
            assert [reply.text for reply in await Chat(engine, _person(1))("/cancel")] == ["Cancelling your edit."]
            await _until(lambda: bool(flags.keys(f"{redis_prefix}:cancel:*")), what="the cancel flag")
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
        await _until(lambda: [state for _, state, *_ in cluster.job_rows()] == ["running"] * 3,
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
