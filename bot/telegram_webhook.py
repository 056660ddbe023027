"""Webhook mode's HTTP front: a small aiohttp server that hands Telegram's updates to the PTB Application.

PTB's own webhook server (tornado) reads a request body of up to 100 MB before looking at the secret header, so
anyone could make the bot buffer hundreds of megabytes. Here a request is refused before its body is read when
the secret header is wrong (403) or the declared length exceeds what an update can be (413); a body sent without
a length is cut off at that size by aiohttp itself.

    async with webhook_server(application, allowed_updates=[...], **webhook_options(settings.telegram)):
        ...  # updates arrive in application.update_queue
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024
"""An update carries at most a 4096-character text or 1024-character caption, their entities, and the message it
replies to: tens of kilobytes. 1 MiB leaves room for what Telegram adds and refuses anything bigger unread."""


def webhook_handler(application: Application, secret_token: str):
    """The aiohttp handler: check the secret and the length from the headers, then read and queue the update."""
    expected = secret_token.encode()

    async def receive(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), expected):
            return web.Response(status=403)
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.Response(status=413)
        try:
            update = Update.de_json(json.loads(await request.read()), application.bot)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        except (ValueError, TypeError, KeyError, AttributeError):
            log.info("ignored a webhook request that is not an update")
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response()

    return receive


@asynccontextmanager
async def webhook_server(application: Application, *, listen: str, port: int, url_path: str, webhook_url: str,
                         secret_token: str, allowed_updates: list[str]) -> AsyncIterator[None]:
    """Serve `url_path` on listen:port and register `webhook_url` with Telegram, for as long as the block runs."""
    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_post(f"/{url_path}", webhook_handler(application, secret_token))
    # lingering_time=0: a refused request's unread body is not drained, the connection is closed instead.
    runner = web.AppRunner(app, access_log=None, lingering_time=0)
    await runner.setup()
    try:
        await web.TCPSite(runner, listen, port).start()
        await application.bot.set_webhook(webhook_url, secret_token=secret_token, allowed_updates=allowed_updates)
        yield
    finally:
        await runner.cleanup()
