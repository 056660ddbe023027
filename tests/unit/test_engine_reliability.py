"""Many people at once through the real engine, on SQLite and the file image store: nothing lost, no lock errors,
every tree valid."""

from __future__ import annotations

import asyncio
import hashlib

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.queue import EditQueue
from core.runner import EditRunner
from storage.blobs import FileImageStore
from storage.database import make_engine
from storage.migrate import upgrade
from storage.repository import SqlHistoryRepository
from tests.support.chat import Chat, images, texts
from tests.support.fakes import FakeEditor

PEOPLE = 50


async def converse(chat: Chat) -> list:
    """A short conversation with a branch: photo+edit, refine, undo, edit again."""
    replies = []
    replies += await chat.photo("make it night")
    replies += await chat("add stars")
    replies += await chat("/undo")
    replies += await chat("add snow")
    replies += await chat("/steps 3")
    return replies


async def test_fifty_conversations_at_once_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'editbot.sqlite3'}"
    upgrade(url)
    history = SqlHistoryRepository(make_engine(url))
    store = FileImageStore(tmp_path / "images")
    editor = FakeEditor()
    queue = EditQueue(EditRunner(editor, history, store), max_waiting_total=PEOPLE)
    engine = ConversationEngine(history, store, queue)
    await engine.start()
    try:
        chats = [Chat(engine, ChatKey("test", f"chat-{n % 5}", f"user-{n}")) for n in range(PEOPLE)]
        results = await asyncio.gather(*(converse(chat) for chat in chats))
    finally:
        await engine.close()

    for chat, replies in zip(chats, results):
        errors = [reply.text for reply in texts(replies) if reply.error]
        assert errors == [], (chat.key, errors)
        assert len(images(replies)) == 4  # three edits and the undo
        conversation = history.conversation(chat.key)
        head = history.node(conversation.head_id)
        assert head.instruction == "add snow" and head.conversation_id == conversation.id
        path = history.path(head.id)
        assert [node.instruction for node in path] == [None, "make it night", "add snow"]
        assert [node.instruction for node in history.children(path[1].id)] == ["add stars", "add snow"]
        for node in path:
            assert hashlib.sha256(store.get(node.image_hash)).hexdigest() == node.image_hash
        assert conversation.settings.steps == 3
    assert len(editor.calls) == PEOPLE * 3
