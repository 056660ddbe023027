"""Admin commands: only allowlisted people may use them, everyone else cannot tell they exist."""

from __future__ import annotations

import asyncio

import pytest

from core.conversation.admin import AdminCommands
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.messages import ProgressReply
from core.queue import EditQueue
from core.runner import EditRunner
from tests.support.chat import Chat, images
from tests.support.fakes import gated_editor

ADMIN = ChatKey("telegram", "group-1", "42")
STRANGER = ChatKey("telegram", "group-1", "43")
ADMIN_COMMANDS = ("queue", "usage", "pause", "resume")


editor = gated_editor  # conftest's editor, held by `gate` after its first step


@pytest.fixture
async def engine(editor, history, image_store):
    queue = EditQueue(EditRunner(editor, history, image_store), max_waiting_per_person=5)
    engine = ConversationEngine(history, image_store, queue,
                                command_groups=[AdminCommands(queue, history, ["telegram:42", "discord:7"])])
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
def admin(engine) -> Chat:
    return Chat(engine, ADMIN)


async def until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("name", ADMIN_COMMANDS)
async def test_a_non_admin_gets_the_unknown_command_answer(engine, name):
    stranger = Chat(engine, STRANGER)
    [answer] = await stranger(f"/{name}")
    [unknown] = await stranger(f"/{name}x")
    assert answer.error
    assert answer.text == unknown.text.replace(f"/{name}x", f"/{name}")
    # The same person id on another platform is someone else.
    [other_platform] = await Chat(engine, ChatKey("discord", "g", "42"))(f"/{name}")
    assert other_platform.text == answer.text


async def test_admin_commands_stay_out_of_help_and_menus(engine, admin):
    names = {info.name for info in engine.commands}
    assert names.isdisjoint(ADMIN_COMMANDS) and "undo" in names
    [help_reply] = await admin("/help")
    assert not any(f"/{name}" in help_reply.text for name in ADMIN_COMMANDS)


async def test_queue_status_and_pause_keep_waiting_edits_until_resume(engine, admin, editor, gate):
    [status] = await admin("/queue")
    assert "taking edits" in status.text and "Running: nothing" in status.text and "Waiting: 0" in status.text

    alice, bob = Chat(engine, ChatKey("test", "a", "alice")), Chat(engine, ChatKey("test", "b", "bob"))
    await alice.photo()
    await bob.photo()
    running = asyncio.create_task(alice("make it night"))
    await asyncio.to_thread(editor.started.wait, 5)
    [paused] = await admin("/pause")
    assert "Paused" in paused.text
    waiting = asyncio.create_task(bob("add snow"))
    await until(lambda: engine.queue.depth == 2)
    gate.set()
    assert images(await running)  # the running edit finishes despite the pause

    await until(lambda: engine.queue.depth == 1)
    [status] = await admin("/queue")
    assert "paused" in status.text and "Running: nothing" in status.text and "Waiting: 1" in status.text
    assert [instruction for instruction, _ in editor.calls] == ["make it night"]  # bob's has not started

    [resumed] = await admin("/resume")
    assert "Resumed" in resumed.text
    assert images(await waiting)
    assert [instruction for instruction, _ in editor.calls] == ["make it night", "add snow"]


async def test_waiting_edits_are_told_when_edits_are_paused_and_resumed(engine, admin, gate):
    alice, bob = Chat(engine, ChatKey("test", "a", "alice")), Chat(engine, ChatKey("test", "b", "bob"))
    await alice.photo()
    await bob.photo()
    running = asyncio.create_task(alice("make it night"))
    await until(lambda: engine.queue.status.running)
    waiting = asyncio.create_task(bob("add snow"))
    await until(lambda: engine.queue.depth == 2)
    await admin("/pause")
    await admin("/resume")
    gate.set()
    await running
    said = [reply.text for reply in await waiting if isinstance(reply, ProgressReply)]
    assert said[:3] == ["Queued: 1 ahead of you",
                        "Edits are paused for now: yours will run when they resume (1 ahead of you).",
                        "Queued: 1 ahead of you"]


async def test_usage_lists_people_by_edits(engine, admin, gate):
    gate.set()
    [empty] = await admin("/usage")
    assert empty.text == "No edits in the last 7 days."
    alice, bob = Chat(engine, ChatKey("test", "a", "alice")), Chat(engine, ChatKey("test", "b", "bob"))
    await alice.photo("one")
    await alice("two")
    await bob.photo("three")

    [usage] = await admin("/usage")
    assert usage.text.splitlines()[1:] == ["1. test:alice: 2", "2. test:bob: 1"]
    [top] = await admin("/usage 1")
    assert top.text.splitlines()[1:] == ["1. test:alice: 2"]


@pytest.mark.parametrize("argument", ["zero", "0", "101", "-3"])
async def test_usage_refuses_a_bad_count_in_one_line(admin, argument):
    [reply] = await admin(f"/usage {argument}")
    assert reply.error and "1 to 100" in reply.text and "\n" not in reply.text
