"""The Telegram adapter against hostile or unusual traffic, end to end through the Bot API emulator (Telemelya,
tests/support/telegram_harness.py): webhook requests refused before their body is read, files streamed within the upload
limit, files Telegram will not serve explained, anonymous senders keyed by the chat they speak as, a reply to
someone else's result in a group, a photo with no instruction in a group, edited messages, and a webhook port already taken reported as such."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid

import pytest
from aiohttp import web

from bot.startup_failures import explain
from bot.telegram_adapter import EDITED, IN_GROUPS

from core.conversation.edits import SOMEONE_ELSES
from core.domain import ChatKey
from tests.support.chat import photo_bytes
from tests.support.telegram_harness import (
    UPLOAD_LIMIT,
    free_port,
    make_settings,
    running_bot,
)
from tests.support.telegram_session import BOT_ID, BOT_USERNAME, EmulatorSession, Person

GROUP_ANONYMOUS_BOT = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


async def status_before_any_body(session: EmulatorSession, headers: dict[str, str]) -> int:
    """POST headers declaring a big body to the bot's webhook, send no body, and read the status it answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", session.webhook_port)
    try:
        lines = ["POST /telegram/updates HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
                 *(f"{name}: {value}" for name, value in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_a_webhook_request_with_a_wrong_secret_is_refused_before_its_body(session):
    headers = {"Content-Length": str(95 * 1024 * 1024), "X-Telegram-Bot-Api-Secret-Token": "guessed"}
    assert await status_before_any_body(session, headers) == 403


async def test_a_webhook_body_bigger_than_any_update_is_refused_unread(session):
    headers = {"Content-Length": str(95 * 1024 * 1024), "X-Telegram-Bot-Api-Secret-Token": session.secret_token}
    assert await status_before_any_body(session, headers) == 413


async def test_a_file_telegram_will_not_serve_is_explained(session):
    alice = Person(session)
    document = {"file_id": "gone-" + uuid.uuid4().hex, "file_unique_id": "gone", "file_name": "photo.jpg",
                "mime_type": "image/jpeg", "file_size": 1000}
    await alice.send(document=document, caption="make it night")
    refusal = await session.expect("sendMessage")
    assert "Telegram would not give me that file" in refusal["text"]
    assert "file not found" in refusal["text"].lower()  # Telegram's own reason
    assert "went wrong on my side" not in refusal["text"]


@contextlib.asynccontextmanager
async def counting_file_server(total: int):
    """Serves `total` bytes for any file path, counting what it managed to send."""
    sent = [0]

    async def serve(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"\0" * 65536
        with contextlib.suppress(ConnectionError, RuntimeError):
            while sent[0] < total:
                await response.write(chunk)
                sent[0] += len(chunk)
        return response

    app = web.Application()
    app.router.add_get("/{path:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/file/bot", sent
    finally:
        await runner.cleanup()


async def test_a_document_without_a_declared_size_is_streamed_and_stopped_at_the_limit(start_bot, history):
    async with counting_file_server(total=64 * 1024 * 1024) as (file_url, sent):
        session = await start_bot(base_file_url=file_url)
        alice = Person(session)
        file_id = await session.upload(b"placeholder", "huge.png")
        document = {"file_id": file_id, "file_unique_id": file_id[:16], "file_name": "huge.png",
                    "mime_type": "image/png"}  # no file_size, as Telegram sometimes sends
        await alice.send(document=document, caption="make it night")
        refusal = await session.expect("sendMessage")

    assert "over 5 MB" in refusal["text"]
    assert sent[0] < UPLOAD_LIMIT + 8 * 1024 * 1024  # the download stopped near the limit, not after 64 MB
    assert history.conversation(ChatKey("telegram", str(alice.chat_id), str(alice.user_id))).head_id is None


async def send_photo_as(person: Person, sender: dict, sender_chat: dict, caption: str) -> None:
    file_id = await person.session.upload(photo_bytes((96, 64)), "photo.jpg")
    mention = f"@{BOT_USERNAME}"
    await person.send(
        photo=[{"file_id": file_id, "file_unique_id": file_id[:16], "width": 96, "height": 64, "file_size": 900}],
        caption=f"{mention} {caption}", caption_entities=[{"type": "mention", "offset": 0, "length": len(mention)}],
        sender_chat=sender_chat, **{"from": sender},
    )


async def test_channels_posting_in_a_group_each_get_their_own_history(session, history):
    group = Person(session, chat_id=-1000000000000 - session.new_id(), chat_type="supergroup")
    group_chat = {"id": group.chat_id, "type": "supergroup", "title": "Test group"}
    first_channel = {"id": -1000000000000 - session.new_id(), "type": "channel", "title": "One"}
    second_channel = {"id": -1000000000000 - session.new_id(), "type": "channel", "title": "Two"}

    await send_photo_as(group, CHANNEL_BOT, first_channel, "make it night")
    await session.expect("sendPhoto")
    await send_photo_as(group, CHANNEL_BOT, second_channel, "make it snow")
    await session.expect("sendPhoto")
    await send_photo_as(group, GROUP_ANONYMOUS_BOT, group_chat, "make it rain")
    await session.expect("sendPhoto")

    def head(speaker_id: int):
        return history.conversation(ChatKey("telegram", str(group.chat_id), str(speaker_id))).head_id

    heads = [head(first_channel["id"]), head(second_channel["id"]), head(group.chat_id)]
    assert None not in heads and len(set(heads)) == 3
    assert head(CHANNEL_BOT["id"]) is None and head(GROUP_ANONYMOUS_BOT["id"]) is None


async def test_a_reply_to_someone_elses_result_in_a_group_says_whose_it_is_and_changes_nothing(session, history):
    group = -session.new_id()
    bob, carol = Person(session, chat_id=group, chat_type="group"), Person(session, chat_id=group, chat_type="group")
    await bob.send_photo([(photo_bytes(), 96, 64)], caption=f"@{BOT_USERNAME} make it night")
    result = await session.expect("sendPhoto")
    bobs_result = {
        "message_id": result["message_id"], "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot"},
        "chat": {"id": group, "type": "group"}, "date": 0, "caption": result["caption"],
        "reply_markup": result["reply_markup"],
    }
    bobs_head = history.conversation(ChatKey("telegram", str(group), str(bob.user_id))).head_id

    await carol.say("make it pink", reply_to=bobs_result)
    refusal = await session.expect("sendMessage")
    assert refusal["text"] == f"⚠️ {SOMEONE_ELSES}"
    assert history.conversation(ChatKey("telegram", str(group), str(bob.user_id))).head_id == bobs_head
    assert history.conversation(ChatKey("telegram", str(group), str(carol.user_id))).head_id is None


async def test_a_photo_with_no_instruction_in_a_group_says_how_to_answer_there(session, history):
    group = -session.new_id()
    bob = Person(session, chat_id=group, chat_type="group")
    mention = f"@{BOT_USERNAME}"
    await bob.send_document(b"not a picture" * 10, "photo.png", "image/png", caption=mention)
    refusal = await session.expect("sendMessage")
    assert refusal["text"].startswith("⚠️")
    await bob.send_photo([(photo_bytes(), 96, 64)], caption=mention)
    await session.expect("sendMessage", lambda record: "What should I change" in record["text"])
    how = await session.expect("sendMessage")
    assert how["text"] == IN_GROUPS

    await bob.say("make it night")  # as the bot cannot tell it from chatter, it stays unanswered
    await bob.say("make it night", reply_to={
        "message_id": how["message_id"], "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot"},
        "chat": {"id": group, "type": "group"}, "date": 0, "text": how["text"],
    })
    result = await session.expect("sendPhoto")
    assert result["caption"].startswith("“make it night”")
    await session.settle()
    assert [call.get("text") for call in await session.responses()].count(IN_GROUPS) == 1  # not after the refusal


async def edit_message(person: Person, text: str | None = None, **fields) -> None:
    """The person changes a message they sent earlier (its text, or e.g. a live location's position): Telegram sends
    the new version as an update."""
    chat = {"id": person.chat_id, "type": person.chat_type, **({} if person.chat_type == "private" else {"title": "G"})}
    if text is not None:
        mentions = [{"type": "mention", "offset": text.find("@"), "length": len(BOT_USERNAME) + 1}]
        fields.update(text=text, entities=mentions if BOT_USERNAME in text else [])
    await person.session.deliver({"edited_message": {
        "message_id": person.session.new_id(), "from": {"id": person.user_id, "is_bot": False, "first_name": "T"},
        "chat": chat, "date": 0, "edit_date": 1, **fields,
    }}, person.chat_id)


async def test_an_edited_message_is_answered_with_how_to_go_on_and_changes_nothing(session, history):
    alice = Person(session)
    await alice.send_photo([(photo_bytes(), 96, 64)], caption="make it night")
    await session.expect("sendPhoto")
    head = history.conversation(ChatKey("telegram", str(alice.chat_id), str(alice.user_id))).head_id

    await edit_message(alice, location={"latitude": 48.85, "longitude": 2.35, "live_period": 900})  # a live location
    await edit_message(alice, "make it snowy")
    answer = await session.expect("sendMessage")
    assert answer["text"] == EDITED
    assert history.conversation(ChatKey("telegram", str(alice.chat_id), str(alice.user_id))).head_id == head

    assert [call["method"] for call in await session.settle()] == []
    bob = Person(session, chat_id=-session.new_id(), chat_type="group")
    await edit_message(bob, "lunch at noon?")  # chatter in a group, not for the bot
    await edit_message(bob, f"@{BOT_USERNAME} make it snowy")
    answer = await session.expect("sendMessage")
    assert answer["chat_id"] == bob.chat_id and answer["text"] == EDITED
    assert [call["method"] for call in await session.settle()] == []


async def test_a_webhook_port_already_taken_is_what_a_failed_start_reports(emulator, engine):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(emulator, webhook_port=port, webhook_url=f"http://127.0.0.1:{port}/telegram/updates")
        with pytest.raises(OSError) as failure:
            async with running_bot(settings, engine):
                pass
    line, _ = explain(failure.value, database_url="sqlite://", secrets=[settings.telegram.bot_token])
    assert str(port) in line and "in use" in line
