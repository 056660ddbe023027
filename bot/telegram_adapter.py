"""The Telegram adapter: a thin translator between python-telegram-bot and the conversation engine.

A message or a button press becomes one `engine.handle(Incoming, send)` call; every Reply the engine sends becomes a
Telegram message: text, one progress message per job (edited in place, at most about once a second per chat), and
results as a photo (or a document, for files sent uncompressed or too big for a photo) with an inline keyboard.

    application = build_application(settings, engine)   # no network until it starts
    async with serving(application, settings) as send_to:   # long polling, or a webhook if TELEGRAM_WEBHOOK_URL is set
        ...                                              # bot/platforms.py starts the engine with send_to and waits
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.telegram_files import download_image
from bot.telegram_photos import photo_for
from bot.telegram_webhook import webhook_server
from core.config import Settings, TelegramSettings
from core.domain import ChatKey
from core.errors import UserError
from core.conversation.files import FILE_BUTTON
from core.messages import Button, ImageReply, Incoming, Press, ProgressReply, Reply, TextReply

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

# Telegram's own limits (Bot API documentation).
CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile on the cloud Bot API; a self-hosted server allows more
MESSAGE_MAX_CHARS = 4096
CAPTION_MAX_CHARS = 1024
CALLBACK_ANSWER_MAX_CHARS = 200
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
COMMAND_DESCRIPTION_MAX_CHARS = 256

PROGRESS_EDIT_INTERVAL = 1.0
"""Seconds between two progress edits in one chat: Telegram throttles frequent edits, and a person reads no faster."""
BUTTONS_PER_ROW = 3

NOT_ALLOWED = "Sorry, this bot is private. Ask its owner to add you."
STALE_BUTTON = "That button no longer works. Send a photo to start again."
UNSUPPORTED = "I edit pictures: send a photo (or an image file) with a caption saying what to change; /help says more."
FAILED = "Something went wrong on my side; nothing was changed. Please try again."

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


def split_text(text: str, limit: int = MESSAGE_MAX_CHARS) -> list[str]:
    """Cut text into messages Telegram accepts, at line breaks where possible."""
    chunks: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*chunks, text] if text else chunks


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _keyboard(reply: ImageReply) -> InlineKeyboardMarkup | None:
    """The result's buttons; under a result, also Full size: Telegram shows photos recompressed."""
    full_size = (Button("⬇ Full size", Press(FILE_BUTTON, reply.node_id)),) if reply.kind == "node" else ()
    buttons = [InlineKeyboardButton(button.label, callback_data=button.press.data)
               for button in (*reply.buttons, *full_size)]
    if not buttons:
        return None
    return InlineKeyboardMarkup([buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)])


@dataclass
class _Progress:
    message_id: int
    text: str


