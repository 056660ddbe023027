"""The job queue: one edit at a time, one job per conversation, positions reported, cancel at any time."""

from __future__ import annotations

import asyncio


from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.queue import EditQueue
from core.runner import EditRunner
from tests.support.chat import Chat, images, progress, texts
from tests.support.fakes import gated_editor


editor = gated_editor  # conftest's editor, held by `gate` after its first step


async def wait_until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_second_edit_while_one_is_on_the_way_is_refused(chat, editor, gate, history):
    first = asyncio.create_task(chat.photo("make it night"))
    await asyncio.to_thread(editor.started.wait, 5)
    [reply] = await chat("add stars")
    assert reply.error and "/cancel" in reply.text
    gate.set()
    assert images(await first)
    assert [instruction for instruction, _ in editor.calls] == ["make it night"]


async def test_cancel_while_running_records_nothing(chat, editor, history):
    await chat.photo()
    root_id = history.conversation(chat.key).head_id
    running = asyncio.create_task(chat("make it night"))
    await asyncio.to_thread(editor.started.wait, 5)

    [reply] = await chat("/cancel")
    assert reply.text == "Cancelling your edit."
    replies = await running
    assert not images(replies)
    assert texts(replies)[-1].text == "Edit cancelled."
    assert history.children(root_id) == []
    assert history.conversation(chat.key).head_id == root_id
    [reply] = await chat("/cancel")
    assert reply.text == "You have no edit on the way."


async def test_waiting_jobs_hear_their_position_and_can_cancel(engine, editor, gate, history):
    alice = Chat(engine, ChatKey("test", "a", "alice"))
    bob = Chat(engine, ChatKey("test", "b", "bob"))
    carol = Chat(engine, ChatKey("test", "c", "carol"))
    for person in (alice, bob, carol):
        await person.photo()
    running = asyncio.create_task(alice("make it night"))
    await asyncio.to_thread(editor.started.wait, 5)
    bob_waits = asyncio.create_task(bob("add snow"))
    carol_waits = asyncio.create_task(carol("add rain"))
    await wait_until(lambda: engine.queue.depth == 3)

    [reply] = await bob("/cancel")
    assert reply.text == "Cancelling your edit."
    gate.set()
    alice_replies, bob_replies, carol_replies = await asyncio.gather(running, bob_waits, carol_waits)

    assert images(alice_replies) and images(carol_replies)
    assert not images(bob_replies) and texts(bob_replies)[-1].text == "Edit cancelled."
    assert "Queued: 1 ahead of you" in [reply.text for reply in progress(bob_replies)]
    carol_positions = [reply.position for reply in progress(carol_replies) if not reply.total]
    assert carol_positions[0] == 2 and 1 in carol_positions and carol_positions[-1] == 0
    assert [instruction for instruction, _ in editor.calls] == ["make it night", "add rain"]


async def test_a_person_cannot_flood_the_queue_from_several_chats(history, image_store, gate, editor):
    queue = EditQueue(EditRunner(editor, history, image_store), max_waiting_per_person=1)
    engine = ConversationEngine(history, image_store, queue)
    await engine.start()
    try:
        chats = [Chat(engine, ChatKey("test", f"chat-{n}", "alice")) for n in range(3)]
        for chat in chats:
            await chat.photo()
        running = asyncio.create_task(chats[0]("one"))
        await asyncio.to_thread(editor.started.wait, 5)
        waiting = asyncio.create_task(chats[1]("two"))
        await wait_until(lambda: engine.queue.depth == 2)
        [reply] = await chats[2]("three")
        assert reply.error and "too many edits waiting" in reply.text
        gate.set()
        await asyncio.gather(running, waiting)
    finally:
        await engine.close()


async def test_a_crashing_editor_gives_one_line_and_records_nothing(chat, history, editor, gate):
    gate.set()

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: device-side assert")

    editor.edit = broken
    await chat.photo()
    root_id = history.conversation(chat.key).head_id
    replies = await chat("make it night")
    assert texts(replies)[-1].error and "nothing was changed" in texts(replies)[-1].text
    assert "CUDA" not in texts(replies)[-1].text
    assert history.children(root_id) == []
