"""EDITBOT_MAX_STORED_MB_PER_PERSON: once a person's pictures take their room, new photos and edits are refused in
one line, before any model time; other people are not affected."""

from __future__ import annotations

import pytest

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.queue import EditQueue
from core.runner import EditRunner
from tests.support.chat import Chat, images, texts

ROOM = "take all the room I keep for one person"


@pytest.fixture
async def small_room(editor, history, image_store):
    """An engine that keeps about one small photo and one edit per person."""
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store)),
                                max_stored_bytes_per_person=1)
    await engine.start()
    yield engine
    await engine.close()


async def test_a_full_room_refuses_new_photos_and_edits(small_room, history, editor):
    alice = Chat(small_room, ChatKey("test", "chat", "alice"))
    assert "Got your photo" in texts(await alice.photo())[0].text  # nothing stored yet: room left
    assert history.stored_bytes("test:alice") > 0
    before = history.conversation(alice.key)
    for attempt in (alice.photo(), alice("make it night"), alice("/rotate 90")):
        [reply] = await attempt
        assert reply.error and ROOM in reply.text and "\n" not in reply.text
    assert editor.calls == [] and history.conversation(alice.key) == before
    bob = Chat(small_room, ChatKey("test", "chat", "bob"))
    assert "Got your photo" in texts(await bob.photo())[0].text


async def test_what_an_edit_stores_is_counted(chat, history, image_store):
    await chat.photo()
    photo = history.stored_bytes("test:alice")
    [result] = images(await chat("make it night"))
    stored = image_store.get(history.node(result.node_id).image_hash)  # as stored (JPEG XL), not as sent (PNG)
    assert history.stored_bytes("test:alice") == photo + len(stored)


async def test_a_full_room_is_what_a_refused_photo_hears_even_when_the_photo_is_unreadable(small_room, history):
    # The room is read while the photo is decoded: the answer is still the one a check made first would give.
    alice = Chat(small_room, ChatKey("test", "chat", "alice"))
    await alice.photo()
    [reply] = await alice.photo(data=b"not a picture at all")
    assert reply.error and ROOM in reply.text