class _Replier:
    """Renders the replies of one handle() call into one chat. Passed to the engine as `send`.

    Platform failures never reach the engine: a chat that blocked the bot is logged once and dropped, other
    Telegram errors are logged. For a button press, the first reply also answers the callback query: an error
    becomes the query's alert (and nothing is posted), anything else is posted after a silent answer.
    """

    def __init__(
        self,
        adapter: TelegramAdapter,
        message: Message | None,
        *,
        quote: bool,
        as_document: bool,
        query: CallbackQuery | None = None,
        bot: Bot | None = None,
        chat_id: int | None = None,
    ) -> None:
        """message: the one answered; None with `bot` and `chat_id` to send to a chat unprompted (the results of
        edits re-attached after a restart)."""
        self._adapter = adapter
        self._bot = message.get_bot() if message is not None else bot
        self._chat_id = message.chat.id if message is not None else chat_id
        quoted = quote and message is not None
        self._reply_to = ReplyParameters(message.message_id, allow_sending_without_reply=True) if quoted else None
        self._as_document = as_document
        self._query = query
        self._progress: dict[int, _Progress] = {}
        self._gone = False

    async def __call__(self, reply: Reply) -> None:
        if self._query is not None:
            query, self._query = self._query, None
            if isinstance(reply, TextReply) and reply.error:
                alert = _shorten(reply.text, CALLBACK_ANSWER_MAX_CHARS)
                await self._call("answer a button press", lambda: query.answer(alert, show_alert=True))
                return
            await self._call("answer a button press", query.answer)
        if isinstance(reply, ProgressReply):
            await self._show_progress(reply)
        elif isinstance(reply, ImageReply):
            await self._clear_progress()
            await self._send_image(reply)
        else:
            if reply.error:
                await self._clear_progress()
            await self.send_text(f"⚠️ {reply.text}" if reply.error else reply.text)

    async def finish(self) -> None:
        """After handle() returns: remove progress messages left by a job that ended without a result, and
        answer a button press the engine had nothing to say about."""
        await self._clear_progress()
        if self._query is not None:
            query, self._query = self._query, None
            await self._call("answer a button press", query.answer)

    async def send_text(self, text: str) -> None:
        for chunk in split_text(text):
            await self._call(
                "send a message",
                lambda: self._bot.send_message(self._chat_id, chunk, reply_parameters=self._reply_to),
            )

    async def _show_progress(self, reply: ProgressReply) -> None:
        shown = self._progress.get(reply.job_id)
        if shown is None:
            message = await self._call(
                "send progress",
                lambda: self._bot.send_message(self._chat_id, reply.text, reply_parameters=self._reply_to),
            )
            if message is not None:
                self._progress[reply.job_id] = _Progress(message.message_id, reply.text)
                self._adapter.progress_edited(self._chat_id)
            return
        # Skip, rather than queue, updates that come too soon: the next one carries newer news anyway.
        if shown.text == reply.text or not self._adapter.may_edit_progress(self._chat_id):
            return
        shown.text = reply.text
        self._adapter.progress_edited(self._chat_id)
        await self._call(
            "update progress",
            lambda: self._bot.edit_message_text(reply.text, chat_id=self._chat_id, message_id=shown.message_id),
        )

    async def _clear_progress(self) -> None:
        while self._progress:
            _, shown = self._progress.popitem()
            await self._call(
                "delete progress", lambda: self._bot.delete_message(self._chat_id, shown.message_id)
            )

    async def _send_image(self, reply: ImageReply) -> None:
        """A photo (brought inside Telegram's photo limits when the PNG is not, and said so); a document for the
        full-size file (/file), for answers to a file sent as a document, or when Telegram refuses the photo."""
        caption = _shorten(reply.caption, CAPTION_MAX_CHARS)
        keyboard = _keyboard(reply)
        photo = None if self._as_document or reply.kind == "file" else await asyncio.to_thread(photo_for, reply.image)
        if photo is not None:
            shown = caption if photo is reply.image else _shorten(f"{reply.caption}\n(shown smaller: ⬇ Full size or "
                                                                   "/file sends the full-size file)", CAPTION_MAX_CHARS)
            try:
                await self._call(
                    "send a photo",
                    lambda: self._bot.send_photo(
                        self._chat_id,
                        photo,
                        caption=shown,
                        reply_markup=keyboard,
                        reply_parameters=self._reply_to,
                    ),
                    reraise=BadRequest,
                )
                return
            except BadRequest as error:  # e.g. dimensions Telegram's photo pipeline refuses: a file always goes
                log.info("photo refused (%s); sending node %s as a document", error, reply.node_id)
        await self._call(
            "send a document",
            lambda: self._bot.send_document(
                self._chat_id,
                reply.image,
                filename=f"edit-{reply.node_id}.png",
                caption=caption,
                reply_markup=keyboard,
                reply_parameters=self._reply_to,
            ),
        )

    async def _call(
        self,
        what: str,
        request: Callable[[], Awaitable],
        *,
        reraise: type[TelegramError] | None = None,
    ):
        """Make one Bot API request; None when it failed (logged) or the chat is gone."""
        if self._gone:
            return None
        try:
            return await request()
        except Forbidden:
            log.info("chat %s blocked the bot or removed it; dropping its replies", self._chat_id)
            self._gone = True
        except TelegramError as error:
            if reraise is not None and isinstance(error, reraise):
                raise
            log.warning("could not %s in chat %s: %s", what, self._chat_id, error)
        return None


