"""The Telegram adapter: a thin translator between python-telegram-bot and the conversation engine.

A message or a button press becomes one `engine.handle(Incoming, send)` call; every Reply the engine sends becomes a
Telegram message: text, one progress message per job (edited in place, at most about once a second per chat), and
results as a photo (or a document, for files sent uncompressed or too big for a photo) with an inline keyboard
(bot/telegram_replies.py draws them; this file admits people and turns updates into messages).

Reference pictures for the next edit (families that take several): an album (bot/telegram_albums.py: the first
photo starts the tree, the others become references, the caption is the instruction), or `/ref` sent as a reply to
a photo (that photo becomes a reference). Each reaches the engine as Incoming(text="/ref", image=...).

    application = build_application(settings, engine)   # no network until it starts
    async with serving(application, settings) as send_to:   # long polling, or a webhook if TELEGRAM_WEBHOOK_URL is set
        ...                                              # bot/platforms.py starts the engine with send_to and waits
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.chat_common import (
    SOMETHING_WENT_WRONG,
    ProgressThrottle,
    admitted,
    hand_over_in_order,
)
from bot.telegram_albums import Album, Albums
from bot.telegram_files import download_image
from bot.telegram_replies import Replier, shorten
from bot.telegram_webhook import webhook_server
from core.config import Settings, TelegramSettings
from core.domain import ChatKey
from core.errors import UserError
from core.messages import Incoming, Press, TextReply

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]

# Telegram's own limits (Bot API documentation).
CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile on the cloud Bot API; a self-hosted server allows more
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
COMMAND_DESCRIPTION_MAX_CHARS = 256


NOT_ALLOWED = "Sorry, this bot is private. Ask its owner to add you."
STALE_BUTTON = "That button no longer works. Send a photo to start again."
UNSUPPORTED = "I edit pictures: send a photo (or an image file) with a caption saying what to change; /help says more."
IN_GROUPS = "In a group, reply to my message (or mention me) with what to change, so I know it is for me."
EDITED = "I act on new messages only, not on changes to sent ones: send it again as a new message."
FAILED = SOMETHING_WENT_WRONG

_COMMAND = re.compile(r"/(?P<name>\w+)(?:@(?P<bot>\w+))?(?P<rest>.*)", re.DOTALL)


def webhook_secret(token: str) -> str:
    """The secret Telegram echoes in every webhook request, derived from the token so that only Telegram (which
    knows the token) can post updates, and nothing extra needs configuring."""
    return hashlib.sha256(f"editbot-webhook:{token}".encode()).hexdigest()


def webhook_options(telegram: TelegramSettings) -> dict:
    """Keyword arguments for `webhook_server` (bot/telegram_webhook.py): listen on the configured address, serve
    the path of the public URL (so a reverse proxy can forward it unchanged), and check the secret header.
    The path never contains the token: request paths end up in access logs."""
    if not telegram.webhook_url:
        raise ValueError("TELEGRAM_WEBHOOK_URL is not set.")
    return {
        "listen": telegram.webhook_listen,
        "port": telegram.webhook_port,
        "url_path": urlsplit(telegram.webhook_url).path.lstrip("/"),
        "webhook_url": telegram.webhook_url,
        "secret_token": webhook_secret(telegram.bot_token or ""),
    }


class TelegramAdapter:
    """Holds the engine and the per-chat progress throttle; its methods are the PTB handlers."""

    def __init__(self, settings: Settings, engine) -> None:
        self._engine = engine
        self._allowed_ids = settings.telegram.allowed_ids
        self._download_limit = settings.limits.max_upload_bytes
        if settings.telegram.base_url == TelegramSettings.model_fields["base_url"].default:
            self._download_limit = min(self._download_limit, CLOUD_DOWNLOAD_LIMIT)
        self._command_names = {info.name for info in engine.commands}
        self.progress_throttle = ProgressThrottle()  # per chat: Telegram throttles edits chat by chat
        self._albums = Albums()

    # ------------------------------------------------------------------ wiring

    def register(self, application: Application) -> None:
        new_messages = filters.UpdateType.MESSAGE
        application.add_handler(
            MessageHandler(new_messages & (filters.TEXT | filters.PHOTO | filters.Document.ALL), self.on_message)
        )
        application.add_handler(MessageHandler(new_messages & filters.ChatType.PRIVATE, self.on_unsupported))
        application.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE, self.on_edited))
        application.add_handler(CallbackQueryHandler(self.on_press))
        application.add_error_handler(self.on_error)

    def sender(self, bot: Bot) -> Callable[[ChatKey], Replier]:
        """How to send to a conversation unprompted (results of edits re-attached after a restart)."""
        return lambda key: Replier(self, None, quote=False, as_document=False, bot=bot, chat_id=int(key.chat_id))

    async def full_size(self, node_id: int) -> bytes:
        """A result's stored picture, lossless: what a document carries (Telegram shows photos recompressed)."""
        return await self._engine.full_size(node_id)

    async def publish_menu(self, bot: Bot) -> None:
        """The engine's public commands as Telegram's command menu."""
        menu = [
            BotCommand(info.name, shorten(info.summary or info.name, COMMAND_DESCRIPTION_MAX_CHARS))
            for info in self._engine.commands
            if COMMAND_NAME.fullmatch(info.name)
        ]
        try:
            await bot.set_my_commands(menu)
        except TelegramError as error:  # a missing menu is cosmetic: keep serving
            log.warning("could not publish the command menu: %s", error)

    # ------------------------------------------------------------------ handlers

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        text = self._text_for_bot(message, context.bot.id, context.bot.username)
        if message.media_group_id and (message.photo or message.document):
            await self._on_album_part(message, user.id, text)
            return
        if text is None:
            return
        group = message.chat.type != ChatType.PRIVATE
        if not self._allowed(user.id, message.chat.id):
            replier = Replier(self, message, quote=group, as_document=False)
            await replier.send_text(NOT_ALLOWED)
            return
        replier = Replier(self, message, quote=group, as_document=message.document is not None)
        image = None
        picture = message if message.photo or message.document else _replied_picture(message, text)
        if picture is not None:
            try:
                image = await download_image(picture, self._download_limit)
            except UserError as error:
                await replier(TextReply(str(error), error=True))
                return
            text = text if picture is message else "/ref"
        key = ChatKey(PLATFORM, str(message.chat.id), str(_sender_id(message, user.id)))
        reply_to = None if image is not None else _replied_node(message, context.bot.id)
        asked = group and image is not None and not text  # "What should I change?": plain group chatter is ignored
        try:
            await self._engine.handle(Incoming(key, text=text or None, image=image, reply_to=reply_to), replier)
            if asked and not replier.refused:
                await replier.send_text(IN_GROUPS)
        finally:
            await replier.finish()

    async def _on_album_part(self, message: Message, user_id: int, text: str | None) -> None:
        """One photo of an album: gathered with the others; the first part's handler hands the whole album over."""
        allowed = self._allowed(user_id, message.chat.id)
        key = ChatKey(PLATFORM, str(message.chat.id), str(_sender_id(message, user_id)))
        download = download_image(message, self._download_limit) if allowed else asyncio.sleep(0, b"")
        album = await self._albums.gather((key, message.media_group_id), message.message_id, text, download)
        if album is None or not album.for_the_bot:
            return
        replier = Replier(self, message, quote=message.chat.type != ChatType.PRIVATE, as_document=False)
        try:
            if not allowed:
                await replier.send_text(NOT_ALLOWED)
                return
            await self._hand_over_album(album, key, replier)
        finally:
            await replier.finish()

    async def _hand_over_album(self, album: Album, key: ChatKey, replier: Replier) -> None:
        """The first photo starts the tree, the others are references, then the caption. A photo that could not be
        fetched is told and ends the album there: a later one would take its number ("picture 3" became 2)."""
        incomings = []
        for part in album.ordered():
            error = part.image.exception()
            if error is not None:
                if not isinstance(error, UserError):
                    log.error("could not fetch a photo of an album", exc_info=error)
                await replier(TextReply(str(error) if isinstance(error, UserError) else FAILED, error=True))
                break
            incomings.append(Incoming(key, text="/ref" if incomings else None, image=part.image.result()))
        else:
            incomings += [Incoming(key, text=album.caption)] if album.caption else []
        await hand_over_in_order(self._engine, incomings, replier)

    async def on_unsupported(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A sticker, voice note, video... in a private chat: say what the bot does instead of staying silent."""
        message = update.effective_message
        if message is not None:
            await Replier(self, message, quote=False, as_document=False).send_text(UNSUPPORTED)

    async def on_edited(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A message of the person's, changed after it was answered: say so rather than stay silent (what it asked
        was done, or refused, when it arrived). Only words count (a live location is an edit every few seconds), and
        in groups only messages that were for the bot."""
        message, user = update.edited_message, update.effective_user
        if message is None or user is None or not (message.text or message.caption):
            return
        if not self._allowed(user.id, message.chat.id):
            return
        if self._text_for_bot(message, context.bot.id, context.bot.username) is not None:
            await Replier(self, message, quote=True, as_document=False).send_text(EDITED)

    async def on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        # Every query is answered, or the person's button keeps spinning.
        if not isinstance(query.message, Message):  # too old to reach, or from an inline message
            await query.answer(STALE_BUTTON, show_alert=True)
            return
        chat_id = query.message.chat.id
        if not self._allowed(query.from_user.id, chat_id):
            await query.answer(NOT_ALLOWED, show_alert=True)
            return
        press = Press.parse(query.data or "")
        if press is None:
            await query.answer(STALE_BUTTON, show_alert=True)
            return
        replier = Replier(
            self,
            query.message,
            quote=False,
            as_document=query.message.document is not None,
            query=query,
        )
        key = ChatKey(PLATFORM, str(chat_id), str(query.from_user.id))
        try:
            await self._engine.handle(Incoming(key, action=press), replier)
        finally:
            await replier.finish()

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the traceback for the operator; the person gets one plain line, never the traceback."""
        error = context.error
        if isinstance(error, Forbidden):
            log.info("a chat blocked the bot or removed it: %s", error)
            return
        log.error("failed to handle an update", exc_info=error)
        if not isinstance(update, Update):
            return
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(FAILED, show_alert=True)
            elif update.effective_chat is not None:
                await context.bot.send_message(update.effective_chat.id, FAILED)
        except TelegramError as follow_up:
            log.warning("could not tell the person about the failure: %s", follow_up)

    # ------------------------------------------------------------------ helpers

    def _allowed(self, user_id: int, chat_id: int) -> bool:
        return admitted(self._allowed_ids, user_id, chat_id)

    def _text_for_bot(self, message: Message, bot_id: int, bot_username: str) -> str | None:
        """The text to pass to the engine ("" for a bare photo), or None when the message is not for the bot.

        Private chats: everything. Groups: commands (ours: a bare /name we know, or /name@thisbot), messages
        mentioning the bot (the mention is removed), and replies to the bot's messages.
        """
        raw = message.text or message.caption or ""
        command = _COMMAND.fullmatch(raw)
        if command and command["bot"] and command["bot"].lower() != bot_username.lower():
            return None  # addressed to another bot in the group
        if message.chat.type == ChatType.PRIVATE:
            return raw
        if command and (command["bot"] or command["name"].lower() in self._command_names):
            return raw
        entities = message.parse_entities([MessageEntity.MENTION]) if message.text else (
            message.parse_caption_entities([MessageEntity.MENTION])
        )
        mentions = [value for value in entities.values() if value.lower() == f"@{bot_username.lower()}"]
        for mention in mentions:
            raw = raw.replace(mention, " ")
        replied = message.reply_to_message
        to_bot = replied is not None and replied.from_user is not None and replied.from_user.id == bot_id
        if mentions or to_bot:
            return re.sub(r"[ \t]{2,}", " ", raw).strip()
        return None


def _sender_id(message: Message, user_id: int) -> int:
    """Whose conversation a message belongs to. Anonymous group admins and people posting as a channel all arrive
    as one placeholder user; `sender_chat` tells them apart: the group for its anonymous admins (who therefore
    share one history there; Telegram does not say which admin wrote), the channel for each channel."""
    return message.sender_chat.id if message.sender_chat is not None else user_id


def _replied_picture(message: Message, text: str) -> Message | None:
    """The photo (or image file) a bare `/ref` replies to: it becomes a reference for the next edit."""
    command = _COMMAND.fullmatch(text.strip())
    replied = message.reply_to_message
    if command is None or command["name"].lower() != "ref" or command["rest"].strip() or replied is None:
        return None
    return replied if replied.photo or replied.document else None


def _replied_node(message: Message, bot_id: int) -> int | None:
    """The node of the bot's result this message replies to: its buttons carry it. None for anything else."""
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != bot_id:
        return None
    markup = replied.reply_markup
    for row in markup.inline_keyboard if markup else ():
        for button in row:
            press = Press.parse(button.callback_data) if isinstance(button.callback_data, str) else None
            if press is not None:
                return press.node_id
    return None


def build_application(settings: Settings, engine) -> Application:
    """A configured PTB Application serving `engine`. Makes no network request until it is started."""
    if not settings.telegram.bot_token:
        raise ValueError("Set TELEGRAM_BOT_TOKEN to run the Telegram bot.")
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    adapter = TelegramAdapter(settings, engine)
    application = (
        ApplicationBuilder()
        .token(settings.telegram.bot_token)
        .base_url(settings.telegram.base_url)
        .base_file_url(settings.telegram.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .concurrent_updates(True)  # an edit's handle() returns only when the edit is done
        .build()
    )
    adapter.register(application)
    application.bot_data["adapter"] = adapter
    return application


@asynccontextmanager
async def serving(application: Application, settings: Settings) -> AsyncIterator[Callable[[ChatKey], Replier]]:
    """Serve updates on the running event loop for as long as the block runs, beside other platforms; the caller
    starts and closes the engine (with the sender this yields): see bot/platforms.py."""
    adapter: TelegramAdapter = application.bot_data["adapter"]
    async with application:
        await adapter.publish_menu(application.bot)
        await application.start()
        # Stopped however receiving ends, a failed start included: a running Application refuses to shut down, and
        # that refusal would replace the failure (a webhook port in use) in what the operator is told.
        try:
            async with AsyncExitStack() as receiving:
                if settings.telegram.webhook_url:
                    await receiving.enter_async_context(webhook_server(
                        application, **webhook_options(settings.telegram), allowed_updates=ALLOWED_UPDATES))
                else:
                    await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
                    receiving.push_async_callback(application.updater.stop)
                yield adapter.sender(application.bot)
        finally:
            await application.stop()
