"""A distributed deployment inside one test: storage, Redis names, `editbot worker` subprocesses (with the fake editor)
and front-end engines made on demand. Imported only where Redis and taskiq-redis are installed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import redis as redis_module
from redis.asyncio import Redis

from bot.distributed.broker import make_broker
from bot.distributed.frontend import DistributedQueue
from bot.distributed.jobs import SqlJobRepository
from bot.distributed.serving import DEFAULT_MODEL
from bot.distributed.worker import EditWorker, serve
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.ports import Segmenter
from core.runner import EditRunner
from storage.blobs import FileImageStore
from storage.database import make_engine
from storage.repository import SqlHistoryRepository
from tests.support.fakes import FakeEditor

REDIS_URL = os.environ.get("EDITBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
REDELIVER_SECONDS = 1.0
ROOT = Path(__file__).resolve().parents[2]


def worker_main() -> None:
    """Entry point of a worker subprocess: `editbot worker`'s wiring with the fake editor."""
    from bot.distributed.worker import run_worker
    from core.config import Settings
    from tests.support.fakes import FakeEditor

    # A real worker's model has loaded torch before the worker is ready, and the runner's shrink and transfer use it
    # (core/editing/transfer.py): without this the fake worker's first edit would pay the import (2-3 s here).
    import torch  # noqa: F401

    settings = Settings()
    ready = settings.storage.data_dir / f"worker-ready-{os.getpid()}"
    run_worker(settings, editor=FakeEditor(step_seconds=float(os.environ["TEST_STEP_SECONDS"])),
               on_ready=ready.touch)


class Cluster:
    """Storage, Redis names and worker processes of one test; front-ends made on demand."""

    def __init__(self, database_url: str, data_dir: Path, queue_name: str, redis_url: str = REDIS_URL) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.data_dir = data_dir
        self.queue_name = queue_name
        self.db = make_engine(database_url)
        self.history = SqlHistoryRepository(self.db)
        self.images = FileImageStore(data_dir / "images")
        self.jobs = SqlJobRepository(self.db)
        self.workers: list[subprocess.Popen] = []

    def start_worker(self, step_seconds: float, batch_size: int = 1, *, log: Path | None = None,
                     extra_env: dict[str, str] | None = None, models: str | None = None) -> subprocess.Popen:
        """A worker process; `log`: a file its standard error goes to (what it logs); `models`: its EDITBOT_MODELS
        (the models it serves; default: the one model `default`)."""
        env = {
            **os.environ,
            "EDITBOT_DATA_DIR": str(self.data_dir),
            "EDITBOT_DATABASE_URL": self.database_url,
            "EDITBOT_MODE": "distributed",
            "EDITBOT_REDIS_URL": self.redis_url,
            "EDITBOT_QUEUE_NAME": self.queue_name,
            "EDITBOT_REDELIVER_SECONDS": str(REDELIVER_SECONDS),
            "EDITBOT_WORKER_BATCH_SIZE": str(batch_size),
            "TEST_STEP_SECONDS": str(step_seconds),
            **({"EDITBOT_MODELS": models} if models else {}),
            **(extra_env or {}),
        }
        with open(log, "ab") if log else contextlib.nullcontext() as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", "from tests.support.cluster import worker_main; worker_main()"],
                cwd=ROOT, env=env, stderr=stderr,
            )
        self.workers.append(process)
        return process

    def ready_workers(self) -> int:
        """Workers connected to the queue so far (each marks itself ready in the data folder)."""
        return len(list(self.data_dir.glob("worker-ready-*")))

    @contextlib.asynccontextmanager
    async def worker_here(self, editor: FakeEditor, batch_size: int, segmenter: Segmenter | None = None,
                          models: tuple[str, ...] = (DEFAULT_MODEL,)):
        """A worker in this process (so the test can look at its editor's and segmenter's calls), served until the
        block ends; `models`: the models it serves."""
        worker = EditWorker(EditRunner(editor, self.history, self.images, segmenter=segmenter), self.jobs,
                            redis_module.Redis.from_url(REDIS_URL), queue_name=self.queue_name,
                            stale_after=REDELIVER_SECONDS)
        serving = asyncio.create_task(serve(worker, REDIS_URL, self.queue_name, REDELIVER_SECONDS,
                                            batch_size=batch_size, models=models))
        try:
            yield worker
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            worker.redis.close()

    def engine(self, frontend: str = "test", *, segmenter: Segmenter | None = None, **options) -> ConversationEngine:
        """A front-end's engine; `segmenter`: what finds regions (/only, /mask); options: more DistributedQueue
        settings (give_up_seconds...), or another `jobs` repository than the cluster's."""
        return ConversationEngine(self.history, self.images, self.queue(frontend, **options), segmenter=segmenter)

    def queue(self, frontend: str = "test", **options) -> DistributedQueue:
        """A front-end's queue, options as `engine`'s."""
        jobs = options.pop("jobs", self.jobs)
        return DistributedQueue(
            make_broker(self.redis_url, self.queue_name, redeliver_seconds=REDELIVER_SECONDS),
            Redis.from_url(self.redis_url),
            jobs,
            self.history,
            frontend=frontend,
            queue_name=self.queue_name,
            max_waiting_per_person=1,
            poll_seconds=0.5,
            **options,
        )

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


async def until(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def person(number: int) -> ChatKey:
    return ChatKey("test", f"chat-{number}", f"user-{number}")
