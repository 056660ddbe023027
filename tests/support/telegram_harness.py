"""A Bot API emulator for end-to-end tests of the Telegram adapter, over real HTTP.

Telemelya (a mock Bot API server: FastAPI + Redis + S3) runs in a background thread on a free port, with moto's S3
server beside it. The real PTB Application talks to it as it would to Telegram: getMe, setWebhook, sendPhoto,
getFile and file downloads, editMessageText... Telemelya records every bot call per test session.

Telemelya lacks a few Bot API methods the adapter uses, and builds only simple updates; this module adds, to the
emulator's own app: sendDocument and set/deleteMyCommands (recorded like Telemelya's methods), and a control
endpoint that delivers a raw Update (documents, file sizes, several photo sizes, groups, replies) to the webhook
with the secret-token header, as Telegram does.

    with TelegramEmulator.start(redis_url) as emulator:
        session = emulator.session(chat_id=..., user_id=...)
        await session.send_photo(jpeg_bytes, caption="make it night")
        record = await session.expect("sendPhoto")
"""

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import httpx

WAIT_SECONDS = 20.0
"""How long to wait for the bot's next call before failing: a generous bound so a slow machine never flakes."""

UPLOAD_LIMIT = 5 * 1024 * 1024
"""The bot's upload limit in these tests: small, so limits are tested without big files."""
BOT_ID = 123456789  # Telemelya's getMe
BOT_USERNAME = "telemelya_bot"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


