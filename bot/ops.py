"""Operations running beside a bot: the /healthz and /metrics endpoint and the daily retention purge.

They run in a thread with an event loop of their own, started before the model loads, so /healthz answers "not
ready" during a long start-up and nothing depends on which chat library owns the main loop.

    service = OpsService(settings.ops, health, metrics, purge=...)   # purge: a blocking callable, or None
    service.start()   ...   service.stop()
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url

from bot.ops_http import EditMetrics, Health, make_app
from core.config import OpsSettings
from core.errors import UserError
from core.ports import HistoryRepository, ImageStore

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class PurgeResult:
    nodes: int
    images: int


def purge_history(history: HistoryRepository, images: ImageStore, older_than_days: float,
                  now: datetime | None = None) -> PurgeResult:
    """Delete edit trees untouched for `older_than_days` (see HistoryRepository.purge_before), then the image files
    nothing refers to any more. Blocking."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    nodes = history.purge_before(cutoff)
    files = images.sweep(history.referenced_images())
    return PurgeResult(nodes, files)


def backup_sqlite(url: str, target: Path) -> int:
    """Copy a live SQLite database to a new file with SQLite's online backup API: a consistent snapshot, taken
    while bots keep writing. Returns the copy's size in bytes. UserError for another database or an existing file."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise UserError("db backup copies a SQLite database; back up PostgreSQL with pg_dump.")
    source_path = Path(parsed.database)
    if not source_path.is_file():
        raise UserError(f"No database at {source_path}.")
    if target.exists():
        raise UserError(f"{target} already exists; choose a new file name.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        source = sqlite3.connect(source_path)
        try:
            copy = sqlite3.connect(target)
            try:
                source.backup(copy)
            finally:
                copy.close()
        finally:
            source.close()
    except (OSError, sqlite3.Error) as error:
        raise UserError(f"Cannot back up to {target}: {error}.") from None
    return target.stat().st_size


class OpsService:
    """The endpoint (unless http_port is 0) and the retention schedule (when `purge` is given), in one thread."""

    def __init__(self, settings: OpsSettings, health: Health, metrics: EditMetrics, *,
                 purge: Callable[[], PurgeResult] | None = None,
                 purge_every: float = RETENTION_INTERVAL_SECONDS) -> None:
        self._settings = settings
        self._app = make_app(health, metrics)
        self._purge = purge
        self._purge_every = purge_every
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self.port: int | None = None
        """The port actually listened on, once started."""

    def start(self) -> None:
        """Start the thread and wait until the endpoint listens; OSError if its port cannot be had."""
        self._thread = threading.Thread(target=self._main, name="ops", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._thread = None

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self._app, access_log=None)
        tasks = []
        try:
            await runner.setup()
            if self._settings.http_port:
                site = web.TCPSite(runner, self._settings.http_host, self._settings.http_port)
                await site.start()
                self.port = runner.addresses[0][1]
                log.info("health and metrics on http://%s:%s/", self._settings.http_host, self.port)
        except BaseException as error:  # handed to start(), which raises it in the caller's thread
            self._failure = error
            self._started.set()
            await runner.cleanup()
            return
        if self._purge is not None:
            tasks.append(asyncio.create_task(self._retention(), name="retention"))
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()

    async def _retention(self) -> None:
        while True:
            try:
                result = await asyncio.to_thread(self._purge)
                log.info("retention: deleted %d node(s) and %d image file(s)", result.nodes, result.images)
            except Exception:  # a failed purge must not stop the bot; the next run tries again
                log.exception("retention purge failed")
            await asyncio.sleep(self._purge_every)
