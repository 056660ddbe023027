"""Conversations in other languages: translated once, shown as given to the model, and kept in the history."""

from __future__ import annotations

import pytest

from core.conversation.language import FIX_TRANSLATION
from core.domain import ChatKey, Translation
from core.messages import Incoming
from tests.support.chat import Chat, images, texts
from tests.support.translation import PhraseBookTranslator

PHRASES = {
    "rends la photo enneigée": "make the photo snowy",
    "haz que sea de noche": "make it night",
    "ajoute un chapeau rouge": "add a red hat",
}


@pytest.fixture
def translator() -> PhraseBookTranslator:
    return PhraseBookTranslator(PHRASES)


async def test_a_french_caption_is_edited_in_english_and_the_caption_says_so(chat, history, editor):
    [result] = images(await chat.photo("rends la photo enneigée"))
    assert result.caption.startswith("“make the photo snowy” (from French)\n")
    assert editor.calls[-1][0] == "make the photo snowy"
    node = history.node(result.node_id)
    assert node.instruction == "make the photo snowy"
    assert node.translation == Translation("rends la photo enneigée", "French")


async def test_english_is_never_sent_to_the_translator(chat, translator):
    await chat.photo("make it cyberpunk")
    assert translator.calls == []


async def test_history_shows_the_persons_words_and_retry_and_squash_use_the_english(chat, history, editor):
    await chat.photo("rends la photo enneigée")
    [hat] = images(await chat("ajoute un chapeau rouge"))
    [listing, _sheet] = await chat("/history")  # lists the person's words, the English the model got after them
    assert "1. “rends la photo enneigée” (in English: “make the photo snowy”)" in listing.text
    assert "2. “ajoute un chapeau rouge” (in English: “add a red hat”)  ◀ you are here" in listing.text

    [retried] = images(await chat("/retry"))
    assert editor.calls[-1][0] == "add a red hat"
    assert history.node(retried.node_id).translation == history.node(hat.node_id).translation
    assert "(from French)" in retried.caption

    assert len(images(await chat("/squash"))) == 1
    assert editor.calls[-1][0] == "make the photo snowy and add a red hat"


async def test_asis_runs_the_last_instruction_as_typed(chat, history, editor):
    [translated] = images(await chat.photo("haz que sea de noche"))
    [result] = images(await chat("/asis"))
    assert editor.calls[-1][0] == "haz que sea de noche"
    node = history.node(result.node_id)
    assert node.parent_id == history.node(translated.node_id).parent_id and node.translation is None
    [reply] = await chat("/asis")
    assert reply.error and "not translated" in reply.text


async def test_meant_corrects_the_translation_from_the_same_image(chat, history, editor):
    [translated] = images(await chat.photo("rends la photo enneigée"))
    [corrected] = images(await chat("/meant cover the photo in snow"))
    assert editor.calls[-1][0] == "cover the photo in snow"
    node = history.node(corrected.node_id)
    assert node.parent_id == history.node(translated.node_id).parent_id
    assert node.translation == Translation("rends la photo enneigée", "French")
    assert corrected.caption.startswith("“cover the photo in snow” (from French)")

    [reply] = await chat("/meant")
    assert reply.error and "/meant needs the English" in reply.text


async def test_an_instruction_the_translator_cannot_translate_is_held_back_until_asis(chat, editor):
    await chat.photo()
    calls = len(editor.calls)
    [reply] = await chat("mets des fleurs dans le jardin")  # not in the phrase book: comes back unchanged
    assert reply.error and "could not translate that from French" in reply.text and "/asis" in reply.text
    assert len(editor.calls) == calls
    [result] = images(await chat("/asis"))
    assert editor.calls[-1][0] == "mets des fleurs dans le jardin"


async def test_help_says_how_to_correct_a_translation(chat):
    [reply] = texts(await chat("/help"))
    assert "/meant" in reply.text and "/asis" in reply.text and "any language" in reply.text


async def test_info_shows_the_persons_words_beside_the_english(chat):
    await chat.photo("rends la photo enneigée")
    [reply] = texts(await chat("/info"))
    assert "Instruction: “make the photo snowy”" in reply.text
    assert "Translated from French: “rends la photo enneigée”" in reply.text


