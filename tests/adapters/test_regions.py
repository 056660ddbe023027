"""/only, /except, /mask and /region clear on every front-end: the terminal chat, Telegram (Telemelya) and Discord
(SimCord), over the engine whose stand-in segmenter finds the left half of any picture (tests/conftest.py)."""

from __future__ import annotations

import io

from PIL import Image

from bot.console_adapter import ConsoleChat
from core.domain import ChatKey, Region
from core.conversation.engine import ConversationEngine
from core.queue import EditQueue
from core.runner import EditRunner
from tests.support.chat import photo_bytes
from tests.support.standins import MaskSegmenter
from tests.support.telegram_session import Person


async def open_console(engine, tmp_path) -> tuple[ConsoleChat, io.StringIO]:
    """A terminal chat with a photo open."""
    photo = tmp_path / "beach.png"
    photo.write_bytes(photo_bytes(fmt="PNG"))
    output = io.StringIO()
    chat = ConsoleChat(engine, tmp_path / "out", output=output, key=ChatKey("console", "t", "me"))
    await chat.say(f"/open {photo}")
    return chat, output


async def test_terminal_chat_sets_shows_and_clears_the_region(engine, history, tmp_path):
    chat, output = await open_console(engine, tmp_path)
    await chat.say("/only the sky")
    await chat.say("/mask")
    masks = sorted((tmp_path / "out").glob("mask-*.png"))
    assert masks and Image.open(masks[-1]).size[0] > 0
    assert "only the sky" in output.getvalue()
    await chat.say("make it a sunset")
    result = chat.last_result
    assert history.node(result.node_id).region == Region("the sky")
    assert "(only the sky)" in output.getvalue()
    [written] = [path.read_bytes() for path in (tmp_path / "out").glob("step-*.png")
                 if path.read_bytes() == result.image]  # named after its /history label
    assert Image.open(io.BytesIO(written)).size == (96, 64)  # the full-size file
    await chat.say("/except the person")
    assert history.conversation(chat.key).region == Region("the person", inverse=True)
    await chat.say("/region clear")
    assert history.conversation(chat.key).region is None and "whole picture" in output.getvalue()


async def test_terminal_chat_says_it_cannot_find_what_names_nothing(history, image_store, editor, tmp_path):
    nothing = MaskSegmenter(Image.new("L", (8, 8), 0))
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store,
                                                                           segmenter=nothing)), segmenter=nothing)
    await engine.start()
    try:
        chat, output = await open_console(engine, tmp_path)
        await chat.say("in the dragon: make it red")
        assert "I can't find 'the dragon' in this picture" in output.getvalue()
        assert list((tmp_path / "out").glob("mask-*.png")) and editor.calls == []
    finally:
        await engine.close()


async def test_telegram_only_mask_and_region_clear(session, history):
    alice = Person(session)
    await alice.send_photo([(photo_bytes((96, 64)), 96, 64)])
    await session.expect("sendMessage")
    await alice.say("/only the sky")
    shown = await session.expect("sendPhoto")
    assert "only the sky" in shown["caption"]
    await alice.say("/mask")
    mask = await session.expect("sendPhoto")
    assert "only the sky" in mask["caption"]
    assert Image.open(io.BytesIO(await session.download(mask["file_id"]))).size[0] > 0
    await alice.say("make it a sunset")
    result = await session.expect("sendPhoto")
    assert "(only the sky)" in result["caption"]
    await alice.say("/except the person")
    await session.expect("sendPhoto", lambda record: "everything except the person" in record["caption"])
    await alice.say("/region clear")
    cleared = await session.expect("sendMessage", lambda record: "whole picture" in record["text"])
    assert cleared["text"] == "Edits now change the whole picture."


async def test_discord_only_mask_and_region_clear(world, history):
    env, _, channel, alice, _ = world
    await alice.slash(channel, "edit", image=("photo.jpg", photo_bytes()), instruction="make it snow")
    only = await alice.slash(channel, "only", words="the sky")
    assert any("only the sky" in (message.content or "") and message.attachments
               for message in [only.response, *only.followups])
    mask = await alice.slash(channel, "mask")
    assert any(message.attachments for message in [mask.response, *mask.followups])
    excepted = await alice.slash(channel, "except", words="the person")
    assert any("everything except the person" in (message.content or "")
               for message in [excepted.response, *excepted.followups])
    cleared = await alice.slash(channel, "region")
    assert "whole picture" in cleared.response.content or any(
        "whole picture" in (message.content or "") for message in cleared.followups)
