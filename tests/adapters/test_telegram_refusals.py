"""End-to-end tests of the Telegram adapter's refusals (as in test_telegram.py, against the Bot API emulator):
oversized, broken and non-image files, unsupported messages, forged, stale and someone else's buttons. Each is
answered with one line and changes nothing."""

from __future__ import annotations

import pytest

from bot.telegram_adapter import UNSUPPORTED
from tests.support.chat import photo_bytes
from tests.support.telegram_harness import UPLOAD_LIMIT
from tests.support.telegram_session import (
    Person,
    buttons,
    edit_photo,
    key_of,
    stepping_editor,
)

editor = stepping_editor  # conftest's editor, but each step takes a moment, as a real edit does


@pytest.mark.parametrize("as_document", [False, True], ids=["photo", "document"])
async def test_oversized_file_is_refused_before_download(session, history, as_document):
    alice = Person(session)
    claimed = UPLOAD_LIMIT + 1024 * 1024
    if as_document:
        await alice.send_document(photo_bytes(), "huge.jpg", "image/jpeg", caption="make it night", file_size=claimed)
    else:
        await alice.send_photo([(photo_bytes(), 96, 64)], caption="make it night", file_size=claimed)
    refusal = await session.expect("sendMessage")

    assert "6.0 MB" in refusal["text"] and "5.0 MB" in refusal["text"]
    assert history.conversation(key_of(alice)).head_id is None
    assert not [call for call in await session.settle() if call["method"] in ("sendPhoto", "sendDocument")]


async def test_broken_image_file_is_refused_with_one_line(session, history):
    alice = Person(session)
    await alice.send_document(b"these bytes are not a picture" * 10, "photo.png", "image/png", caption="make it night")
    refusal = await session.expect("sendMessage")

    assert refusal["text"].startswith("⚠️") and "\n" not in refusal["text"]
    assert "Traceback" not in refusal["text"]
    assert history.conversation(key_of(alice)).head_id is None


async def test_file_that_is_not_an_image_is_refused_without_downloading(session):
    alice = Person(session)
    await alice.send_document(b"%PDF-1.7", "report.pdf", "application/pdf")
    refusal = await session.expect("sendMessage")
    assert "isn't an image" in refusal["text"]


async def test_unsupported_message_gets_a_hint(session):
    alice = Person(session)
    await alice.send(location={"latitude": 51.5, "longitude": -0.1})
    hint = await session.expect("sendMessage")
    assert hint["text"] == UNSUPPORTED


@pytest.mark.parametrize("data", ["garbage", "undo:99999999", "undo:abc", "x" * 64])
async def test_forged_or_stale_button_is_answered_and_changes_nothing(session, history, data):
    alice = Person(session)
    result = await edit_photo(session, alice, "make it night")
    head = history.conversation(key_of(alice)).head_id

    query_id = await alice.press(data, result["message_id"])
    answer = await session.expect("answerCallbackQuery")

    assert answer["callback_query_id"] == query_id
    assert answer["text"] and answer["show_alert"]
    assert history.conversation(key_of(alice)).head_id == head
    assert not [call for call in await session.settle() if call["method"] != "answerCallbackQuery"]


async def test_pressing_someone_elses_button_is_refused(session, history):
    alice, bob = Person(session), Person(session)
    first = await edit_photo(session, alice, "make it night")
    await alice.say("add a moon")
    second = await session.expect("sendPhoto")
    head = history.conversation(key_of(alice)).head_id

    await bob.press(buttons(second)["↶ Undo"].data, second["message_id"])
    answer = await session.expect("answerCallbackQuery")

    assert answer["show_alert"] and "someone else" in answer["text"]
    assert history.conversation(key_of(alice)).head_id == head != buttons(first)["↶ Undo"].node_id
