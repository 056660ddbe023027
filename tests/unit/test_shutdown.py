"""Embedded-mode shutdown: the running edit may finish within the grace period, waiting ones are told, and after a
restart every edit that did not finish is offered again with a button."""

from __future__ import annotations

import asyncio
import threading

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.queue import SHUTDOWN_BEFORE_START, SHUTDOWN_WHILE_RUNNING, EditQueue
from core.runner import EditRunner
from tests.support.chat import Chat, images, texts
from tests.support.fakes import FakeEditor


def make_engine(history, image_store, editor, grace: float = 0.0) -> ConversationEngine:
    queue = EditQueue(EditRunner(editor, history, image_store), max_waiting_total=10, shutdown_grace_seconds=grace)
    return ConversationEngine(history, image_store, queue)


async def test_close_lets_the_running_edit_finish_and_tells_the_waiting_ones(history, image_store):
    gate = threading.Event()
    editor = FakeEditor(gate=gate)
    engine = make_engine(history, image_store, editor, grace=10)
    await engine.start()
    alice, bob = (Chat(engine, ChatKey("test", "chat", name)) for name in ("alice", "bob"))
    await alice.photo()
    await bob.photo()
    running = asyncio.create_task(alice("make it night"))
    await asyncio.to_thread(editor.started.wait, 10)
    waiting = asyncio.create_task(bob("make it day"))
    await asyncio.sleep(0.1)
    closing = asyncio.create_task(engine.close())
    await asyncio.sleep(0.1)
    assert [reply.text for reply in texts(await waiting)] == [SHUTDOWN_BEFORE_START]
    gate.set()  # the running edit finishes within the grace period
    await closing
    assert images(await running)
    assert [(conversation.key.user_id, instruction) for conversation, _, instruction
            in history.take_interrupted_edits()] == [("bob", "make it day")]


async def test_past_the_grace_period_the_running_edit_is_stopped_and_kept(history, image_store):
    editor = FakeEditor(gate=threading.Event())  # never opens
    engine = make_engine(history, image_store, editor, grace=0.1)
    await engine.start()
    alice = Chat(engine, ChatKey("test", "chat", "alice"))
    await alice.photo()
    running = asyncio.create_task(alice("make it night"))
    await asyncio.to_thread(editor.started.wait, 10)
    await engine.close()
    assert [reply.text for reply in texts(await running)] == [SHUTDOWN_WHILE_RUNNING]
    [(conversation, parent_id, instruction)] = history.take_interrupted_edits()
    assert instruction == "make it night" and parent_id == history.conversation(alice.key).head_id


async def test_after_a_restart_the_interrupted_edit_is_offered_with_a_button(history, image_store, editor):
    first = make_engine(history, image_store, editor)
    alice_key = ChatKey("test", "chat", "alice")
    await Chat(first, alice_key).photo()
    conversation = history.conversation(alice_key)
    history.note_edit(conversation.id, conversation.head_id, "make it night")  # then the process was killed
    second = make_engine(history, image_store, editor)
    told = []

    async def send(reply):
        told.append(reply)

    await second.start(send_to=lambda key: send)
    try:
        [offer] = told
        assert "interrupted" in offer.caption and "make it night" in offer.caption
        [button] = offer.buttons
        replies = await Chat(second, alice_key).press(button.press.action, button.press.node_id)
        assert images(replies) and editor.calls[-1][0] == "make it night"
        assert history.take_interrupted_edits() == []  # offered once; the retry ran and ended
    finally:
        await second.close()
