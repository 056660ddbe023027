"""Retention as people see it: a visit keeps a tree, and an edit whose tree is purged while it runs is reported."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.queue import EditQueue
from core.runner import PURGED_WHILE_EDITING, EditRunner
from tests.support.chat import Chat, images, texts
from tests.support.fakes import FakeEditor


def a_moment_between() -> datetime:
    time.sleep(0.002)
    moment = datetime.now(UTC)
    time.sleep(0.002)
    return moment


async def test_undo_goto_and_buttons_count_as_use(chat, history):
    [result] = images(await chat.photo("make it night"))
    cutoff = a_moment_between()
    await chat("/undo")
    assert history.purge_before(cutoff) == 0
    cutoff = a_moment_between()
    await chat.press("compare", result.node_id)
    assert history.purge_before(cutoff) == 0
    assert history.purge_before(a_moment_between()) == 2  # and once nobody uses it, it goes


async def test_an_edit_whose_tree_is_purged_while_it_runs_says_so(history, image_store):
    gate = threading.Event()
    editor = FakeEditor(gate=gate)
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store)))
    await engine.start()
    try:
        chat = Chat(engine, ChatKey("test", "chat", "alice"))
        await chat.photo()
        running = asyncio.create_task(chat("make it night"))
        await asyncio.to_thread(editor.started.wait, 10)
        assert history.purge_before(datetime.now(UTC) + timedelta(days=1)) == 1  # an operator's purge-all
        gate.set()
        replies = await running
    finally:
        await engine.close()
    assert [reply.text for reply in texts(replies) if reply.error] == [PURGED_WHILE_EDITING]
