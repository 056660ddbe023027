"""Telegram, Discord and the web chat from one process: one model, one queue, one engine behind every platform.

A self-hoster with one GPU sets both tokens and runs `editbot`; two processes would load the model twice and fight
over the GPU. Each adapter serves on the shared event loop; the engine sends unprompted replies (edits re-attached
after a restart) through the adapter of the conversation's platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

from core.config import Settings
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.errors import UserError
from core.messages import Reply, Send
from core.ports import HistoryRepository, ImageStore


async def _nowhere(reply: Reply) -> None:
    """A conversation of a platform this process does not serve (e.g. the terminal chat's)."""


async def serve_platforms(settings: Settings, engine: ConversationEngine,
                          storage: tuple[HistoryRepository, ImageStore] | None = None,
                          on_web_started: Callable[[str], None] | None = None) -> None:
    """Serve every platform whose token is set, and the web chat when EDITBOT_WEB is set (it reads `storage` to draw
    the page; `on_web_started` gets its URL), until cancelled or until Discord's connection closes."""
    from bot import discord_adapter, telegram_adapter

    senders = {}
    client = None
    async with AsyncExitStack() as stack:
        if settings.telegram.bot_token:
            application = telegram_adapter.build_application(settings, engine)
            senders["telegram"] = await stack.enter_async_context(telegram_adapter.serving(application, settings))
        if settings.discord.bot_token:
            client = discord_adapter.build_client(settings, engine)
            await stack.enter_async_context(client)
            senders["discord"] = client.send_to
        if settings.web.web:
            from bot.web.server import WebChat, serving

            if storage is None:
                raise ValueError("The web chat needs the history and image store it draws the page from.")
            chat = WebChat(engine, *storage, settings)
            senders["web"] = await stack.enter_async_context(serving(chat, settings.web, on_web_started))

        def send_to(key: ChatKey) -> Send:
            return senders[key.platform](key) if key.platform in senders else _nowhere

        await engine.start(send_to=send_to)
        stack.push_async_callback(engine.close)
        if client is not None:
            import discord

            try:
                await client.start(settings.discord.bot_token)
            except discord.LoginFailure:
                raise UserError("Discord refused the bot token: check DISCORD_BOT_TOKEN.") from None
        else:
            await asyncio.Event().wait()
