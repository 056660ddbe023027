"""How the Telegram adapter shows replies: text split to Telegram's length, one progress message per job edited in
place (at most about once a second per chat), and results as a photo (or a document, for files sent uncompressed or
too big for a photo) with an inline keyboard of the result's buttons."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from telegram import Bot, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.telegram_photos import photo_for
from core.conversation.files import FILE_BUTTON
from core.messages import Button, ImageReply, Press, ProgressReply, Reply, TextReply
from core.stored_images import picture_mime

if TYPE_CHECKING:
    from bot.telegram_adapter import TelegramAdapter

log = logging.getLogger(__name__)

# Telegram's own limits (Bot API documentation), in UTF-16 code units as Telegram counts text: an emoji or any
# character past U+FFFF is two of them.
MESSAGE_MAX_CHARS = 4096
CAPTION_MAX_CHARS = 1024
CALLBACK_ANSWER_MAX_CHARS = 200
BUTTONS_PER_ROW = 3


def fitting(text: str, limit: int) -> int:
    """How many of text's characters fit in `limit` UTF-16 code units."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = MESSAGE_MAX_CHARS) -> list[str]:
    """Cut text into messages Telegram accepts, at line breaks where possible."""
    chunks: list[str] = []
    while (end := fitting(text, limit)) < len(text):
        cut = text.rfind("\n", 0, end)
        cut = cut if cut > 0 else max(end, 1)
        chunks.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [*chunks, text] if text else chunks


def shorten(text: str, limit: int) -> str:
    return text if fitting(text, limit) == len(text) else text[:fitting(text, limit - 1)] + "…"


def _keyboard(reply: ImageReply) -> InlineKeyboardMarkup | None:
    """The result's buttons; under a result, also Full size: Telegram shows photos recompressed."""
    full_size = (Button("⬇ Full size", Press(FILE_BUTTON, reply.node_id)),) if reply.kind == "node" else ()
    buttons = [InlineKeyboardButton(button.label, callback_data=button.press.data)
               for button in (*reply.buttons, *full_size)]
    if not buttons:
        return None
    return InlineKeyboardMarkup([buttons[i : i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)])


def _file_stem(reply: ImageReply) -> str:
    """A document's name: the label /history shows and /goto takes (`step-2b`, `compare-2b`), not a database id."""
    name = reply.label or str(reply.node_id)
    return f"step-{name}" if reply.kind in ("node", "file") else f"{reply.kind}-{name}"


@dataclass
class _Progress:
    message_id: int
    text: str


class Replier:
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
        self.refused = False
        """Whether the engine answered with an error line."""

    async def __call__(self, reply: Reply) -> None:
        self.refused = self.refused or (isinstance(reply, TextReply) and reply.error)
        if self._query is not None:
            query, self._query = self._query, None
            if isinstance(reply, TextReply) and reply.error:
                alert = shorten(reply.text, CALLBACK_ANSWER_MAX_CHARS)
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
                self._adapter.progress_throttle.drawn(self._chat_id)
            return
        # Skip, rather than queue, updates that come too soon: the next one carries newer news anyway.
        if shown.text == reply.text or not self._adapter.progress_throttle.due(self._chat_id):
            return
        shown.text = reply.text
        self._adapter.progress_throttle.drawn(self._chat_id)
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
        caption = shorten(reply.caption, CAPTION_MAX_CHARS)
        keyboard = _keyboard(reply)
        photo = None if self._as_document or reply.kind == "file" else await asyncio.to_thread(photo_for, reply.image)
        if photo is not None:
            shown = caption if photo is reply.image else shorten(f"{reply.caption}\n(shown smaller: ⬇ Full size or "
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
        # A file is the stored picture itself: a result shown as a JPEG preview goes as the lossless PNG.
        document = await self._adapter.full_size(reply.node_id) if reply.kind == "node" else reply.image
        await self._call(
            "send a document",
            lambda: self._bot.send_document(
                self._chat_id,
                document,
                filename=f"{_file_stem(reply)}{mimetypes.guess_extension(picture_mime(document))}",
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