class TelegramAdapter:
    """Holds the engine and the per-chat progress throttle; its methods are the PTB handlers."""

    def __init__(self, settings: Settings, engine) -> None:
        self._engine = engine
        self._allowed_ids = settings.telegram.allowed_ids
        self._download_limit = settings.limits.max_upload_bytes
        if settings.telegram.base_url == TelegramSettings.model_fields["base_url"].default:
            self._download_limit = min(self._download_limit, CLOUD_DOWNLOAD_LIMIT)
        self._command_names = {info.name for info in engine.commands}
        self._last_progress_edit: dict[int, float] = {}

    # ------------------------------------------------------------------ wiring

    def register(self, application: Application) -> None:
        new_messages = filters.UpdateType.MESSAGE
        application.add_handler(
            MessageHandler(new_messages & (filters.TEXT | filters.PHOTO | filters.Document.ALL), self.on_message)
        )
        application.add_handler(MessageHandler(new_messages & filters.ChatType.PRIVATE, self.on_unsupported))
        application.add_handler(CallbackQueryHandler(self.on_press))
        application.add_error_handler(self.on_error)

    def sender(self, bot: Bot) -> Callable[[ChatKey], _Replier]:
        """How to send to a conversation unprompted (results of edits re-attached after a restart)."""
        return lambda key: _Replier(self, None, quote=False, as_document=False, bot=bot, chat_id=int(key.chat_id))

    async def publish_menu(self, bot: Bot) -> None:
        """The engine's public commands as Telegram's command menu."""
        menu = [
            BotCommand(info.name, _shorten(info.summary or info.name, COMMAND_DESCRIPTION_MAX_CHARS))
            for info in self._engine.commands
            if COMMAND_NAME.fullmatch(info.name)
        ]
        try:
            await bot.set_my_commands(menu)
        except TelegramError as error:  # a missing menu is cosmetic: keep serving
            log.warning("could not publish the command menu: %s", error)

    # ------------------------------------------------------------------ progress throttle (per chat)

    def may_edit_progress(self, chat_id: int) -> bool:
        return time.monotonic() - self._last_progress_edit.get(chat_id, float("-inf")) >= PROGRESS_EDIT_INTERVAL

    def progress_edited(self, chat_id: int) -> None:
        now = time.monotonic()
        self._last_progress_edit[chat_id] = now
        # Forget chats whose last edit is long past, so the table stays as small as the set of busy chats.
        if len(self._last_progress_edit) > 1000:
            self._last_progress_edit = {
                chat: at for chat, at in self._last_progress_edit.items() if now - at < PROGRESS_EDIT_INTERVAL
            }

    # ------------------------------------------------------------------ handlers

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        text = self._text_for_bot(message, context.bot.id, context.bot.username)
        if text is None:
            return
        group = message.chat.type != ChatType.PRIVATE
        if not self._allowed(user.id, message.chat.id):
            replier = _Replier(self, message, quote=group, as_document=False)
            await replier.send_text(NOT_ALLOWED)
            return
        replier = _Replier(self, message, quote=group, as_document=message.document is not None)
        image = None
        if message.photo or message.document:
            try:
                image = await download_image(message, self._download_limit)
            except UserError as error:
                await replier(TextReply(str(error), error=True))
                return
        key = ChatKey(PLATFORM, str(message.chat.id), str(_sender_id(message, user.id)))
        reply_to = None if image is not None else _replied_node(message, context.bot.id)
        try:
            await self._engine.handle(Incoming(key, text=text or None, image=image, reply_to=reply_to), replier)
        finally:
            await replier.finish()

    async def on_unsupported(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A sticker, voice note, video... in a private chat: say what the bot does instead of staying silent."""
        message = update.effective_message
        if message is not None:
            await _Replier(self, message, quote=False, as_document=False).send_text(UNSUPPORTED)

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
        replier = _Replier(
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
        return not self._allowed_ids or user_id in self._allowed_ids or chat_id in self._allowed_ids

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
async def serving(application: Application, settings: Settings) -> AsyncIterator[Callable[[ChatKey], _Replier]]:
    """Serve updates on the running event loop for as long as the block runs, beside other platforms; the caller
    starts and closes the engine (with the sender this yields): see bot/platforms.py."""
    adapter: TelegramAdapter = application.bot_data["adapter"]
    async with application:
        await adapter.publish_menu(application.bot)
        await application.start()
        async with AsyncExitStack() as receiving:
            if settings.telegram.webhook_url:
                await receiving.enter_async_context(webhook_server(
                    application, **webhook_options(settings.telegram), allowed_updates=ALLOWED_UPDATES))
            else:
                await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
                receiving.push_async_callback(application.updater.stop)
            try:
                yield adapter.sender(application.bot)
            finally:
                await receiving.aclose()
                await application.stop()