async def test_a_correction_too_long_for_the_model_waits_for_anyway(chat, history, editor):
    [translated] = images(await chat.photo("rends la photo enneigée"))
    calls = len(editor.calls)
    too_long = " ".join(["snowy"] * 80)  # under /meant's 500 characters, over CLIP's 75 tokens
    [reply] = await chat(f"/meant {too_long}")
    assert reply.error and "too long" in reply.text and "/anyway" in reply.text
    assert len(editor.calls) == calls
    [result] = images(await chat("/anyway"))
    assert editor.calls[-1][0] == too_long
    assert history.node(result.node_id).parent_id == history.node(translated.node_id).parent_id


async def test_meant_keeps_the_case_of_the_english(chat, editor):
    await chat.photo("rends la photo enneigée")
    await chat("/meant paint it like Van Gogh")
    assert editor.calls[-1][0] == "paint it like Van Gogh"


async def _send(engine, incoming) -> list:
    replies = []

    async def send(reply):
        replies.append(reply)

    await engine.handle(incoming, send)
    return replies


async def test_a_reply_in_english_to_a_translated_result_corrects_its_translation(chat, engine, history, editor):
    [translated] = images(await chat.photo("rends la photo enneigée"))
    await chat("ajoute un chapeau rouge")  # the translated result is no longer the current image
    replies = await _send(engine, Incoming(chat.key, text="cover the photo in snow", reply_to=translated.node_id))
    [notice] = texts(replies)
    assert "Taking “cover the photo in snow” as the English you meant by “rends la photo enneigée”" in notice.text
    assert "/goto 1, then it without replying" in notice.text
    [corrected] = images(replies)
    assert editor.calls[-1][0] == "cover the photo in snow"
    node = history.node(corrected.node_id)
    assert node.parent_id == history.node(translated.node_id).parent_id
    assert node.translation == Translation("rends la photo enneigée", "French")


async def test_other_replies_to_a_translated_result_still_edit_it(chat, engine, history, editor):
    [translated] = images(await chat.photo("rends la photo enneigée"))
    [hat] = images(await _send(engine, Incoming(chat.key, text="ajoute un chapeau rouge",
                                                reply_to=translated.node_id)))
    assert history.node(hat.node_id).parent_id == translated.node_id
    assert editor.calls[-1][0] == "add a red hat"
    [stronger] = images(await _send(engine, Incoming(chat.key, text="stronger", reply_to=hat.node_id)))
    assert history.node(stronger.node_id).instruction == "add a red hat"


async def test_a_reply_in_english_to_an_english_result_edits_it(chat, engine, history):
    [night] = images(await chat.photo("make it night"))
    [moon] = images(await _send(engine, Incoming(chat.key, text="add a moon", reply_to=night.node_id)))
    assert history.node(moon.node_id).parent_id == night.node_id


async def test_only_translated_results_have_a_fix_translation_button(chat):
    [translated] = images(await chat.photo("rends la photo enneigée"))
    [english] = images(await chat("add a moon"))
    assert "✎ Fix translation" in [button.label for button in translated.buttons]
    assert "✎ Fix translation" not in [button.label for button in english.buttons]


async def test_fix_translation_says_how_to_correct_on_each_front_end(chat, engine):
    [translated] = images(await chat.photo("rends la photo enneigée"))
    [reply] = await chat.press(FIX_TRANSLATION, translated.node_id)
    assert "I read “rends la photo enneigée” (French) as “make the photo snowy”" in reply.text
    assert "Send /meant and the English you meant" in reply.text
    await chat("add a moon")
    [reply] = await chat.press(FIX_TRANSLATION, translated.node_id)
    assert "Send /goto 1, then /meant" in reply.text

    telegram = Chat(engine, ChatKey("telegram", "5", "5"))
    [result] = images(await telegram.photo("rends la photo enneigée"))
    [reply] = await telegram.press(FIX_TRANSLATION, result.node_id)
    assert "Reply to that picture with the English you meant" in reply.text


async def test_the_fix_translation_box_corrects_whatever_it_holds(chat, engine, history, editor):
    [translated] = images(await chat.photo("rends la photo enneigée"))
    await _send(engine, Incoming(chat.key, text="/undo est ce que je voulais", corrects=translated.node_id))
    assert editor.calls[-1][0] == "/undo est ce que je voulais"  # said to be English: taken at its word

    [english] = images(await chat("add a moon"))
    [refusal] = await _send(engine, Incoming(chat.key, text="add the moon", corrects=english.node_id))
    assert refusal.error and "was not translated" in refusal.text
