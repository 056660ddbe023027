"""How the Discord adapter shows replies: result buttons that survive restarts, an interaction's progress edited in
place (at most once a second), results as follow-ups (posted to the channel once the interaction's token has
expired), and replies for a conversation with no interaction to answer (a job re-attached after a restart).

Every message mentions nobody but the person it is for: an instruction may say "@everyone".
"""

from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import discord
from PIL import Image

from bot.chat_common import PROGRESS_INTERVAL_S
from core.domain import ChatKey
from core.images import encode_for_upload
from core.messages import (
    ASCII_NUMBER,
    ASCII_WORD,
    Button,
    ImageReply,
    Press,
    ProgressReply,
    Reply,
)
from core.stored_images import picture_mime

log = logging.getLogger(__name__)

TOKEN_MARGIN = timedelta(seconds=30)
"""Post to the channel a little before the 15-minute interaction token dies rather than after a failed call."""
EXPIRED_TOKEN_CODES = {10015, 50027}
"""Unknown Webhook, Invalid Webhook Token: what Discord answers once an interaction token has expired."""
CUSTOM_ID_PREFIX = "editbot:"
MESSAGE_LIMIT = 2000
PART_LIMIT = MESSAGE_LIMIT - 40
"""A long text's parts leave room for the mention a channel message starts with."""
PRIVATE_ANSWER = "Answered privately."
ANSWERED_BELOW = "⌛ This took longer than Discord keeps a reply open, so the answer is posted below in the channel."
"""What the "thinking…" (or progress) message ends with when the answer had to go to the channel."""

def fit_upload(picture: bytes, limit: int) -> tuple[bytes, str]:
    """The result as sent: the engine's picture (a JPEG preview, or a PNG) when it fits the upload limit, else
    re-encoded to fit; (bytes, MIME type)."""
    if len(picture) <= limit:
        return picture, picture_mime(picture)
    with Image.open(io.BytesIO(picture)) as image:
        return encode_for_upload(image, limit)


def upload_caption(caption: str, picture: bytes, sent: bytes) -> str:
    """The caption, saying so when the picture had to be re-encoded (JPEG, maybe smaller) to fit the upload limit."""
    if sent is picture:
        return caption
    with Image.open(io.BytesIO(picture)) as full, Image.open(io.BytesIO(sent)) as shown:
        size = "" if shown.size == full.size else f", {shown.width}×{shown.height} of {full.width}×{full.height}"
    return f"{caption}\n(sent as JPEG{size}: the full-size picture is over this server's upload limit)"


def picture_filename(reply: ImageReply, mime: str) -> str:
    """Named after the label /history and /goto use, as the terminal chat names its files (step-2b.png,
    history-2b.png): a person saving it should not meet a database id, which reads like another step."""
    name = reply.label or str(reply.node_id)
    stem = f"step-{name}" if reply.kind == "node" else f"{reply.kind}-{name}"
    return f"{stem}{mimetypes.guess_extension(mime)}"


# ---------------------------------------------------------------------------------------------------- buttons


PRESS_ID = re.compile(re.escape(CUSTOM_ID_PREFIX) + f"(?P<data>{ASCII_WORD.pattern}:{ASCII_NUMBER.pattern})")
"""The custom_id of a result button: exactly what Press.parse reads, so every id it matches makes a Press (the
client answers any other with one line)."""


