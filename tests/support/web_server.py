"""A real web chat server for browser tests and the first-load benchmark: SQLite in a folder, the fake editor, the
real queue, engine and aiohttp app, served on a free port from a thread of its own."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from pathlib import Path

from bot.bootstrap import build_engine, build_storage
from bot.web.server import WebChat, serving
from core.config import Settings
from tests.support.fakes import FakeEditor

SECRET = "browser-tests"


def find_chromium() -> str | None:
    """Debian's chromium (or EDITBOT_CHROMIUM): Playwright drives it, no browser download needed."""
    return os.environ.get("EDITBOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServer:
    """`with WebServer(folder) as server:` serves until the block ends; a second one on the same folder resumes
    every conversation (same database, same cookie secret), as a restarted editbot would."""

    def __init__(self, data_dir: Path, *, step_seconds: float = 0.02, upload_limit: int | None = None) -> None:
        self.settings = Settings()
        self.settings.storage.data_dir = data_dir
        self.settings.storage.database_url = None
        self.settings.web.web_secret = SECRET
        self.settings.web.web_password = None
        self.settings.web.web_port = free_port()
        if upload_limit is not None:
            self.settings.limits.max_upload_bytes = upload_limit
        self.editor = FakeEditor(step_seconds=step_seconds)
        self.url = f"http://127.0.0.1:{self.settings.web.web_port}/"
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WebServer:
        self._thread.start()
        if not self._ready.wait(60) or self._error is not None:
            raise RuntimeError("the web chat did not start") from self._error
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to __enter__
            self._error = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        storage = build_storage(self.settings)
        engine = build_engine(self.settings, editor=self.editor, storage=storage, frontend="web")
        chat = WebChat(engine, *storage, self.settings)
        async with serving(chat, self.settings.web) as send_to:
            await engine.start(send_to=send_to)
            self._ready.set()
            await self._stop.wait()
            await engine.close()
