"""End-to-end tests of the Telegram adapter: the real PTB Application, in webhook mode, over real HTTP against a Bot
API emulator (Telemelya + Redis + moto's S3, see tests/telegram_harness.py), serving the real engine with in-memory
storage and the fast fake editor.

Skipped, with the reason, when Redis or the S3 emulator is not available.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import time

import pytest
from PIL import Image
from telegram import Message
from telegram.error import Forbidden

from bot.platforms import serve_platforms
from bot.telegram_adapter import FAILED, NOT_ALLOWED, UNSUPPORTED, TelegramAdapter, webhook_secret
from bot.telegram_photos import fits_as_photo
from bot.telegram_replies import Replier, split_text
from core.config import Settings, StorageSettings, TelegramSettings
from core.domain import ChatKey
from core.messages import Press, TextReply
from core.stored_images import decode_stored
from tests.support.chat import photo_bytes
from tests.support.fakes import FakeEditor
from tests.support.telegram_harness import UPLOAD_LIMIT, make_settings, running_bot
from tests.support.telegram_session import BOT_ID, BOT_USERNAME, EmulatorSession, Person


@pytest.fixture
def editor() -> FakeEditor:
    """Overrides conftest's: each step takes a moment, as a real edit does, so there is progress to show."""
    return FakeEditor(step_seconds=0.005)


def buttons(record: dict) -> dict[str, Press]:
    """The inline keyboard of a recorded message: label -> parsed press."""
    rows = (record.get("reply_markup") or {}).get("inline_keyboard", [])
    return {button["text"]: Press.parse(button["callback_data"]) for row in rows for button in row}


def noise_png(size=(96, 64)) -> bytes:
    """A PNG whose pixels all differ, so any lossy step would show."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def key_of(person: Person) -> ChatKey:
    return ChatKey("telegram", str(person.chat_id), str(person.user_id))


async def edit_photo(session: EmulatorSession, person: Person, caption: str) -> dict:
    await person.send_photo([(photo_bytes((96, 64)), 96, 64)], caption=caption)
    return await session.expect("sendPhoto")


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


# ---------------------------------------------------------------------- refusals


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


# ---------------------------------------------------------------------- failures stay private


async def test_the_token_never_reaches_the_logs(session, caplog):
    caplog.set_level(logging.DEBUG)
    alice = Person(session)
    result = await edit_photo(session, alice, "make it night")
    await alice.press(buttons(result)["🎲 Retry"].data, result["message_id"])
    await session.expect("sendPhoto")

    assert any(record.name.startswith("telegram") for record in caplog.records), "the capture saw the bot at work"
    secret = session.bot_token.split(":", 1)[1]
    assert secret not in caplog.text


class _BrokenEngine:
    """An engine with a bug: the person must see one plain line, never the exception."""

    commands: list = []

    async def start(self, send_to=None) -> None: ...

    async def close(self) -> None: ...

    async def handle(self, incoming, send) -> None:
        raise RuntimeError("internal detail: database password is hunter2")


async def test_unexpected_errors_show_one_plain_line(emulator):
    settings = make_settings(emulator)
    token = settings.telegram.bot_token
    async with running_bot(settings, _BrokenEngine()):
        session = emulator.session(token, webhook_secret(token))
        try:
            await Person(session).say("make it night")
            apology = await session.expect("sendMessage")
        finally:
            await session.close()
    assert apology["text"] == FAILED


# ---------------------------------------------------------------------- units


class _BlockedBot:
    """A Bot whose every request fails the way Telegram answers when the person has blocked the bot."""

    def __init__(self) -> None:
        self.requests = 0

    async def send_message(self, *args, **kwargs):
        self.requests += 1
        raise Forbidden("Forbidden: bot was blocked by the user")


async def test_a_blocked_chat_is_logged_and_dropped_without_raising(caplog):
    bot = _BlockedBot()
    message = Message.de_json(
        {"message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"}, "text": "hi"}, bot
    )
    adapter = TelegramAdapter(make_offline_settings(), _BrokenEngine())
    replier = Replier(adapter, message, quote=False, as_document=False)
    caplog.set_level(logging.INFO)

    await replier(TextReply("first"))
    await replier(TextReply("second"))

    assert bot.requests == 1, "after Forbidden, nothing more is sent to that chat"
    assert "blocked" in caplog.text


def make_offline_settings() -> Settings:
    settings = Settings()
    settings.telegram = TelegramSettings(bot_token="1:offline")
    return settings


@pytest.mark.parametrize(
    ("size", "fits"),
    [((512, 512), True), ((9000, 999), True), ((9000, 1001), False), ((2000, 100), True), ((2100, 100), False)],
)
def test_photo_limits_decide_photo_or_document(size, fits):
    buffer = io.BytesIO()
    Image.new("1", size).save(buffer, "PNG")
    assert fits_as_photo(buffer.getvalue()) is fits


def test_results_over_ten_megabytes_go_as_documents():
    assert not fits_as_photo(b"\x89PNG" + bytes(10 * 1024 * 1024))


def test_long_texts_are_split_at_line_breaks():
    lines = [f"line {i:04d} " + "x" * 90 for i in range(100)]
    chunks = split_text("\n".join(lines))
    assert all(len(chunk) <= 4096 for chunk in chunks) and len(chunks) > 1
    assert "\n".join(chunks).splitlines() == lines


def test_build_application_refuses_a_missing_token():
    from bot.telegram_adapter import build_application

    settings = make_offline_settings()
    settings.telegram = TelegramSettings(bot_token=None)
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN"):
        build_application(settings, _BrokenEngine())


def test_webhook_serves_the_public_path_and_checks_a_secret_that_is_not_the_token():
    from bot.telegram_adapter import webhook_options

    telegram = TelegramSettings(bot_token="42:SECRET-part", webhook_url="https://bot.example/hooks/telegram",
                                webhook_listen="127.0.0.1", webhook_port=8080)
    options = webhook_options(telegram)

    assert options["url_path"] == "hooks/telegram" and options["webhook_url"] == telegram.webhook_url
    assert (options["listen"], options["port"]) == ("127.0.0.1", 8080)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", options["secret_token"])
    assert "SECRET" not in options["secret_token"] and "SECRET" not in options["url_path"]
    assert options["secret_token"] != webhook_options(telegram.model_copy(update={"bot_token": "42:other"}))[
        "secret_token"
    ]
