"""The Discord adapter: slash commands, an "Edit this image" message menu and result buttons, each turned into
`engine.handle(Incoming, send)`, and each Reply rendered the Discord way.

Every interaction is acknowledged at once; the deferred "thinking" message then shows the job's progress, edited
in place at most once a second, and the result arrives as a follow-up carrying the image, a caption and buttons.
Buttons are `DynamicItem`s whose custom_id carries `Press.data`, so they keep working after a restart. A result
ready after the interaction's 15-minute token has expired is posted to the channel instead, mentioning the person.

`build_client(settings, engine)` builds the client without connecting (tests drive it offline with SimCord);
bot/platforms.py starts it beside the other platforms. Results of edits a distributed queue re-attached after a
restart are posted to their channels, mentioning the person (`send_to`). Replies are drawn by bot/discord_replies.py,
the slash commands made by bot/discord_commands.py; this file admits people and turns interactions into messages.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.chat_common import (
    SOMETHING_WENT_WRONG,
    admitted,
    hand_over_in_order,
    refuse_declared_size,
)
from bot.discord_commands import add_commands
from bot.discord_replies import ChannelPoster, PressButton, Responder
from core.config import Settings
from core.conversation.language import FIX_TRANSLATION, MEANT_MAX_CHARS
from core.domain import ChatKey
from core.errors import BadImage, UserError
from core.messages import Incoming, Press, Reply, TextReply

if TYPE_CHECKING:
    from core.conversation.engine import ConversationEngine

log = logging.getLogger(__name__)

PLATFORM = "discord"
NOT_ALLOWED = "Sorry, this image editor is private and not available here."
SOMETHING_WRONG = SOMETHING_WENT_WRONG



def chat_key(interaction: discord.Interaction) -> ChatKey:
    """One conversation per person per channel (a DM is a channel too)."""
    return ChatKey(PLATFORM, str(interaction.channel_id), str(interaction.user.id))


def check_attachment(attachment: discord.Attachment, limit: int) -> None:
    """Refuse, from its metadata alone, an attachment that is not an image or is too large to fetch."""
    if not (attachment.content_type or "").startswith("image/"):
        raise BadImage(f"“{attachment.filename}” is not an image: please attach a photo (JPEG, PNG, WebP or GIF).")
    refuse_declared_size(attachment.size, limit)


def first_image(message: discord.Message) -> discord.Attachment | None:
    return next((a for a in message.attachments if (a.content_type or "").startswith("image/")), None)


class InstructionModal(discord.ui.Modal, title="Edit this image"):
    """Asks what to change in the image of the message the person right-clicked."""

    instruction = discord.ui.TextInput(
        label="Instruction", placeholder="e.g. make it look like a watercolour", max_length=500, custom_id="instruction"
    )

    def __init__(self, client: EditBotClient, attachment: discord.Attachment) -> None:
        # A dismissed modal never submits: let it go after a while instead of keeping it forever.
        super().__init__(timeout=600)
        self._client = client
        self._attachment = attachment

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._client.answer_edit(interaction, self._attachment, self.instruction.value)


class CorrectionModal(discord.ui.Modal, title="Fix the translation"):
    """Asks for the English the person meant, from a translated result's Fix translation button: Discord has no
    replies to the bot's messages for it (Telegram's way)."""

    english = discord.ui.TextInput(
        label="The English you meant", placeholder="e.g. make the photo snowy", max_length=MEANT_MAX_CHARS,
        custom_id="english",
    )

    def __init__(self, client: EditBotClient, node_id: int) -> None:
        super().__init__(timeout=600)
        self._client = client
        self._node_id = node_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._client.answer_correction(interaction, self._node_id, self.english.value)


async def _collect_text(engine: ConversationEngine, key: ChatKey, texts: Sequence[str]) -> list[TextReply]:
    """Run engine commands whose replies are plain text; stop after the first refusal."""
    replies: list[TextReply] = []

    async def keep(reply: Reply) -> None:
        if isinstance(reply, TextReply):
            replies.append(reply)

    for text in texts:
        await engine.handle(Incoming(key, text=text), keep)
        if any(reply.error for reply in replies):
            break
    return replies


# ---------------------------------------------------------------------------------------------------- the client


class EditBotClient(discord.Client):
    """A discord.Client whose command tree speaks to the engine."""

    def __init__(self, settings: Settings, engine: ConversationEngine) -> None:
        # Nothing the bot sends pings anyone unless it says so: captions echo instructions such as "@everyone ...".
        super().__init__(intents=discord.Intents.default(), allowed_mentions=discord.AllowedMentions.none())
        self.settings = settings
        self.engine = engine
        self.tree = app_commands.CommandTree(
            self,
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True),
        )
        self.tree.error(self._on_tree_error)
        add_commands(self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(PressButton)
        await self.tree.sync()

    # -------------------------------------------------------------- entry points (called by commands and items)

    def send_to(self, key: ChatKey) -> ChannelPoster:
        """How the engine reaches a conversation without an interaction: `engine.start(send_to=client.send_to)`."""
        return ChannelPoster(self, key)

    def allowed(self, interaction: discord.Interaction) -> bool:
        return admitted(self.settings.discord.allowed_ids, interaction.user.id, interaction.guild_id)

    def upload_limit(self, interaction: discord.Interaction) -> int:
        """The most we fetch: this interaction's own attachment limit, or our configured one if lower."""
        return min(interaction.filesize_limit, self.settings.limits.max_upload_bytes)

    async def answer(
        self,
        interaction: discord.Interaction,
        texts: Sequence[str],
        *,
        ephemeral: bool = False,
        last_only: bool = False,
    ) -> None:
        """Send the engine one or more command/instruction texts and render what it answers.

        last_only: the texts are settings changes; show only the final confirmation (or the refusal).
        """
        if not await self._admit(interaction):
            return
        await interaction.response.defer(thinking=True, ephemeral=ephemeral)
        send = Responder(interaction, owns_original=True, private=ephemeral)
        key = chat_key(interaction)
        await self._guarded(send, self._answer_texts(key, texts, send, last_only))

    async def _answer_texts(self, key: ChatKey, texts: Sequence[str], send: Responder, last_only: bool) -> None:
        if last_only:
            replies = await _collect_text(self.engine, key, texts)
            await send(replies[-1])
            return
        for text in texts:
            await self.engine.handle(Incoming(key, text=text), send)

    async def answer_edit(
        self,
        interaction: discord.Interaction,
        attachment: discord.Attachment,
        instruction: str,
        settings: Sequence[str] = (),
        references: Sequence[discord.Attachment] = (),
    ) -> None:
        """Edit an attached image: checked (with its reference pictures) before anything is fetched, then sent to the
        engine with its instruction."""
        if not await self._admit(interaction):
            return
        try:
            for picture in (attachment, *references):
                check_attachment(picture, self.upload_limit(interaction))
        except UserError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        send = Responder(interaction, owns_original=True)
        key = chat_key(interaction)
        await self._guarded(send, self._edit(key, [attachment, *references], instruction, settings, send))

    async def _edit(self, key: ChatKey, attachments: Sequence[discord.Attachment], instruction: str,
                    settings: Sequence[str], send: Responder) -> None:
        """The photo with its instruction; with reference pictures, the photo starts the tree, each reference is
        added ("/ref"), then the instruction comes (its leading "/" dropped, or it would read as a command)."""
        if settings:
            refusals = [reply for reply in await _collect_text(self.engine, key, settings) if reply.error]
            if refusals:
                await send(refusals[0])
                return
        try:
            photo, *references = [await attachment.read() for attachment in attachments]
        except discord.HTTPException:
            log.warning("could not download an attachment of %s", key, exc_info=True)
            await send(TextReply("I couldn't download that image from Discord; please try again.", error=True))
            return
        if not references:
            await self.engine.handle(Incoming(key, text=instruction, image=photo), send)
            return
        await hand_over_in_order(self.engine, [
            Incoming(key, image=photo), *(Incoming(key, text="/ref", image=picture) for picture in references),
            Incoming(key, text=instruction.lstrip("/ ") or instruction)], send)

    async def answer_press(self, interaction: discord.Interaction, press: Press) -> None:
        """A result button: acknowledged silently; a refusal (e.g. someone else's history) only the presser sees.
        Fix translation opens a box asking for the English instead."""
        if not await self._admit(interaction):
            return
        if press.action == FIX_TRANSLATION:
            await interaction.response.send_modal(CorrectionModal(self, press.node_id))
            return
        await interaction.response.defer()
        send = Responder(interaction, owns_original=False)
        await self._guarded(send, self.engine.handle(Incoming(chat_key(interaction), action=press), send))

    async def answer_correction(self, interaction: discord.Interaction, node_id: int, english: str) -> None:
        """The English typed into a Fix translation box: that edit made again with it, shown like an edit."""
        if not await self._admit(interaction):
            return
        await interaction.response.defer(thinking=True)
        send = Responder(interaction, owns_original=True)
        incoming = Incoming(chat_key(interaction), text=english, corrects=node_id)
        await self._guarded(send, self.engine.handle(incoming, send))

    async def offer_edit(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The "Edit this image" menu: ask for the instruction in a modal, having checked the image first."""
        if not await self._admit(interaction):
            return
        attachment = first_image(message)
        try:
            if attachment is None:
                raise BadImage("That message has no image to edit.")
            check_attachment(attachment, self.upload_limit(interaction))
        except UserError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.send_modal(InstructionModal(self, attachment))

    # -------------------------------------------------------------- helpers

    async def _admit(self, interaction: discord.Interaction) -> bool:
        if self.allowed(interaction):
            return True
        await interaction.response.send_message(NOT_ALLOWED, ephemeral=True)
        return False

    @staticmethod
    async def _guarded(send: Responder, work: Awaitable[None]) -> None:
        """Run the work; if the adapter itself fails, log it whole and tell the person one line."""
        try:
            await work
        except Exception:
            log.exception("failed to answer a Discord interaction")
            try:
                await send(TextReply(SOMETHING_WRONG, error=True))
            except discord.HTTPException:
                log.warning("could not report the failure to the person", exc_info=True)

    async def _on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        log.error("command failed", exc_info=error)
        if interaction.response.is_done():
            await interaction.followup.send(SOMETHING_WRONG, ephemeral=True)
        else:
            await interaction.response.send_message(SOMETHING_WRONG, ephemeral=True)


def build_client(settings: Settings, engine: ConversationEngine) -> EditBotClient:
    """The Discord client for this engine, not yet connected (tests drive it offline)."""
    return EditBotClient(settings, engine)
