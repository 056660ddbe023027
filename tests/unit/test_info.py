"""/info: the current image's full record."""

from __future__ import annotations

import re

import pytest

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.queue import EditQueue
from core.runner import EditRunner
from core.stored_images import decode_stored
from tests.support.chat import Chat, images


@pytest.fixture
async def named_engine(editor, history, image_store):
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store)),
                                model="example/pix2pix-test")
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
def alice(named_engine) -> Chat:
    return Chat(named_engine, ChatKey("test", "chat-1", "alice"))


async def test_info_gives_an_edit_s_full_record(alice, history, image_store):
    await alice.photo()
    await alice("/seed 1234")
    await alice("/steps 7")
    [result] = images(await alice("make it night"))
    node = history.node(result.node_id)
    width, height = decode_stored(image_store.get(node.image_hash)).size

    [reply] = await alice("/info")

    assert not reply.error
    assert f"Step 1: {width}×{height} pixels" in reply.text  # the label /history shows and /goto takes
    assert "Instruction: “make it night”" in reply.text
    assert "Text guidance: 7.5" in reply.text and "Image guidance: 1.5" in reply.text
    assert "Steps: 7" in reply.text and "Seed: 1234" in reply.text and "Scheduler: default" in reply.text
    assert "Model: example/pix2pix-test" in reply.text
    assert f"Time taken: {node.seconds:.1f} s" in reply.text
    assert f"Made: {node.created_at:%Y-%m-%d %H:%M}" in reply.text
    assert "Parent: 0 (the original)" in reply.text


async def test_info_on_the_original_photo_and_an_exact_edit(alice, history):
    await alice.photo()
    [reply] = await alice("/info")
    assert "96×64 pixels" in reply.text and "original photo" in reply.text and "Parent: none" in reply.text
    await alice("/rotate 90")
    [reply] = await alice("/info")
    assert "64×96 pixels" in reply.text and "Exact edit: rotate 90" in reply.text
    assert "Step 1:" in reply.text and "Parent: 0 (the original)" in reply.text
    await alice("/rotate 90")
    [reply] = await alice("/info")
    assert "Step 2:" in reply.text and "Parent: 1\n" in reply.text + "\n"


async def test_info_before_any_photo_says_what_to_do(alice):
    [reply] = await alice("/info")
    assert reply.error and reply.text == "Send me a photo first."


async def test_info_is_listed_in_help(alice):
    [reply] = await alice("/help")
    assert "/info — Show the current image's full record" in reply.text


async def test_the_full_size_file_is_named_by_its_label(alice):
    await alice.photo()
    await alice("/rotate 90")
    [reply] = await alice("/file")
    assert reply.kind == "file" and reply.label == "1" and reply.caption == "Full size, lossless: step 1"


async def test_a_picture_is_called_step_and_its_label_wherever_it_is_named(alice):
    """One wording for the labels /history shows: "step 2" (files step-2.png), as /goto reads them; "picture 2"
    is what reference pictures are called in instructions, so a label must not read like one."""
    await alice.photo()
    await alice("/rotate 90")
    await alice("/rotate 90")
    named = [reply.caption if hasattr(reply, "caption") else reply.text
             for command in ("/goto 1", "/info", "/file") for reply in await alice(command)]
    assert all(re.search(r"\bStep 1\b|\bstep 1\b", text) for text in named), named
    assert not any(re.search(r"\b(picture|image) 1\b", text, re.IGNORECASE) for text in named), named
