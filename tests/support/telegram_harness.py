"""A Bot API emulator for end-to-end tests of the Telegram adapter, over real HTTP.

Telemelya (a mock Bot API server: FastAPI + Redis + S3) runs in a background thread on a free port, with moto's S3
server beside it. The real PTB Application talks to it as it would to Telegram: getMe, setWebhook, sendPhoto,
getFile and file downloads, editMessageText... Telemelya records every bot call per test session.

Telemelya lacks a few Bot API methods the adapter uses, and builds only simple updates; this module adds, to the
emulator's own app: sendDocument and set/deleteMyCommands (recorded like Telemelya's methods), and a control
endpoint that delivers a raw Update (documents, file sizes, several photo sizes, groups, replies) to the webhook
with the secret-token header, as Telegram does. The session and the people who talk to the bot:
tests/support/telegram_session.py.

    with TelegramEmulator.start(redis_url) as emulator:
        session = emulator.session(bot_token, webhook_secret(bot_token))
        await Person(session).send_photo([(jpeg_bytes, 96, 64)], caption="make it night")
        record = await session.expect("sendPhoto")
"""

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

from tests.support.telegram_session import WAIT_SECONDS, EmulatorSession

UPLOAD_LIMIT = 5 * 1024 * 1024
"""The bot's upload limit in these tests: small, so limits are tested without big files."""


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
