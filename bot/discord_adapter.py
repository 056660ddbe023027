"""The Discord adapter: slash commands, an "Edit this image" message menu and result buttons, each turned into
`engine.handle(Incoming, send)`, and each Reply rendered the Discord way.

Every interaction is acknowledged at once; the deferred "thinking" message then shows the job's progress, edited
in place at most once a second, and the result arrives as a follow-up carrying the image, a caption and buttons.
Buttons are `DynamicItem`s whose custom_id carries `Press.data`, and boxes (modals) are answered from their custom_id,
so both keep working after a restart; a button or box whose custom_id the bot does not read gets one line. A result
ready after the interaction's 15-minute token has expired is posted to the channel instead, mentioning the person,
and the "thinking" message is edited through the channel to say so (an ephemeral one only the token could reach).

`build_client(settings, engine)` builds the client without connecting (tests drive it offline with SimCord);
bot/platforms.py starts it beside the other platforms. Results of edits a distributed queue re-attached after a
restart are posted to their channels, mentioning the person (`send_to`). Replies are drawn by bot/discord_replies.py,
the slash commands made by bot/discord_commands.py; this file admits people and turns interactions into messages.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
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
from bot.discord_replies import PRESS_ID, ChannelPoster, PressButton, Responder
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


EDIT_BOX, MEANT_BOX = "editbot-edit:", "editbot-meant:"
BOX_ID = re.compile(r"editbot-(?P<kind>edit|meant):(?P<id>[0-9]{1,20})")
"""A box's custom_id: which box, and the message it edits (edit) or the node it corrects (meant)."""
OUT_OF_DATE_BUTTON = "That button is out of date."
OUT_OF_DATE_BOX = "That box is out of date: please open it again."
IMAGE_GONE = "I can no longer read the picture that box was for: please choose Edit this image on it again."
STALE_COMMAND = ("That command has changed since your Discord loaded the list: please choose it again (restarting "
                 "Discord refreshes the list).")
STALE_COMMAND_ERRORS = (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)
REMEMBERED_PICTURES = 1000
"""How many "Edit this image" pictures are remembered until their box is submitted (a box may never be)."""


def box(title: str, field: discord.ui.TextInput, custom_id: str) -> discord.ui.Modal:
    """A box (modal) answered from its custom_id by EditBotClient.on_interaction, so it works however long it stays
    open and after a restart. It is sent stopped: discord.py keeps only running modals, and would answer it too."""
    modal = discord.ui.Modal(title=title, custom_id=custom_id, timeout=None)
    modal.add_item(field)
    modal.stop()
    return modal


def instruction_box(message_id: int) -> discord.ui.Modal:
    """Asks what to change in the image of the message the person right-clicked."""
    field = discord.ui.TextInput(label="Instruction", placeholder="e.g. make it look like a watercolour",
                                 max_length=500, custom_id="instruction")
    return box("Edit this image", field, f"{EDIT_BOX}{message_id}")


def correction_box(node_id: int) -> discord.ui.Modal:
    """Asks for the English the person meant, from a translated result's Fix translation button: Discord has no
    replies to the bot's messages for it (Telegram's way)."""
    field = discord.ui.TextInput(label="The English you meant", placeholder="e.g. make the photo snowy",
                                 max_length=MEANT_MAX_CHARS, custom_id="english")
    return box("Fix the translation", field, f"{MEANT_BOX}{node_id}")


