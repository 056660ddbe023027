"""Conversations in other languages: translated once, shown as given to the model, and kept in the history."""

from __future__ import annotations

import pytest

from core.domain import Translation
from tests.support.chat import images, texts
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


async def test_history_retry_and_squash_use_the_english_the_model_was_given(chat, history, editor):
    await chat.photo("rends la photo enneigée")
    [hat] = images(await chat("ajoute un chapeau rouge"))
    [listing, _sheet] = await chat("/history")
    assert "“make the photo snowy”" in listing.text and "“add a red hat”" in listing.text

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