class _ThreadedServer:
    """A uvicorn server in a daemon thread, stopped on exit."""

    def __init__(self, app, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="telegram-emulator", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Bot API emulator did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


_extended = False


def _extend_telemelya() -> None:
    """Add the Bot API methods and the control endpoint Telemelya lacks (once per process).

    FastAPI reads the endpoints' annotations, so this module does not postpone them (no __future__ import)."""
    global _extended
    if _extended:
        return
    import aiohttp
    from fastapi import APIRouter, Request
    from starlette.datastructures import UploadFile
    from telemelya.models import TelegramApiResponse

    # Telemelya configures the root logger when its app is imported; the test process keeps its own setup.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from telemelya.server.app import app

    root.handlers[:] = handlers
    root.setLevel(level)
    from telemelya.server.bot_api import (
        DEFAULT_BOT_INFO,
        _as_int,
        _extract_session_id,
        _parse_body,
    )
    from telemelya.server.media import media_manager
    from telemelya.server.state import state_manager

    router = APIRouter()

    @router.post("/bot{token}/sendDocument")
    async def send_document(token: str, request: Request):
        body = await _parse_body(request)
        chat_id = _as_int(body.get("chat_id"), 0)
        session_id = await _extract_session_id(request, chat_id)
        document = body.get("document")
        if not isinstance(document, UploadFile):
            return TelegramApiResponse(ok=False, error_code=400, description="Bad Request: document expected")
        data = await document.read()
        file_id = str(uuid.uuid4())
        filename = document.filename or "document"
        await media_manager.upload(session_id, file_id, filename, data, document.content_type or "")
        await state_manager.push_media_meta(session_id, {"file_id": file_id, "filename": filename})
        await state_manager.set_file_meta(file_id, {"session_id": session_id, "filename": filename})
        message_id = await state_manager.next_message_id(session_id)
        result = {
            "message_id": message_id,
            "from": DEFAULT_BOT_INFO,
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "document": {
                "file_id": file_id,
                "file_unique_id": file_id[:16],
                "file_name": filename,
                "file_size": len(data),
            },
            "caption": body.get("caption"),
        }
        if "reply_markup" in body:
            result["reply_markup"] = body["reply_markup"]
        await state_manager.store_message(session_id, message_id, result)
        await state_manager.push_response(
            session_id,
            {
                "method": "sendDocument",
                "chat_id": chat_id,
                "message_id": message_id,
                "caption": body.get("caption"),
                "file_id": file_id,
                "file_name": filename,
                "reply_markup": body.get("reply_markup"),
                "raw": {"chat_id": chat_id, "caption": body.get("caption")},
            },
        )
        return TelegramApiResponse(ok=True, result=result)

    @router.post("/bot{token}/setMyCommands")
    async def set_my_commands(token: str, request: Request):
        body = await _parse_body(request)
        await state_manager.redis.set(f"harness_commands:{token}", json.dumps(body.get("commands") or []))
        return TelegramApiResponse(ok=True, result=True)

    @router.get("/api/v1/test/harness/commands")
    async def get_commands(bot_token: str):
        raw = await state_manager.redis.get(f"harness_commands:{bot_token}")
        return {"commands": json.loads(raw) if raw else None}

    @router.post("/api/v1/test/harness/deliver")
    async def deliver(request: Request):
        """Deliver a raw Update to the bot's webhook, the way Telegram does (secret header included)."""
        body = await request.json()
        session_id = body["session_id"]
        update = body["update"]
        await state_manager.map_chat_to_session(body["chat_id"], session_id)
        if "callback_query" in update:
            await state_manager.map_callback_to_session(update["callback_query"]["id"], session_id)
        url = await state_manager.get_webhook(body["bot_token"])
        if not url:
            return {"delivered": False, "error": "no webhook registered"}
        headers = {"X-Telegram-Bot-Api-Secret-Token": body["secret_token"]}
        async with aiohttp.ClientSession() as client:
            async with client.post(url, json=update, headers=headers) as response:
                return {"delivered": True, "status_code": response.status}

    app.include_router(router)
    _answer_refusals_with_their_status(app)
    _extended = True


def _answer_refusals_with_their_status(app) -> None:
    """Telemelya answers a refused getFile with HTTP 200 and {"ok": false}; Telegram answers with the error's HTTP
    status (400 "file not found"), which is what PTB turns into BadRequest. Put that in front of Telemelya's."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from fastapi.routing import APIRoute
    from telemelya.server.bot_api import get_file

    async def get_file_as_telegram_does(token: str, request: Request):
        answer = await get_file(token, request)
        if answer.ok:
            return answer
        return JSONResponse(answer.model_dump(exclude_none=True), status_code=answer.error_code or 400)

    app.router.routes.insert(0, APIRoute("/bot{token}/getFile", get_file_as_telegram_does, methods=["POST"]))


@contextlib.asynccontextmanager
async def running_bot(settings, engine) -> AsyncIterator:
    """The adapter served as `editbot` serves it beside other platforms (webhook mode), in the test's event loop."""
    from bot.telegram_adapter import build_application, serving

    application = build_application(settings, engine)
    async with serving(application, settings) as sender:
        await engine.start(send_to=sender)
        try:
            yield application
        finally:
            await engine.close()


def make_settings(emulator: "TelegramEmulator", **telegram):
    """Settings pointing the bot at the emulator, with a token of its own (the emulator keys webhooks by token);
    `telegram` overrides any Telegram setting (e.g. base_file_url)."""
    from core.config import LimitSettings, Settings, TelegramSettings

    settings = Settings()
    port = free_port()
    defaults = {
        "bot_token": f"{EmulatorSession.new_id()}:AAE-{uuid.uuid4().hex}",
        "base_url": f"{emulator.url}/bot",
        "base_file_url": f"{emulator.url}/file/bot",
        "webhook_url": f"http://127.0.0.1:{port}/telegram/updates",
        "webhook_listen": "127.0.0.1",
        "webhook_port": port,
    }
    settings.telegram = TelegramSettings(**{**defaults, **telegram})
    settings.limits = LimitSettings(max_upload_bytes=UPLOAD_LIMIT)
    return settings


class TelegramEmulator:
    """Telemelya and an S3 emulator, running for the duration of a `with` block."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    @contextlib.contextmanager
    def start(cls, redis_url: str) -> Iterator["TelegramEmulator"]:
        from moto.server import ThreadedMotoServer
        from telemelya.server.config import settings as telemelya_settings

        s3_port, api_port = free_port(), free_port()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every S3 request
        s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
        s3.start()
        try:
            telemelya_settings.redis_url = redis_url
            telemelya_settings.minio_endpoint = f"127.0.0.1:{s3_port}"
            telemelya_settings.minio_access_key = telemelya_settings.minio_secret_key = "testing"
            telemelya_settings.auth_keys = ""
            _extend_telemelya()
            from telemelya.server.app import app

            server = _ThreadedServer(app, api_port)
            server.start()
            try:
                yield cls(f"http://127.0.0.1:{api_port}")
            finally:
                server.stop()
        finally:
            s3.stop()

    def session(self, bot_token: str, secret_token: str, webhook_port: int = 0) -> "EmulatorSession":
        return EmulatorSession(self.url, bot_token, secret_token, webhook_port)


class EmulatorSession:
    """One test's view of the emulator: it sends updates as people and reads the bot's calls in order.
    webhook_port: where the bot listens for updates, for tests that post to it directly."""

    _ids = itertools.count(int(time.time() * 1000) % 10**9)

    def __init__(self, url: str, bot_token: str, secret_token: str, webhook_port: int = 0) -> None:
        self.bot_token = bot_token
        self.secret_token = secret_token
        self.webhook_port = webhook_port
        self.session_id = f"editbot-{uuid.uuid4()}"
        self.http = httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer test"}, timeout=WAIT_SECONDS)
        self._seen = 0

    async def close(self) -> None:
        await self.http.aclose()

    @classmethod
    def new_id(cls) -> int:
        """A fresh chat, user or message id: ids map to sessions in the emulator, so tests never share one."""
        return next(cls._ids)

    # ------------------------------------------------------------------ what people do

    async def upload(self, data: bytes, filename: str) -> str:
        """Put file bytes on the emulator; returns the file_id an update can refer to."""
        response = await self.http.post(
            "/api/v1/test/upload_media",
            params={"session_id": self.session_id},
            files={"file": (filename, data, "application/octet-stream")},
        )
        response.raise_for_status()
        return response.json()["file_id"]

    async def deliver(self, update: dict, chat_id: int) -> None:
        response = await self.http.post(
            "/api/v1/test/harness/deliver",
            json={
                "session_id": self.session_id,
                "chat_id": chat_id,
                "update": {"update_id": self.new_id(), **update},
                "bot_token": self.bot_token,
                "secret_token": self.secret_token,
            },
        )
        response.raise_for_status()
        outcome = response.json()
        assert outcome.get("delivered") and outcome["status_code"] == 200, outcome

    async def download(self, file_id: str) -> bytes:
        """The bytes of a file the bot sent."""
        response = await self.http.get(f"/api/v1/test/media/{file_id}", params={"session_id": self.session_id})
        response.raise_for_status()
        return response.content

    async def commands(self) -> list[dict] | None:
        response = await self.http.get("/api/v1/test/harness/commands", params={"bot_token": self.bot_token})
        response.raise_for_status()
        return response.json()["commands"]

    # ------------------------------------------------------------------ what the bot did

    async def responses(self) -> list[dict]:
        """Every Bot API call the bot made in this session, in order."""
        response = await self.http.get("/api/v1/test/responses", params={"session_id": self.session_id})
        response.raise_for_status()
        return response.json()["responses"]

    async def expect(self, method: str, where: Callable[[dict], bool] = lambda record: True) -> dict:
        """The next call (after those already expected) with this method matching `where`; fails after a wait."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            records = await self.responses()
            for index in range(self._seen, len(records)):
                if records[index]["method"] == method and where(records[index]):
                    self._seen = index + 1
                    return records[index]
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot never called {method}; it called {[r['method'] for r in records]}")
            await asyncio.sleep(0.05)

    async def settle(self) -> list[dict]:
        """Calls made since the last expectation, once the bot has gone quiet for a moment."""
        count = -1
        records = await self.responses()
        while count != len(records):
            count = len(records)
            await asyncio.sleep(0.3)
            records = await self.responses()
        return records[self._seen :]


def _entities(text: str) -> list[dict]:
    """The entities Telegram marks in a text: a leading command and mentions of the bot (ASCII texts only)."""
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    mention = f"@{BOT_USERNAME}"
    start = text.find(mention)
    while start >= 0:
        entities.append({"type": "mention", "offset": start, "length": len(mention)})
        start = text.find(mention, start + 1)
    return entities


class Person:
    """Someone talking to the bot in one chat (private unless `chat_type` says otherwise)."""

    def __init__(self, session: EmulatorSession, *, chat_id: int | None = None, chat_type: str = "private") -> None:
        self.session = session
        self.user_id = session.new_id()
        self.chat_id = chat_id if chat_id is not None else self.user_id
        self.chat_type = chat_type

    async def send(self, **fields) -> None:
        """Send a message with these fields (text, photo, document, location...) to the bot's chat."""
        chat = {"id": self.chat_id, "type": self.chat_type}
        if self.chat_type != "private":
            chat["title"] = "Test group"
        message = {
            "message_id": self.session.new_id(),
            "from": {"id": self.user_id, "is_bot": False, "first_name": f"Tester{self.user_id}"},
            "chat": chat,
            "date": int(time.time()),
            **fields,
        }
        await self.session.deliver({"message": message}, self.chat_id)

    async def say(self, text: str, *, reply_to: dict | None = None) -> None:
        fields: dict = {"text": text, "entities": _entities(text)}
        if reply_to is not None:
            fields["reply_to_message"] = reply_to
        await self.send(**fields)

    async def send_photo(
        self, sizes: list[tuple[bytes, int, int]], caption: str | None = None, *, file_size: int | None = None,
        media_group_id: str | None = None,
    ) -> None:
        """A compressed photo: one (bytes, width, height) per size Telegram made, smallest first; media_group_id:
        one photo of an album (each comes as its own update)."""
        photo = []
        for data, width, height in sizes:
            file_id = await self.session.upload(data, "photo.jpg")
            photo.append({
                "file_id": file_id,
                "file_unique_id": file_id[:16],
                "width": width,
                "height": height,
                "file_size": file_size or len(data),
            })
        fields: dict = {"photo": photo}
        if media_group_id is not None:
            fields["media_group_id"] = media_group_id
        if caption is not None:
            fields.update(caption=caption, caption_entities=_entities(caption))
        await self.send(**fields)

    async def send_document(
        self, data: bytes, filename: str, mime_type: str, caption: str | None = None, *, file_size: int | None = None
    ) -> None:
        """A file sent uncompressed. file_size may claim more than the bytes (to test limits without 20 MB)."""
        file_id = await self.session.upload(data, filename)
        document = {
            "file_id": file_id,
            "file_unique_id": file_id[:16],
            "file_name": filename,
            "mime_type": mime_type,
            "file_size": file_size or len(data),
        }
        fields: dict = {"document": document}
        if caption is not None:
            fields.update(caption=caption, caption_entities=_entities(caption))
        await self.send(**fields)

    async def press(self, data: str, message_id: int) -> str:
        """Press an inline button with this callback data under the bot's message; returns the query id."""
        query_id = str(uuid.uuid4())
        message = {
            "message_id": message_id,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot", "username": BOT_USERNAME},
            "chat": {"id": self.chat_id, "type": self.chat_type},
            "date": int(time.time()),
            "photo": [{"file_id": "shown", "file_unique_id": "shown", "width": 64, "height": 64}],
        }
        query = {
            "id": query_id,
            "from": {"id": self.user_id, "is_bot": False, "first_name": f"Tester{self.user_id}"},
            "chat_instance": str(self.chat_id),
            "message": message,
            "data": data,
        }
        await self.session.deliver({"callback_query": query}, self.chat_id)
        return query_id
