"""Correcting a translation on each front-end: a reply in English to the translated result on Telegram, the Fix
translation button's box on Discord. The engine's rules (tests/unit/test_engine_translation.py) are the same behind
both; these check that each platform's gesture reaches them."""

from __future__ import annotations

import time

import pytest

from core.domain import Translation
from tests.adapters.test_discord import (
    DEFERRED_THINKING,
    MODAL_RESPONSE,
    acknowledgements,
    edit,
)
from tests.support.telegram_session import (
    BOT_ID,
    BOT_USERNAME,
    Person,
    buttons,
    edit_photo,
)
from tests.support.translation import PhraseBookTranslator

FRENCH = Translation("rends la photo enneigée", "French")


@pytest.fixture
def translator() -> PhraseBookTranslator:
    return PhraseBookTranslator({FRENCH.original: "make the photo sunny", "ajoute un chapeau": "add a hat"})


def from_the_bot(record: dict, chat_id: int) -> dict:
    """The message a person replies to, as Telegram includes it in their reply."""
    return {"message_id": record["message_id"], "chat": {"id": chat_id, "type": "private"}, "date": int(time.time()),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot", "username": BOT_USERNAME},
            "caption": record["caption"], "reply_markup": record["reply_markup"]}


def node_of(record: dict) -> int:
    return next(iter(buttons(record).values())).node_id


async def test_telegram_a_reply_in_english_to_a_translated_result_corrects_it(session, history, editor):
    alice = Person(session)
    result = await edit_photo(session, alice, FRENCH.original)
    assert result["caption"].startswith("“make the photo sunny” (from French)")
    assert "✎ Fix translation" in buttons(result)

    await alice.say("cover the photo in snow", reply_to=from_the_bot(result, alice.chat_id))
    notice = await session.expect("sendMessage")
    corrected = await session.expect("sendPhoto")

    assert "as the English you meant by “rends la photo enneigée”" in notice["text"]
    node = history.node(node_of(corrected))
    assert (node.instruction, node.translation) == ("cover the photo in snow", FRENCH)
    assert node.parent_id == history.node(node_of(result)).parent_id
    assert editor.calls[-1][0] == "cover the photo in snow"


async def test_telegram_a_reply_in_french_still_edits_the_result(session, history):
    alice = Person(session)
    result = await edit_photo(session, alice, FRENCH.original)
    await alice.say("ajoute un chapeau", reply_to=from_the_bot(result, alice.chat_id))
    hat = await session.expect("sendPhoto")
    node = history.node(node_of(hat))
    assert (node.instruction, node.parent_id) == ("add a hat", node_of(result))


async def test_telegram_fix_translation_says_to_reply(session):
    alice = Person(session)
    result = await edit_photo(session, alice, FRENCH.original)
    await alice.press(buttons(result)["✎ Fix translation"].data, result["message_id"])
    await session.expect("answerCallbackQuery")
    answer = await session.expect("sendMessage")
    assert "Reply to that picture with the English you meant" in answer["text"]


async def test_discord_fix_translation_asks_for_the_english_in_a_box(world, history, editor):
    env, _, channel, alice, _ = world
    [result] = (await edit(alice, channel, FRENCH.original)).followups
    assert result.content.startswith("“make the photo sunny” (from French)")

    shown = await alice.click(result, label="✎ Fix translation")
    assert shown.modal is not None
    submitted = await alice.submit_modal(shown, {"english": "cover the photo in snow"})

    assert acknowledgements(env)[-2:] == [MODAL_RESPONSE, DEFERRED_THINKING]
    [corrected] = submitted.followups
    assert corrected.content.startswith("“cover the photo in snow” (from French)") and corrected.attachments
    assert editor.calls[-1][0] == "cover the photo in snow"

