"""A node whose image file is gone (deleted by hand, a lost disk): every command that needs it says so in one line and
leaves the conversation where it was; nothing says "try again"."""

from __future__ import annotations

import pytest

from tests.support.chat import images

GONE = "That picture is no longer stored"


def lose(image_store, history, node_id: int) -> None:
    """Delete one node's image file, as an operator's hand or a lost disk would."""
    gone = history.node(node_id).image_hash
    image_store.grace_seconds = 0
    image_store.sweep(keep={digest for digest in image_store._stored_at if digest != gone})
    assert not image_store.exists(gone)


@pytest.fixture
async def three_steps(chat, history):
    await chat.photo("make it night")
    await chat("add stars")
    return history.path(history.conversation(chat.key).head_id)


@pytest.mark.parametrize("command", ["/undo", "/goto 1", "/original"])
async def test_moving_to_a_missing_picture_changes_nothing(chat, history, image_store, three_steps, command):
    root, night, stars = three_steps
    lose(image_store, history, {"/undo": night, "/goto 1": night, "/original": root}[command].id)
    before = history.conversation(chat.key)
    [reply] = await chat(command)
    assert reply.error and reply.text.startswith(GONE), reply.text
    assert history.conversation(chat.key) == before


async def test_the_undo_button_checks_first_too(chat, history, image_store, three_steps):
    _, night, stars = three_steps
    lose(image_store, history, night.id)
    before = history.conversation(chat.key)
    [reply] = await chat.press("undo", stars.id)
    assert reply.error and reply.text.startswith(GONE)
    assert history.conversation(chat.key) == before


@pytest.mark.parametrize("command", ["add snow", "/history", "/compare", "/retry", "/variations 2"])
async def test_using_a_missing_picture_says_so(chat, history, image_store, editor, three_steps, command):
    _, night, stars = three_steps
    lose(image_store, history, night.id if command in ("/retry", "/variations 2") else stars.id)
    calls, before = len(editor.calls), history.conversation(chat.key)
    replies = await chat(command)
    assert [reply.text[:len(GONE)] for reply in replies] == [GONE] and not images(replies)
    assert len(editor.calls) == calls and history.conversation(chat.key) == before
