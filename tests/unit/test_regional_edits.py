"""Regions through the engine: /only, /except, the inline form, /mask and /region clear; outside the region the result
is the parent's pixels exactly; words that name nothing are refused before any edit; /retry and /squash repeat a
node's region."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.conversation.engine import ConversationEngine
from core.editing.lazy_segmentation import LazySegmenter
from core.domain import ChatKey, EditJob, EditParams, NewNode, Region
from core.queue import EditQueue
from core.regions import UNAVAILABLE, split_region
from core.runner import EditRunner
from core.stored_images import decode_stored, encode_stored
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.chat import Chat, images, texts
from tests.support.standins import MaskSegmenter, StandInEditor, left_half_mask, photo_like

SIZE = (640, 480)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def regional(history, image_store, segmenter):
    editor = StandInEditor(box=(0, 0, 1, 1), shift=(80, -60, 40))  # changes every pixel it is given
    runner = EditRunner(editor, history, image_store, segmenter=segmenter)
    engine = ConversationEngine(history, image_store, EditQueue(runner), segmenter=segmenter)
    await engine.start()
    yield Chat(engine, ChatKey("test", "chat-1", "alice")), editor
    await engine.close()


def head_pixels(history, image_store, key=ChatKey("test", "chat-1", "alice")) -> np.ndarray:
    conversation = history.conversation(key)
    return np.asarray(decode_stored(image_store.get(history.node(conversation.head_id).image_hash)), np.int16)


async def test_only_edits_inside_the_region_and_keeps_the_parent_exactly_outside(regional, history, image_store):
    chat, _ = regional
    parent = photo_like(SIZE)
    await chat.photo(data=png(parent))
    answer = await chat("/only the sky")
    assert images(answer) and images(answer)[0].kind == "mask"
    assert "only the sky" in images(answer)[0].caption
    result = images(await chat("make it pink"))[-1]
    assert "only the sky" in result.caption
    pixels, original = head_pixels(history, image_store), np.asarray(parent, np.int16)
    half = SIZE[0] // 2
    assert np.array_equal(pixels[:, half:], original[:, half:])  # outside: the parent's pixels exactly
    assert np.abs(pixels[:, : half - 20] - original[:, : half - 20]).mean() > 30  # well inside: edited


async def test_except_edits_only_outside_what_the_words_name(regional, history, image_store):
    chat, _ = regional
    parent = photo_like(SIZE)
    await chat.photo(data=png(parent))
    await chat("/except the person")
    await chat("make it pink")
    pixels, original = head_pixels(history, image_store), np.asarray(parent, np.int16)
    half = SIZE[0] // 2
    assert np.array_equal(pixels[:, :half], original[:, :half])
    assert np.abs(pixels[:, half + 20:] - original[:, half + 20:]).mean() > 30


async def test_the_inline_form_confines_one_edit_and_keeps_the_setting(regional, history, image_store, segmenter):
    chat, _ = regional
    parent = photo_like(SIZE)
    await chat.photo(data=png(parent))
    result = images(await chat("in the sky: make it a sunset"))[-1]
    assert result.caption.startswith("“make it a sunset” (only the sky)")
    assert segmenter.asked[-1] == "the sky"
    assert history.conversation(ChatKey("test", "chat-1", "alice")).region is None
    assert np.array_equal(head_pixels(history, image_store)[:, SIZE[0] // 2:],
                          np.asarray(parent, np.int16)[:, SIZE[0] // 2:])


async def test_words_that_name_nothing_are_refused_with_the_mask_picture_and_no_edit(history, image_store):
    nothing = MaskSegmenter(Image.new("L", SIZE, 0))
    editor = StandInEditor(shift=(50, 50, 50))
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store,
                                                                           segmenter=nothing)), segmenter=nothing)
    await engine.start()
    try:
        chat = Chat(engine, ChatKey("test", "chat-1", "alice"))
        await chat.photo(data=png(photo_like(SIZE)))
        for text in ("/only the dragon", "in the dragon: make it red"):
            answer = await chat(text)
            [picture] = images(answer)
            assert picture.kind == "mask" and "I can't find 'the dragon' in this picture" in picture.caption
            assert Image.open(io.BytesIO(picture.image)).size[0] > 0
            assert texts(answer)[-1].error
        assert editor.inputs == []  # no edit ran
        conversation = history.conversation(chat.key)
        assert conversation.region is None and history.node(conversation.head_id).parent_id is None
    finally:
        await engine.close()


async def test_mask_shows_the_region_and_region_clear_goes_back_to_the_whole_picture(regional, history,
                                                                                       image_store):
    chat, editor = regional
    parent = photo_like(SIZE)
    await chat.photo(data=png(parent))
    assert texts(await chat("/mask"))[0].error  # no region yet: says how to set one
    await chat("/only the sky")
    [picture] = images(await chat("/mask"))
    assert picture.kind == "mask" and "only the sky" in picture.caption
    shown = np.asarray(Image.open(io.BytesIO(picture.image)).convert("RGB"), np.int16)
    assert shown[:, : shown.shape[1] // 4].mean() > shown[:, -shown.shape[1] // 4:].mean()  # tinted vs dimmed
    assert editor.inputs == []  # /mask and /only cost no edit
    assert "whole picture" in texts(await chat("/region clear"))[0].text
    await chat("make it pink")
    pixels, original = head_pixels(history, image_store), np.asarray(parent, np.int16)
    assert np.abs(pixels[:, -40:] - original[:, -40:]).mean() > 30  # the right half changed too


async def test_retry_and_squash_repeat_the_region(regional, history, image_store):
    chat, _ = regional
    await chat.photo(data=png(photo_like(SIZE)))
    await chat("/only the sky")
    first = images(await chat("make it pink"))[-1]
    await chat("make it brighter")
    await chat("/region clear")
    squashed = images(await chat("/squash"))[-1]
    assert history.node(squashed.node_id).region == Region("the sky")
    retried = images(await chat.press("retry", first.node_id))[-1]
    assert history.node(retried.node_id).region == Region("the sky")
    await chat("make it blue")  # a whole-picture edit on top: the chain now mixes regions
    assert "different parts" in texts(await chat("/squash"))[-1].text


def test_the_runner_composites_at_working_size_in_working_mode() -> None:
    history, store = InMemoryHistoryRepository(), InMemoryImageStore()
    conversation = history.conversation(ChatKey("test", "c", "u"))
    parent = photo_like((1024, 768))
    root = history.add_node(NewNode(conversation.id, None, store.put(encode_stored(parent))))
    runner = EditRunner(StandInEditor(box=(0, 0, 1, 1), shift=(90, 90, 90)), history, store, output="working",
                        segmenter=MaskSegmenter(left_half_mask((1024, 768))))
    [node] = runner.run(EditJob(conversation.id, "test:u", root.id, root.image_hash, "x", EditParams(),
                                region=Region("the sky")))
    result = np.asarray(decode_stored(store.get(node.image_hash)), np.int16)
    assert result.shape[:2] == (384, 512) and node.region == Region("the sky")
    kept = np.asarray(parent.resize((512, 384), Image.Resampling.LANCZOS), np.int16)
    assert np.array_equal(result[:, 256:], kept[:, 256:])


async def test_the_bootstrap_gives_the_engine_and_the_runner_one_segmenter_loaded_on_first_use(history, image_store,
                                                                                               editor):
    from bot.bootstrap import build_engine
    from core.config import Settings

    settings = Settings()
    settings.editor.segmentation_model = "tiny"  # a random CLIPSeg: its masks mean nothing, its wiring is real
    engine = build_engine(settings, editor=editor, storage=(history, image_store))
    await engine.start()
    try:
        segmenter = engine._core.segmenter
        assert engine.queue._runner.segmenter is segmenter and segmenter._loaded is None  # nothing loaded yet
        chat = Chat(engine, ChatKey("test", "chat-1", "alice"))
        await chat.photo(data=png(photo_like(SIZE)))
        [picture] = images(await chat("/only the sky"))
        assert picture.kind == "mask" and segmenter._loaded is not None
    finally:
        await engine.close()


def test_the_inline_form_reads_only_as_in_and_leaves_other_colons_alone():
    assert split_region("only the sky: make it a sunset") == (Region("the sky"), "make it a sunset")
    assert split_region("In the sky : make it a sunset") == (Region("the sky"), "make it a sunset")
    assert split_region("except the person: make it snow") == (Region("the person", inverse=True), "make it snow")
    assert split_region("style: watercolour") == (None, "style: watercolour")


async def test_a_segmentation_model_that_cannot_be_loaded_is_one_line_for_the_person(history, image_store, tmp_path):
    """The operator's setting is named in the log, not to a person who cannot change it; nothing is edited."""
    segmenter = LazySegmenter(str(tmp_path / "missing"), device="cpu", offline=True)
    runner = EditRunner(StandInEditor(), history, image_store, segmenter=segmenter)
    engine = ConversationEngine(history, image_store, EditQueue(runner), segmenter=segmenter)
    await engine.start()
    try:
        chat = Chat(engine, ChatKey("test", "chat-1", "alice"))
        await chat.photo(data=png(photo_like(SIZE)))
        head = history.conversation(chat.key).head_id
        for asked in ("/only the sky", "in the sky: make it pink"):
            [answer] = texts(await chat(asked))
            assert answer.error and answer.text == UNAVAILABLE
        assert history.conversation(chat.key).head_id == head
    finally:
        await engine.close()
