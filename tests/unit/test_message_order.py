"""One conversation's messages are answered in the order they came (core/conversation/turns.py): a message waits
for the ones before it, except /cancel, and an edit lets the next message go once it is queued."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.offload import in_image_thread
from tests.support.chat import images, texts
from tests.support.fakes import gated_editor

FLOOD = 64  # more than the image pool has threads: a photo's intake waits until they are let go


editor = gated_editor  # conftest's editor, held by `gate` after its first step


@pytest.fixture
async def image_threads_busy():
    """Every image thread blocked until the test calls the fixture's value."""
    release = threading.Event()
    blocked = [asyncio.create_task(in_image_thread(release.wait, 30)) for _ in range(FLOOD)]
    await asyncio.sleep(0.1)
    yield release.set
    release.set()
    await asyncio.gather(*blocked)


async def test_an_instruction_sent_just_after_a_photo_edits_that_photo(chat, gate, history, image_threads_busy):
    gate.set()
    photo = asyncio.create_task(chat.photo())
    instruction = asyncio.create_task(chat("make it night"))
    await asyncio.sleep(0.2)
    assert not instruction.done()  # it waits for the photo, still in intake
    image_threads_busy()
    await photo
    replies = await asyncio.wait_for(instruction, timeout=10)
    assert not [reply for reply in texts(replies) if reply.error]
    [result] = images(replies)
    root = history.node(result.node_id).parent_id
    assert history.node(root).parent_id is None  # a child of the photo sent just before


async def test_cancel_does_not_wait_for_earlier_messages(chat, gate, image_threads_busy):
    gate.set()
    photo = asyncio.create_task(chat.photo())
    instruction = asyncio.create_task(chat("make it night"))
    await asyncio.sleep(0.1)
    [reply] = await asyncio.wait_for(chat("/cancel"), timeout=5)
    assert reply.text == "You have no edit on the way."
    assert not instruction.done()
    image_threads_busy()
    await asyncio.gather(photo, instruction)


async def test_the_next_message_is_answered_while_an_edit_runs(chat, editor, gate):
    await chat.photo()
    running = asyncio.create_task(chat("make it night"))
    await asyncio.to_thread(editor.started.wait, 5)
    replies = await asyncio.wait_for(chat("/settings"), timeout=5)
    assert texts(replies) and not texts(replies)[0].error
    gate.set()
    assert images(await running)