class PressButton(discord.ui.DynamicItem[discord.ui.Button], template=PRESS_ID):
    """A button under a result. Its custom_id carries Press.data, so any running bot can answer it, even one
    started after the message was sent."""

    def __init__(self, press: Press, label: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=label[:80], style=discord.ButtonStyle.secondary, custom_id=CUSTOM_ID_PREFIX + press.data
            )
        )
        self.press = press

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: Any, /
    ) -> PressButton:
        return cls(Press.parse(match["data"]), item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.answer_press(interaction, self.press)


def result_view(buttons: Sequence[Button]) -> discord.ui.View | None:
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(PressButton(button.press, button.label))
    return view




@dataclass
class _Progress:
    message: discord.WebhookMessage | None  # None: the interaction's own deferred response
    shown_at: float


class Responder:
    """Renders the replies of one interaction, in order.

    owns_original: the interaction was deferred with a "thinking" message that is ours to turn into progress
    (slash commands, modals; `thinking` defers and makes one); button presses are acknowledged silently, so their
    progress is a separate message.
    """

    def __init__(self, interaction: discord.Interaction, *, owns_original: bool, private: bool = False,
                 original_id: int | None = None) -> None:
        """private: the interaction was deferred ephemerally; everything that follows is for the person only.
        original_id: the "thinking" message's id, to end it through the channel once the token has expired."""
        self._interaction = interaction
        self._private = private
        self._original_free = owns_original
        self._original_open = owns_original  # still "thinking…" or showing progress: not yet ended
        self._original_id = original_id
        self._progress: dict[int, _Progress] = {}

    @classmethod
    async def thinking(cls, interaction: discord.Interaction, *, private: bool = False) -> Responder:
        """Defer the interaction with Discord's "thinking…" message; the Responder that answers it."""
        callback = await interaction.response.defer(thinking=True, ephemeral=private)
        return cls(interaction, owns_original=True, private=private,
                   original_id=callback.message_id if callback is not None else None)

    async def __call__(self, reply: Reply) -> None:
        if isinstance(reply, ProgressReply):
            await self._show_progress(reply)
        elif isinstance(reply, ImageReply):
            await self._show_image(reply)
            await self._end_progress("✅ Done.")
        elif reply.error:
            await self._refuse(reply.text)
        else:
            await self._post(reply.text)

    async def _refuse(self, text: str) -> None:
        """A refusal is for the person alone. The first follow-up of a public "thinking" message would become that
        message, for the whole channel to read: so that message is closed first, and removed once the refusal is
        posted privately."""
        public_thinking = self._original_free and not self._private and not self._token_expired()
        self._original_free = False
        if public_thinking:
            await self._tidy(self._interaction.edit_original_response(content=PRIVATE_ANSWER))
        await self._post(text, ephemeral=True)
        if public_thinking:
            await self._tidy(self._interaction.delete_original_response())
            self._original_open = False
        await self._end_progress("Stopped.")

    @staticmethod
    async def _tidy(request: Awaitable) -> None:
        try:
            await request
        except discord.HTTPException as error:  # tidying up is not worth failing the reply for
            log.info("could not tidy the thinking message: %s", error)

    def _token_expired(self) -> bool:
        return discord.utils.utcnow() >= self._interaction.expires_at - TOKEN_MARGIN

    async def _show_progress(self, reply: ProgressReply) -> None:
        """Progress is a courtesy: a failed edit is logged and the job carries on to its result."""
        if self._token_expired():
            return
        try:
            await self._update_progress(reply)
        except discord.HTTPException as error:
            log.info("could not show progress: %s", error)

    async def _update_progress(self, reply: ProgressReply) -> None:
        text = f"⏳ {reply.text}"
        now = time.monotonic()
        progress = self._progress.get(reply.job_id)
        if progress is None:
            if self._original_free:
                self._original_free = False
                await self._interaction.edit_original_response(content=text)
                self._progress[reply.job_id] = _Progress(None, now)
            else:
                # Only the presser needs to watch; it disappears when the result arrives.
                message = await self._interaction.followup.send(text, ephemeral=True, wait=True)
                self._progress[reply.job_id] = _Progress(message, now)
            return
        if now - progress.shown_at < PROGRESS_INTERVAL_S:
            return
        progress.shown_at = now
        await self._edit_progress(progress, text)

    async def _edit_progress(self, progress: _Progress, text: str) -> None:
        if progress.message is None:
            await self._interaction.edit_original_response(content=text)
        else:
            await progress.message.edit(content=text)

    async def _end_progress(self, final: str) -> None:
        """The job is over: the deferred response says how it ended, separate progress messages go away."""
        progress, self._progress = self._progress, {}
        if self._token_expired():
            return
        for entry in progress.values():
            try:
                if entry.message is None:
                    await self._interaction.edit_original_response(content=final)
                    self._original_open = False
                else:
                    await entry.message.delete()
            except discord.HTTPException as error:  # tidying up is not worth failing the reply for
                log.info("could not tidy a progress message: %s", error)

    async def _show_image(self, reply: ImageReply) -> None:
        data, mime = await asyncio.to_thread(fit_upload, reply.image, self._interaction.filesize_limit)
        filename = picture_filename(reply, mime)
        await self._post(
            await asyncio.to_thread(upload_caption, reply.caption, reply.image, data),
            attach=lambda: discord.File(io.BytesIO(data), filename=filename),
            view=result_view(reply.buttons),
        )

    async def _post(
        self,
        content: str,
        *,
        ephemeral: bool = False,
        attach: Callable[[], discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> None:
        """Follow-ups while the interaction token lives, else channel messages that mention the person; a text over
        Discord's limit in several, the picture and buttons with the last."""
        *leading, last = message_parts(content)
        for part in leading:
            await self._post_one(part, ephemeral=ephemeral)
        await self._post_one(last, ephemeral=ephemeral, attach=attach, view=view)

    async def _post_one(
        self,
        content: str,
        *,
        ephemeral: bool = False,
        attach: Callable[[], discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> None:
        extras: dict[str, Any] = {}
        if view is not None:
            extras["view"] = view
        if not self._token_expired():
            try:
                if attach is not None:
                    extras["file"] = attach()
                await self._interaction.followup.send(content[:MESSAGE_LIMIT], ephemeral=ephemeral or self._private,
                                                      **extras)
                # The first follow-up of a deferred interaction becomes its "thinking" message: no longer ours to
                # turn into progress or "Answered privately." over what it now says.
                self._original_open = self._original_open and not self._original_free
                self._original_free = False
                return
            except discord.HTTPException as error:
                if error.code not in EXPIRED_TOKEN_CODES:
                    raise
                log.info("interaction token expired; posting to the channel instead")
        if attach is not None:
            extras["file"] = attach()
        user = self._interaction.user
        await self._interaction.channel.send(f"{user.mention} {content}"[:MESSAGE_LIMIT],
                                             allowed_mentions=discord.AllowedMentions(users=[user]), **extras)
        await self._end_expired_original()

    async def _end_expired_original(self) -> None:
        """The token died while the "thinking…" (or progress) message was open: the bot's own access to the channel
        still edits its message, to say where the answer went instead of thinking forever. An ephemeral one only
        the token reaches."""
        if not self._original_open or self._private or self._original_id is None:
            return
        self._original_open = self._original_free = False
        self._progress = {job: entry for job, entry in self._progress.items() if entry.message is not None}
        original = self._interaction.channel.get_partial_message(self._original_id)
        await self._tidy(original.edit(content=ANSWERED_BELOW))


def message_parts(text: str, limit: int = PART_LIMIT) -> list[str]:
    """The text as messages Discord accepts, cut between lines (a line longer than a message, between words):
    /help and /history run past one message, and cutting them at the limit lost their end."""
    lines: list[str] = []
    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 1, limit)
            cut = cut if cut > 0 else limit
            lines.append(line[:cut])
            line = line[cut:].lstrip(" ")
        lines.append(line)
    parts = [lines[0]]
    for line in lines[1:]:
        if len(parts[-1]) + 1 + len(line) <= limit:
            parts[-1] += "\n" + line
        else:
            parts.append(line)
    return [part for part in parts if part.strip()] or [text]


class ChannelPoster:
    """Renders the replies of a conversation that has no interaction to answer (a job re-attached after a restart):
    posted to its channel, mentioning the person. Progress is not shown: a message per step in the channel would be
    noise, and the result follows."""

    def __init__(self, client: discord.Client, key: ChatKey) -> None:
        self._client = client
        self._channel_id = int(key.chat_id)
        self._mention = f"<@{key.user_id}>"
        # The person this is for, and nobody else: an instruction may say "@everyone".
        self._allowed_mentions = discord.AllowedMentions(users=[discord.Object(int(key.user_id))])

    async def __call__(self, reply: Reply) -> None:
        if isinstance(reply, ProgressReply):
            return
        # The engine may finish a job before the gateway connects; the HTTP session is ours only once ready.
        await self._client.wait_until_ready()
        channel = self._client.get_partial_messageable(self._channel_id)
        if isinstance(reply, ImageReply):
            data, mime = await asyncio.to_thread(fit_upload, reply.image, self._upload_limit())
            extras: dict[str, Any] = {
                "file": discord.File(io.BytesIO(data), filename=picture_filename(reply, mime))
            }
            view = result_view(reply.buttons)
            if view is not None:
                extras["view"] = view
            caption = await asyncio.to_thread(upload_caption, reply.caption, reply.image, data)
            await channel.send(f"{self._mention} {caption}"[:MESSAGE_LIMIT],
                               allowed_mentions=self._allowed_mentions, **extras)
        else:
            await channel.send(f"{self._mention} {reply.text}"[:MESSAGE_LIMIT],
                               allowed_mentions=self._allowed_mentions)

    def _upload_limit(self) -> int:
        """The channel's server limit when the channel is cached, else what every server and DM allows."""
        guild = getattr(self._client.get_channel(self._channel_id), "guild", None)
        return guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
