"""Fixtures of the adapter tests: the Bot API emulator and a bot started against it (Telegram), and the client
SimCord drives with a guild to talk in (Discord)."""

from __future__ import annotations

import contextlib
import os
from urllib.parse import urlsplit, urlunsplit

import pytest

from bot.discord_adapter import build_client
from bot.telegram_adapter import webhook_secret
from core.config import DiscordSettings, LimitSettings, Settings
from tests.support.telegram_harness import (
    TelegramEmulator,
    make_settings,
    redis_available,
    running_bot,
)
from tests.support.telegram_session import EmulatorSession

# The emulator keeps its state in its own Redis database, apart from anything else using the server.
EMULATOR_REDIS_DB = 14


@pytest.fixture(scope="module")
def emulator():
    pytest.importorskip("telemelya", reason="the Telemelya Bot API emulator is not installed")
    pytest.importorskip("moto.server", reason="moto's S3 server (moto[server]) is not installed")
    base = urlsplit(os.environ.get("EDITBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    url = urlunsplit(base._replace(path=f"/{EMULATOR_REDIS_DB}"))
    if not redis_available(url):
        pytest.skip(f"no Redis at {url} for the Bot API emulator")
    with TelegramEmulator.start(url) as running:
        yield running


@pytest.fixture
async def start_bot(emulator, engine):
    """Starts the bot (optionally with Telegram settings) and returns the session to talk to it through;
    everything started is stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**telegram) -> EmulatorSession:
            settings = make_settings(emulator, **telegram)
            await stack.enter_async_context(running_bot(settings, engine))
            token = settings.telegram.bot_token
            session = emulator.session(token, webhook_secret(token), settings.telegram.webhook_port)
            stack.push_async_callback(session.close)
            return session

        yield start


@pytest.fixture
async def session(start_bot) -> EmulatorSession:
    return await start_bot()


@pytest.fixture
def settings() -> Settings:
    """Discord's: no token (SimCord needs none), everyone allowed, a generous upload limit."""
    settings = Settings()
    settings.discord = DiscordSettings(bot_token=None, allowed_ids=set())
    settings.limits = LimitSettings(max_upload_bytes=64 * 1024 * 1024)
    return settings


@pytest.fixture
def simcord_bot(settings, engine):
    return build_client(settings, engine)


@pytest.fixture
def world(simcord_env):
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("art")
    alice = guild.add_member(simcord_env.create_user("alice"))
    bob = guild.add_member(simcord_env.create_user("bob"))
    return simcord_env, guild, channel, alice, bob