def box_values(data: dict) -> dict[str, str]:
    """The text typed into each field of a submitted box, by the field's custom_id (in rows or labels)."""
    values: dict[str, str] = {}
    pending = list(data.get("components") or ())
    while pending:
        component = pending.pop()
        if "custom_id" in component and "value" in component:
            values[component["custom_id"]] = component["value"]
        pending += component.get("components") or ()
        if component.get("component"):
            pending.append(component["component"])
    return values


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
        self._offered: OrderedDict[int, discord.Attachment] = OrderedDict()  # by message id, for instruction_box
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

    async def answer(self, interaction: discord.Interaction, texts: Sequence[str], *, ephemeral: bool = False) -> None:
        """Send the engine one or more command/instruction texts and render what it answers."""
        if not await self._admit(interaction):
            return
        send = await Responder.thinking(interaction, private=ephemeral)
        key = chat_key(interaction)
        await self._guarded(send, self._answer_texts(key, texts, send))

    async def _answer_texts(self, key: ChatKey, texts: Sequence[str], send: Responder) -> None:
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
        send = await Responder.thinking(interaction)
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
            await interaction.response.send_modal(correction_box(press.node_id))
            return
        await interaction.response.defer()
        send = Responder(interaction, owns_original=False)
        await self._guarded(send, self.engine.handle(Incoming(chat_key(interaction), action=press), send))

    async def answer_correction(self, interaction: discord.Interaction, node_id: int, english: str) -> None:
        """The English typed into a Fix translation box: that edit made again with it, shown like an edit."""
        if not await self._admit(interaction):
            return
        send = await Responder.thinking(interaction)
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
        self._offered[message.id] = attachment
        self._offered.move_to_end(message.id)
        while len(self._offered) > REMEMBERED_PICTURES:
            self._offered.popitem(last=False)
        await interaction.response.send_modal(instruction_box(message.id))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Answer what discord.py hands nothing for: every box (see `box`), and a button whose custom_id is not a
        result button's (an older version's, or forged), which would otherwise fail in the person's face."""
        custom_id = (interaction.data or {}).get("custom_id", "")
        if interaction.type is discord.InteractionType.modal_submit:
            await self.answer_box(interaction, custom_id)
        elif interaction.type is discord.InteractionType.component and not PRESS_ID.fullmatch(custom_id):
            await self._refuse(interaction, OUT_OF_DATE_BUTTON)

    async def answer_box(self, interaction: discord.Interaction, custom_id: str) -> None:
        """A submitted box: the English meant for a node, or an instruction for a message's picture."""
        found = BOX_ID.fullmatch(custom_id)
        values = box_values(interaction.data or {})
        if found is not None and found["kind"] == "meant" and "english" in values:
            await self.answer_correction(interaction, int(found["id"]), values["english"])
            return
        if found is None or "instruction" not in values:
            await self._refuse(interaction, OUT_OF_DATE_BOX)
            return
        attachment = await self._offered_picture(interaction, int(found["id"]))
        if attachment is None:
            await self._refuse(interaction, IMAGE_GONE)
            return
        await self.answer_edit(interaction, attachment, values["instruction"])

    async def _offered_picture(self, interaction: discord.Interaction, message_id: int) -> discord.Attachment | None:
        """The picture an "Edit this image" box was opened for: remembered, or (after a restart) read again where
        Discord lets the bot (its own results, DMs)."""
        attachment = self._offered.get(message_id)
        if attachment is not None or interaction.channel is None:
            return attachment
        try:
            return first_image(await interaction.channel.fetch_message(message_id))
        except discord.HTTPException as error:
            log.info("could not read the message of an Edit this image box again: %s", error)
            return None

    # -------------------------------------------------------------- helpers

    async def _admit(self, interaction: discord.Interaction) -> bool:
        if self.allowed(interaction):
            return True
        await interaction.response.send_message(NOT_ALLOWED, ephemeral=True)
        return False

    async def _refuse(self, interaction: discord.Interaction, line: str) -> None:
        """One line, for the person alone, as the whole answer to an interaction."""
        if await self._admit(interaction):
            await interaction.response.send_message(line, ephemeral=True)

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
        if isinstance(error, STALE_COMMAND_ERRORS):
            # The person's Discord still shows a command this version renamed, removed or changed: not a failure.
            log.info("a command Discord showed from an earlier sync: %s", error)
            line = STALE_COMMAND
        else:
            log.error("command failed", exc_info=error)
            line = SOMETHING_WRONG
        if interaction.response.is_done():
            await interaction.followup.send(line, ephemeral=True)
        else:
            await interaction.response.send_message(line, ephemeral=True)


def build_client(settings: Settings, engine: ConversationEngine) -> EditBotClient:
    """The Discord client for this engine, not yet connected (tests drive it offline)."""
    return EditBotClient(settings, engine)
