"""Shared fixtures: an engine over in-memory storage and a fake editor, the `chat` that talks to it the way an
adapter would (tests/support/chat.py), and a fresh PostgreSQL schema for tests that need one."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.queue import EditQueue
from core.reply_previews import reply_previews
from core.runner import EditRunner
from storage.database import make_engine
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.chat import Chat
from tests.support.fakes import FakeEditor
from tests.support.standins import MaskSegmenter, left_half_mask

POSTGRES_ENV = "EDITBOT_TEST_POSTGRES_URL"


@pytest.fixture
def editor() -> FakeEditor:
    return FakeEditor()


@pytest.fixture
def gate() -> threading.Event:
    """Holds a gated editor's edits (tests.support.fakes.gated_editor) after their first step until the test sets it."""
    return threading.Event()


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
def segmenter() -> MaskSegmenter:
    """A stand-in for CLIPSeg: whatever the words, it finds the left half of the picture."""
    return MaskSegmenter(left_half_mask())


@pytest.fixture
def jpeg_previews() -> bool:
    """Whether results are shown as JPEG previews, as the chat bots show them (bot/bootstrap.py): lossless PNGs
    unless a test module overrides this fixture."""
    return False


@pytest.fixture
async def engine(editor, history, image_store, translator, segmenter, jpeg_previews):
    # As bot/bootstrap.py wires them: a runner makes the replies' JPEGs where replies are shown as JPEGs.
    runner = EditRunner(editor, history, image_store, segmenter=segmenter,
                        previews=reply_previews if jpeg_previews else None)
    engine = ConversationEngine(history, image_store, EditQueue(runner), translator=translator, segmenter=segmenter,
                                jpeg_previews=jpeg_previews)
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
def chat(engine) -> Chat:
    return Chat(engine, ChatKey("test", "chat-1", "alice"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A migrated-ready URL whose search_path is a fresh schema, dropped after the test."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    admin = make_engine(base)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_ENV} is unreachable: {error.orig}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
