"""Fetching a person's photo or image file from Telegram, within the upload limit.

Refused before any byte is fetched: a size declared over the limit, a document that says it is not an image.
A file whose size is not declared (or is declared wrongly) is streamed and dropped as soon as it passes the limit,
so it never costs more than the limit in memory. A file Telegram will not serve (getFile answers 400, e.g. "file
is too big" for bots) is explained as such, not as our own failure.
"""

from __future__ import annotations

import logging

import httpx
from telegram import Message
from telegram.error import BadRequest

from bot.chat_common import over_limit, refuse_declared_size
from core.errors import BadImage, UserError

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60.0


async def download_image(message: Message, limit: int) -> bytes:
    """The bytes of the message's image: the largest photo size, or the document as sent (lossless)."""
    if message.photo:
        item = max(message.photo, key=lambda size: size.width * size.height)
        what = "photo"
    else:
        item = message.document
        what = "file"
        mime = item.mime_type or ""
        if mime and not mime.startswith("image/") and mime != "application/octet-stream":
            raise BadImage("That file isn't an image: send a photo, or a JPEG, PNG, WebP or GIF file.")
    refuse_declared_size(item.file_size, limit, what)
    try:
        file = await item.get_file()
    except BadRequest as refusal:
        raise UserError(f"Telegram would not give me that {what} ({refusal.message.rstrip('.')}); "
                        "please send it again, or a smaller copy.") from None
    data = await _fetch_at_most(file.file_path, limit)
    if data is None:
        raise BadImage(over_limit(limit, what))
    return data


async def _fetch_at_most(url: str, limit: int) -> bytes | None:
    """The body at `url`, or None as soon as it passes `limit` bytes (the rest is never read)."""
    received = bytearray()
    try:
        async with httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT_S) as client:
            async with client.stream("GET", url) as response:
                response.raise_for_status()
                async for chunk in response.aiter_bytes():
                    received += chunk
                    if len(received) > limit:
                        return None
    except httpx.HTTPError as error:  # the URL holds the token: log the kind of failure, not the message
        log.warning("could not download a file from Telegram: %s", type(error).__name__)
        raise UserError("I couldn't download that image from Telegram; please send it again.") from None
    return bytes(received)
