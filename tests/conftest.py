"""Shared fixtures: an engine over in-memory storage and a fake editor, and a `chat` helper that talks to it
the way an adapter would."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.domain import ChatKey
from core.engine import ConversationEngine
from core.messages import ImageReply, Incoming, Press, ProgressReply, TextReply
from core.jobs import EditRunner
from core.queue import EditQueue
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.fakes import FakeEditor


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


@pytest.fixture
def editor() -> FakeEditor:
    return FakeEditor()


@pytest.fixture
def history() -> InMemoryHistoryRepository:
    return InMemoryHistoryRepository()


@pytest.fixture
def image_store() -> InMemoryImageStore:
    return InMemoryImageStore()


@pytest.fixture
def translator():
    """The engine's translator: None (non-English is held back) unless a test module overrides this fixture."""
    return None


@pytest.fixture
async def engine(editor, history, image_store, translator):
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store)),
                                translator=translator)
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
def chat(engine) -> Chat:
    return Chat(engine, ChatKey("test", "chat-1", "alice"))

