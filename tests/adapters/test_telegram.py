"""End-to-end tests of the Telegram adapter: the real PTB Application, in webhook mode, over real HTTP against a Bot
API emulator (Telemelya + Redis + moto's S3, see tests/support/telegram_harness.py), serving the real engine with
in-memory storage and the fast fake editor: the conversation, and groups and access. Refusals, failures and the
offline units have files of their own (test_telegram_refusals.py, test_telegram_failures.py, test_telegram_units.py).

Skipped, with the reason, when Redis or the S3 emulator is not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import time

import pytest
from PIL import Image

from bot.platforms import serve_platforms
from bot.telegram_adapter import NOT_ALLOWED, webhook_secret
from core.config import StorageSettings
from core.stored_images import decode_stored
from tests.support.chat import photo_bytes
from tests.support.telegram_harness import make_settings, running_bot
from tests.support.telegram_session import (
    BOT_ID,
    BOT_USERNAME,
    EmulatorSession,
    Person,
    buttons,
    edit_photo,
    key_of,
    stepping_editor,
)

editor = stepping_editor  # conftest's editor, but each step takes a moment, as a real edit does


def noise_png(size=(96, 64)) -> bytes:
    """A PNG whose pixels all differ, so any lossy step would show."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, "PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------- the conversation, end to end


async def test_one_process_serves_the_platforms_whose_tokens_are_set(emulator, engine, history):
    """`editbot` with tokens set runs every platform on one loop over one engine, and closes the engine at the end."""
    settings = make_settings(emulator)
    serving = asyncio.create_task(serve_platforms(settings, engine))
    token = settings.telegram.bot_token
    session = emulator.session(token, webhook_secret(token))
    try:
        await _listening(settings.telegram.webhook_port)
        alice = Person(session)
        result = await edit_photo(session, alice, "make it night")
        assert result["caption"].startswith("“make it night”")
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await session.close()
    assert engine.queue.depth == 0 and engine.queue._worker is None  # closed


