"""Showing a finished edit while the image store is out. The edit is done and recorded, so the person waits for its
picture (told once) instead of getting an error; one clear line, saying the edit is kept, if storage stays out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from core.errors import StorageUnavailable, UserError
from core.messages import Send, TextReply

WAITING_LINE = "Your edit is done, but storage is not answering right now: I'll send it as soon as it is back."
STILL_OUT_LINE = "Storage is still not answering. Your edit is kept: /history shows it once storage is back."
FIRST_WAIT_SECONDS, LONGEST_WAIT_SECONDS = 0.5, 5.0
GIVE_UP_SECONDS = 120.0
T = TypeVar("T")


async def patiently(read: Callable[[], Awaitable[T]], send: Send) -> T:
    """read() again, waiting longer each time (up to LONGEST_WAIT_SECONDS), while it raises StorageUnavailable; the
    person hears WAITING_LINE before the first wait, and STILL_OUT_LINE (a UserError) after GIVE_UP_SECONDS."""
    started, wait, told, give_up_after = time.monotonic(), FIRST_WAIT_SECONDS, False, GIVE_UP_SECONDS
    while True:
        try:
            return await read()
        except StorageUnavailable as error:
            if time.monotonic() - started + wait > give_up_after:
                raise UserError(STILL_OUT_LINE) from error
            if not told:
                await send(TextReply(WAITING_LINE))
                told = True
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT_SECONDS)
