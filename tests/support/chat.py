"""Talking to the engine the way an adapter would: a `Chat` per person, and filters over the replies."""

from __future__ import annotations

import io

from PIL import Image

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.messages import ImageReply, Incoming, Press, ProgressReply, TextReply


def photo_bytes(size=(96, 64), colour=(30, 120, 200), fmt="JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


class Chat:
    """One person talking to the engine. Each call returns the replies, in order."""

    def __init__(self, engine: ConversationEngine, key: ChatKey) -> None:
        self.engine = engine
        self.key = key

    async def _send(self, incoming: Incoming) -> list:
        replies = []

        async def send(reply):
            replies.append(reply)

        await self.engine.handle(incoming, send)
        return replies

    async def __call__(self, text: str) -> list:
        return await self._send(Incoming(self.key, text=text))

    async def photo(self, caption: str | None = None, data: bytes | None = None) -> list:
        return await self._send(Incoming(self.key, text=caption, image=data or photo_bytes()))

    async def press(self, action: str, node_id: int) -> list:
        return await self._send(Incoming(self.key, action=Press(action, node_id)))


def images(replies) -> list[ImageReply]:
    return [reply for reply in replies if isinstance(reply, ImageReply)]


def texts(replies) -> list[TextReply]:
    return [reply for reply in replies if isinstance(reply, TextReply)]


def progress(replies) -> list[ProgressReply]:
    return [reply for reply in replies if isinstance(reply, ProgressReply)]