async def _listening(port: int, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return
    raise AssertionError(f"nothing listens on port {port}")


async def test_photo_with_caption_shows_progress_then_the_result_with_buttons(session, history, image_store):
    alice = Person(session)
    # Telegram sends several sizes of a photo; the engine must get the largest.
    await alice.send_photo(
        [(photo_bytes((48, 32)), 48, 32), (photo_bytes((144, 96)), 144, 96), (photo_bytes((96, 64)), 96, 64)],
        caption="make it night",
    )
    progress = await session.expect("sendMessage")
    result = await session.expect("sendPhoto")

    assert "make it night" in result["caption"]
    presses = buttons(result)
    assert {press.action for press in presses.values()} >= {"undo", "retry"}
    node = history.node(next(iter(presses.values())).node_id)
    assert {press.node_id for press in presses.values()} == {node.id}
    assert node.instruction == "make it night"
    root = history.node(node.parent_id)
    assert Image.open(io.BytesIO(image_store.get(root.image_hash))).size == (144, 96)
    shown = Image.open(io.BytesIO(await session.download(result["file_id"])))
    assert shown.format == "PNG" and shown.size == (144, 96)

    calls = await session.responses()
    deleted = [i for i, call in enumerate(calls) if call["method"] == "deleteMessage"]
    assert [calls[i]["message_id"] for i in deleted] == [progress["message_id"]]
    assert deleted[0] < calls.index(result), "the progress message goes before the result arrives"


async def test_while_edits_are_paused_the_progress_says_so_and_the_edit_runs_once_they_resume(session, engine):
    alice = Person(session)
    await engine.queue.pause()  # what an admin's /pause does
    await alice.send_photo([(photo_bytes((96, 64)), 96, 64)], caption="make it night")
    progress = await session.expect("sendMessage")
    assert progress["text"] == "Edits are paused for now: yours will run when they resume."
    assert not any(call["method"] == "sendPhoto" for call in await session.settle())

    await engine.queue.resume()
    result = await session.expect("sendPhoto")
    assert result["caption"].startswith("“make it night”")


async def test_follow_up_text_refines_the_last_result(session, history):
    alice = Person(session)
    first = await edit_photo(session, alice, "make it night")
    await alice.say("add a moon")
    second = await session.expect("sendPhoto")

    first_node = next(iter(buttons(first).values())).node_id
    second_node = history.node(next(iter(buttons(second).values())).node_id)
    assert second_node.instruction == "add a moon"
    assert second_node.parent_id == first_node
    assert history.conversation(key_of(alice)).head_id == second_node.id


async def test_a_reply_to_an_older_result_edits_that_result(session, history):
    alice = Person(session)
    first = await edit_photo(session, alice, "make it night")
    await alice.say("add a moon")
    await session.expect("sendPhoto")

    older = {
        "message_id": first["message_id"],
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot", "username": BOT_USERNAME},
        "chat": {"id": alice.chat_id, "type": "private"},
        "date": int(time.time()),
        "caption": first["caption"],
        "reply_markup": first["reply_markup"],
    }
    await alice.say("add snow", reply_to=older)
    branched = await session.expect("sendPhoto")

    first_node = next(iter(buttons(first).values())).node_id
    node = history.node(next(iter(buttons(branched).values())).node_id)
    assert (node.instruction, node.parent_id) == ("add snow", first_node)


async def test_undo_button_goes_back_and_the_press_is_answered(session, history):
    alice = Person(session)
    first = await edit_photo(session, alice, "make it night")
    await alice.say("add a moon")
    second = await session.expect("sendPhoto")

    query_id = await alice.press(buttons(second)["↶ Undo"].data, second["message_id"])
    answer = await session.expect("answerCallbackQuery")
    undone = await session.expect("sendPhoto")

    assert answer["callback_query_id"] == query_id
    first_node = next(iter(buttons(first).values())).node_id
    assert {press.node_id for press in buttons(undone).values()} == {first_node}
    assert history.conversation(key_of(alice)).head_id == first_node


async def test_guidance_command_changes_settings(session):
    alice = Person(session)
    await alice.say("/text 9")
    await session.expect("sendMessage")
    await alice.say("/settings")
    shown = await session.expect("sendMessage")
    assert "Text guidance: 9 " in shown["text"]


async def test_progress_edits_are_throttled_and_skip_steps(session, editor):
    editor.step_seconds = 0.1  # a 20-step edit of about two seconds
    alice = Person(session)
    started = time.monotonic()
    await alice.send_photo([(photo_bytes(), 96, 64)], caption="make it night")
    progress = await session.expect("sendMessage")
    await session.expect("sendPhoto")
    elapsed = time.monotonic() - started

    edits = [
        call["text"]
        for call in await session.responses()
        if call["method"] == "editMessageText" and call["message_id"] == progress["message_id"]
    ]
    assert edits, "a two-second edit shows progress after the first second"
    assert len(edits) <= elapsed + 1, "at most about one edit per second"
    steps = [int(text.split("step ")[1].split("/")[0]) for text in edits if "step " in text]
    assert steps == sorted(steps) and len(steps) < 20, "intermediate steps are skipped, never queued"


async def test_image_sent_as_a_file_stays_lossless_and_comes_back_as_a_file(session, history, image_store):
    alice = Person(session)
    original = noise_png()
    await alice.send_document(original, "photo.png", "image/png", caption="make it night")
    result = await session.expect("sendDocument")

    node = history.node(next(iter(buttons(result).values())).node_id)
    root = decode_stored(image_store.get(history.node(node.parent_id).image_hash))
    assert root.tobytes() == Image.open(io.BytesIO(original)).convert("RGB").tobytes()
    returned = Image.open(io.BytesIO(await session.download(result["file_id"])))
    assert returned.format == "PNG" and "make it night" in result["caption"]

# ---------------------------------------------------------------------- groups and access


async def test_in_groups_only_commands_mentions_and_replies_are_answered(session, history):
    group = -EmulatorSession.new_id()
    alice = Person(session, chat_id=group, chat_type="group")

    await alice.say("make it night")  # chatter between people
    await alice.say("/settings@some_other_bot")
    await alice.say("/settings")  # a command of ours, bare
    shown = await session.expect("sendMessage")
    assert shown["text"].startswith("Text guidance")
    assert shown["raw"]["reply_parameters"]["message_id"], "in groups the bot answers in reply to the person"
    assert [call["method"] for call in await session.settle()] == []

    await alice.send_photo([(photo_bytes(), 96, 64)], caption=f"@{BOT_USERNAME} make it night")
    result = await session.expect("sendPhoto")
    assert result["caption"].startswith("“make it night”"), "the mention is not part of the instruction"

    bot_message = {
        "message_id": result["message_id"],
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot", "username": BOT_USERNAME},
        "chat": {"id": group, "type": "group"},
        "date": int(time.time()),
        "caption": result["caption"],
    }
    await alice.say("add a moon", reply_to=bot_message)
    refined = await session.expect("sendPhoto")
    assert history.node(next(iter(buttons(refined).values())).node_id).instruction == "add a moon"
    assert history.conversation(key_of(alice)).key.chat_id == str(group)


async def test_people_outside_the_allowed_ids_get_one_polite_line(start_bot):
    insider_id = EmulatorSession.new_id()
    session = await start_bot(allowed_ids={insider_id})
    stranger = Person(session)

    await stranger.say("/start")
    refusal = await session.expect("sendMessage")
    assert refusal["text"] == NOT_ALLOWED

    await stranger.press("undo:1", refusal["message_id"])
    answer = await session.expect("answerCallbackQuery")
    assert answer["text"] == NOT_ALLOWED

    insider = Person(session)
    insider.user_id = insider.chat_id = insider_id
    await insider.say("/start")
    welcome = await session.expect("sendMessage")
    assert welcome["text"] != NOT_ALLOWED


async def test_command_menu_is_published_at_start(session, engine):
    published = await session.commands()
    assert [command["command"] for command in published] == [info.name for info in engine.commands]
    assert all(command["description"] for command in published)


@pytest.mark.slow
async def test_end_to_end_with_the_tiny_model_and_real_storage(emulator, tmp_path):
    """The production wiring (bootstrap: SQLite, image files, queue) with the real InstructPix2Pix editor."""
    from bot.bootstrap import build_engine
    from core.editing.pix2pix import Pix2PixEditor
    from core.editing.sources import load_pipeline

    settings = make_settings(emulator)
    settings.storage = StorageSettings(data_dir=tmp_path)
    engine = build_engine(settings, editor=Pix2PixEditor(load_pipeline("tiny", device="cpu"), safety_checker=False))
    token = settings.telegram.bot_token
    async with running_bot(settings, engine):
        session = emulator.session(token, webhook_secret(token))
        try:
            alice = Person(session)
            await alice.say("/steps 2")
            await session.expect("sendMessage")
            await alice.send_photo([(photo_bytes((96, 64)), 96, 64)], caption="make it night")
            result = await session.expect("sendPhoto")
            shown = Image.open(io.BytesIO(await session.download(result["file_id"])))
        finally:
            await session.close()
    assert "2 steps" in result["caption"]
    assert shown.format == "JPEG" and shown.size == (96, 64)  # a full-size preview; /file sends the PNG
    assert not shown.getexif() and "icc_profile" not in shown.info
