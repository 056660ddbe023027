"""Failures of the Telegram adapter stay private: the token never reaches the logs, a bug shows one plain line, a
chat that blocked the bot is dropped, and a missing token is refused before anything starts."""

from __future__ import annotations

import logging

import pytest
from telegram import Message
from telegram.error import Forbidden

from bot.telegram_adapter import FAILED, TelegramAdapter, webhook_secret
from bot.telegram_replies import Replier
from core.config import Settings, TelegramSettings
from core.messages import TextReply
from tests.support.telegram_harness import make_settings, running_bot
from tests.support.telegram_session import Person, buttons, edit_photo, stepping_editor

editor = stepping_editor  # conftest's editor, but each step takes a moment, as a real edit does


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


def test_build_application_refuses_a_missing_token():
    from bot.telegram_adapter import build_application

    settings = make_offline_settings()
    settings.telegram = TelegramSettings(bot_token=None)
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN"):
        build_application(settings, _BrokenEngine())
