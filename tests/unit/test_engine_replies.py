"""Replies without surprises: held-back instructions, tuning words, /retry, captions, photos with commands, grids."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from core.conversation.captions import caption, short
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey, EditParams, Node
from core.queue import EditQueue
from core.runner import EditRunner
from tests.support.chat import Chat, images, progress, texts
from tests.support.fakes import FakeEditor


async def test_anyway_after_other_edits_runs_on_the_image_it_was_asked_on_and_says_so(chat, history):
    [night] = images(await chat.photo("make it night"))
    [reply] = await chat("haz que llueva")
    assert reply.error and "/anyway" in reply.text
    await chat("add stars")
    await chat("add a moon")

    replies = await chat("/anyway")
    [notice] = texts(replies)
    assert "on the image you asked it for (step 1: “make it night”)" in notice.text and "new branch" in notice.text
    [result] = images(replies)
    made = history.node(result.node_id)
    assert made.instruction == "haz que llueva" and made.parent_id == night.node_id
    assert history.conversation(chat.key).head_id == made.id


async def test_anyway_right_away_runs_without_a_notice(chat, history):
    await chat.photo()
    await chat("haz que llueva")
    replies = await chat("/anyway")
    assert texts(replies) == [] and len(images(replies)) == 1


@pytest.mark.parametrize("word", ["stronger", "more", "less change", "a bit weaker please"])
async def test_tuning_words_with_nothing_to_tune_say_so_and_edit_nothing(chat, history, editor, word):
    await chat.photo()
    [reply] = await chat(word)
    assert reply.error and "there is no edit to tune yet" in reply.text.lower()
    await chat("/rotate 90")
    [reply] = await chat(word)
    assert reply.error and "there is no edit to tune yet" in reply.text.lower()
    assert editor.calls == []


async def test_retry_and_the_retry_button_both_use_the_results_own_settings(chat, history):
    [night] = images(await chat.photo("make it night"))
    await chat("/text 12")
    [by_command] = images(await chat("/retry"))
    [by_button] = images(await chat.press("retry", night.node_id))
    original = history.node(night.node_id).params
    for reply in (by_command, by_button):
        made = history.node(reply.node_id)
        assert made.parent_id == history.node(night.node_id).parent_id
        assert made.params.text_guidance == original.text_guidance == 7.5
        assert made.params.seed != original.seed
    [help_text] = await chat("/help")
    assert "same as the Retry button" in help_text.text


def node(params: EditParams, seconds: float) -> Node:
    return Node(1, 1, None, "h", "make it night", params, seconds, datetime.now(UTC), 1)


def test_captions_say_what_reproduces_a_result_and_nothing_misleading():
    one_step = caption(node(EditParams(steps=1, seed=5), 0.01))
    assert "1 step ·" in one_step and "1 steps" not in one_step
    assert "0.0 s" not in one_step and "under 0.1 s" in one_step
    assert "scheduler" not in one_step
    assert "scheduler ddim" in caption(node(EditParams(seed=5, scheduler="ddim"), 2.0))
    assert "· 2.0 s" in caption(node(EditParams(seed=5), 2.0))


def test_a_bare_short_line_has_no_quotation_marks_even_with_a_model_note():
    node = Node(2, 1, 1, "x", "make it night", EditParams(model="klein"), 1.0, datetime.now(UTC), 1)
    assert short(node) == "“make it night” (klein)"
    assert short(node, bare=True) == "make it night (klein)"  # the /history sheet's caption said: make it night”


async def test_a_very_long_instruction_is_shortened_in_captions_and_lists_and_kept_whole_in_info(chat):
    instruction = "x" * 5000  # one word: a tokenizer may count it as a handful of tokens
    [result] = images(await chat.photo(instruction))
    assert len(result.caption) < 500 and "“xxx" in result.caption and "…”" in result.caption
    listing, _ = await chat("/history")
    assert len(listing.text) < 300 and "…”" in listing.text
    [info] = await chat("/info")
    assert f"“{instruction}”" in info.text


async def test_a_caption_names_the_model_when_it_is_not_the_default(history, image_store):
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(FakeEditor(), history, image_store)),
                                model="someone/other-model")
    await engine.start()
    try:
        [result] = images(await Chat(engine, ChatKey("test", "c", "me")).photo("make it night"))
        assert "model someone/other-model" in result.caption
    finally:
        await engine.close()
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(FakeEditor(), history, image_store)),
                                model="timbrooks/instruct-pix2pix")
    await engine.start()
    try:
        [result] = images(await Chat(engine, ChatKey("test", "c", "you")).photo("make it night"))
        assert "model" not in result.caption
    finally:
        await engine.close()


async def test_a_photo_with_a_command_caption_acknowledges_the_photo_too(chat, history):
    replies = await chat.photo("/text 9")
    assert [reply.text for reply in texts(replies)][0] == "Got your photo; now /text on it."
    assert "text guidance 9" in texts(replies)[1].text
    assert history.node(history.conversation(chat.key).head_id).parent_id is None


async def test_a_sweep_says_how_long_first_and_shows_its_progress(chat, history):
    await chat.photo("make it night")
    replies = await chat("/sweep")
    first = replies[0]
    assert "9 versions" in first.text and "s (9 ×" in first.text or "about a second" in first.text
    assert "/cancel" in first.text
    steps = [reply.text for reply in progress(replies) if reply.total]
    assert steps and all(text.startswith("Editing 9 versions together: step") for text in steps)


async def test_cancel_stops_a_running_sweep_and_records_nothing(history, image_store):
    gate = threading.Event()
    editor = FakeEditor(gate=gate)
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store)))
    await engine.start()
    try:
        chat = Chat(engine, ChatKey("test", "c", "me"))
        gate.set()  # the first edit runs through; the sweep is held running until cancelled
        [result] = images(await chat.photo("make it night"))
        before = len(history.tree(result.node_id))
        gate.clear()
        editor.started.clear()
        sweeping = asyncio.create_task(chat("/sweep"))
        await asyncio.to_thread(editor.started.wait, 5)
        [reply] = await chat("/cancel")
        assert reply.text == "Cancelling your edit."
        replies = await sweeping
        assert not images(replies) and texts(replies)[-1].text == "Edit cancelled."
        assert len(history.tree(result.node_id)) == before
    finally:
        gate.set()
        await engine.close()
