"""The Discord adapter: slash commands, an "Edit this image" message menu and result buttons, each turned into
`engine.handle(Incoming, send)`, and each Reply rendered the Discord way.

Every interaction is acknowledged at once; the deferred "thinking" message then shows the job's progress, edited
in place at most once a second, and the result arrives as a follow-up carrying the image, a caption and buttons.
Buttons are `DynamicItem`s whose custom_id carries `Press.data`, so they keep working after a restart. A result
ready after the interaction's 15-minute token has expired is posted to the channel instead, mentioning the person.

`build_client(settings, engine)` builds the client without connecting (tests drive it offline with SimCord);
bot/platforms.py starts it beside the other platforms. Results of edits a distributed queue re-attached after a
restart are posted to their channels, mentioning the person (`send_to`).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Optional

import discord
from discord import app_commands
from PIL import Image

from bot.sizes import size_and_limit
from core.conversation.admin import USAGE_DAYS, USAGE_TOP, USAGE_TOP_MAX
from core.commands import Arg, CommandInfo
from core.config import Settings
from core.domain import IMAGE_GUIDANCE_RANGE, SEED_RANGE, STEPS_RANGE, TEXT_GUIDANCE_RANGE, ChatKey, EditParams
from core.errors import BadImage, UserError
from core.images import encode_for_upload
from core.messages import Button, ImageReply, Incoming, Press, ProgressReply, Reply, TextReply

if TYPE_CHECKING:
    from core.conversation.engine import ConversationEngine

log = logging.getLogger(__name__)

PLATFORM = "discord"
PROGRESS_INTERVAL_S = 1.0
"""At most one progress edit per second per job: Discord rate-limits message edits."""
TOKEN_MARGIN = timedelta(seconds=30)
"""Post to the channel a little before the 15-minute interaction token dies rather than after a failed call."""
EXPIRED_TOKEN_CODES = {10015, 50027}
"""Unknown Webhook, Invalid Webhook Token: what Discord answers once an interaction token has expired."""
CUSTOM_ID_PREFIX = "editbot:"
MESSAGE_LIMIT = 2000
NOT_ALLOWED = "Sorry, this image editor is private and not available here."
SOMETHING_WRONG = "Something went wrong on my side; nothing was changed. Please try again."
PRIVATE_ANSWER = "Answered privately."

TextGuidance = app_commands.Range[float, TEXT_GUIDANCE_RANGE[0], TEXT_GUIDANCE_RANGE[1]]
ImageGuidance = app_commands.Range[float, IMAGE_GUIDANCE_RANGE[0], IMAGE_GUIDANCE_RANGE[1]]
Steps = app_commands.Range[int, STEPS_RANGE[0], STEPS_RANGE[1]]
Seed = app_commands.Range[int, SEED_RANGE[0], SEED_RANGE[1]]

_DEFAULTS = EditParams()
PARAM_DESCRIPTIONS = {
    "text_guidance": "How strongly to follow the instruction ({:g}-{:g}, default {:g})".format(
        *TEXT_GUIDANCE_RANGE, _DEFAULTS.text_guidance
    ),
    "image_guidance": "How much of the photo to keep ({:g}-{:g}, default {:g})".format(
        *IMAGE_GUIDANCE_RANGE, _DEFAULTS.image_guidance
    ),
    "steps": "Denoising steps: more is slower and finer ({}-{}, default {})".format(*STEPS_RANGE, _DEFAULTS.steps),
    "seed": "Pin the random seed to repeat a result",
}


def chat_key(interaction: discord.Interaction) -> ChatKey:
    """One conversation per person per channel (a DM is a channel too)."""
    return ChatKey(PLATFORM, str(interaction.channel_id), str(interaction.user.id))


def settings_commands(
    text_guidance: float | None, image_guidance: float | None, steps: int | None, seed: int | None
) -> list[str]:
    """The engine commands that set each given option, e.g. text_guidance=9 -> '/text 9'."""
    commands = []
    if text_guidance is not None:
        commands.append(f"/text {text_guidance:g}")
    if image_guidance is not None:
        commands.append(f"/image {image_guidance:g}")
    if steps is not None:
        commands.append(f"/steps {steps}")
    if seed is not None:
        commands.append(f"/seed {seed}")
    return commands


def check_attachment(attachment: discord.Attachment, limit: int) -> None:
    """Refuse, from its metadata alone, an attachment that is not an image or is too large to fetch."""
    if not (attachment.content_type or "").startswith("image/"):
        raise BadImage(f"“{attachment.filename}” is not an image: please attach a photo (PNG, JPEG or WebP).")
    if attachment.size > limit:
        size, most = size_and_limit(attachment.size, limit)
        raise BadImage(f"That image is {size}; the most I accept here is {most}.")


def first_image(message: discord.Message) -> discord.Attachment | None:
    return next((a for a in message.attachments if (a.content_type or "").startswith("image/")), None)


def fit_upload(png: bytes, limit: int) -> tuple[bytes, str]:
    """The result as sent: its PNG when it fits the upload limit, else re-encoded to fit; (bytes, MIME type)."""
    if len(png) <= limit:
        return png, "image/png"
    with Image.open(io.BytesIO(png)) as image:
        return encode_for_upload(image, limit)


def upload_caption(caption: str, png: bytes, sent: bytes) -> str:
    """The caption, saying so when the picture had to be re-encoded (JPEG, maybe smaller) to fit the upload limit."""
    if sent is png:
        return caption
    with Image.open(io.BytesIO(png)) as full, Image.open(io.BytesIO(sent)) as shown:
        size = "" if shown.size == full.size else f", {shown.width}×{shown.height} of {full.width}×{full.height}"
    return f"{caption}\n(sent as JPEG{size}: the full-size PNG is over this server's upload limit)"


# ---------------------------------------------------------------------------------------------------- buttons


class PressButton(
    discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID_PREFIX + r"(?P<data>[A-Za-z]+:[0-9]{1,18})"
):
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
        # The template admits only what Press.parse accepts.
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


# ---------------------------------------------------------------------------------------------------- replies


@dataclass
class _Progress:
    message: discord.WebhookMessage | None  # None: the interaction's own deferred response
    shown_at: float


class Responder:
    """Renders the replies of one interaction, in order.

    owns_original: the interaction was deferred with a "thinking" message that is ours to turn into progress
    (slash commands, modals); button presses are acknowledged silently, so their progress is a separate message.
    """

    def __init__(self, interaction: discord.Interaction, *, owns_original: bool, private: bool = False) -> None:
        """private: the interaction was deferred ephemerally; everything that follows is for the person only."""
        self._interaction = interaction
        self._private = private
        self._original_free = owns_original
        self._progress: dict[int, _Progress] = {}

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
                else:
                    await entry.message.delete()
            except discord.HTTPException as error:  # tidying up is not worth failing the reply for
                log.info("could not tidy a progress message: %s", error)

    async def _show_image(self, reply: ImageReply) -> None:
        data, mime = await asyncio.to_thread(fit_upload, reply.image, self._interaction.filesize_limit)
        filename = f"edit-{reply.node_id}{mimetypes.guess_extension(mime)}"
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
        """A follow-up while the interaction token lives, else a channel message that mentions the person."""
        extras: dict[str, Any] = {}
        if view is not None:
            extras["view"] = view
        if not self._token_expired():
            try:
                if attach is not None:
                    extras["file"] = attach()
                await self._interaction.followup.send(content[:MESSAGE_LIMIT], ephemeral=ephemeral or self._private,
                                                      **extras)
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
                "file": discord.File(io.BytesIO(data), filename=f"edit-{reply.node_id}{mimetypes.guess_extension(mime)}")
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
        _add_commands(self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(PressButton)
        await self.tree.sync()

    # -------------------------------------------------------------- entry points (called by commands and items)

    def send_to(self, key: ChatKey) -> ChannelPoster:
        """How the engine reaches a conversation without an interaction: `engine.start(send_to=client.send_to)`."""
        return ChannelPoster(self, key)

    def allowed(self, interaction: discord.Interaction) -> bool:
        allowed = self.settings.discord.allowed_ids
        return not allowed or interaction.user.id in allowed or interaction.guild_id in allowed

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
    ) -> None:
        """Edit an attached image: checked before it is fetched, then sent to the engine with its instruction."""
        if not await self._admit(interaction):
            return
        try:
            check_attachment(attachment, self.upload_limit(interaction))
        except UserError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        send = Responder(interaction, owns_original=True)
        await self._guarded(send, self._edit(chat_key(interaction), attachment, instruction, settings, send))

    async def _edit(
        self, key: ChatKey, attachment: discord.Attachment, instruction: str, settings: Sequence[str], send: Responder
    ) -> None:
        if settings:
            refusals = [reply for reply in await _collect_text(self.engine, key, settings) if reply.error]
            if refusals:
                await send(refusals[0])
                return
        try:
            image = await attachment.read()
        except discord.HTTPException:
            log.warning("could not download attachment %s", attachment.url, exc_info=True)
            await send(TextReply("I couldn't download that image from Discord; please try again.", error=True))
            return
        await self.engine.handle(Incoming(key, text=instruction, image=image), send)

    async def answer_press(self, interaction: discord.Interaction, press: Press) -> None:
        """A result button: acknowledged silently; a refusal (e.g. someone else's history) only the presser sees."""
        if not await self._admit(interaction):
            return
        await interaction.response.defer()
        send = Responder(interaction, owns_original=False)
        await self._guarded(send, self.engine.handle(Incoming(chat_key(interaction), action=press), send))

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


PRIVATE_ANSWERS = frozenset({"help", "history", "reset", "cancel", "settings", "info"})
"""Commands whose answer only the asker needs to see: answered ephemerally."""


def _option_type(arg: Arg) -> object:
    """The Discord option type for an engine argument, with the engine's own limits."""
    if arg.kind is str:
        return app_commands.Choice[str] if arg.choices else str
    return app_commands.Range[arg.kind, arg.kind(arg.low), arg.kind(arg.high)]


def engine_command(client: EditBotClient, info: CommandInfo) -> app_commands.Command:
    """A slash command that sends the engine `/name args`, its options built from the command's declared Args.
    A choice with one value is filled in (/crop square); a number with words (/seed random) may be left out."""
    options = [arg for arg in info.args if len(arg.choices) != 1]

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        words = []
        for arg in info.args:
            value = values.get(arg.name)
            value = arg.choices[0] if len(arg.choices) == 1 else getattr(value, "value", value)  # a Choice's value
            if value is None and arg.words:
                value = arg.words[0][0]
            if value is not None:
                words.append(f"{value:g}" if isinstance(value, float) else str(value))
        await client.answer(interaction, [" ".join([f"/{info.name}", *words])], ephemeral=info.name in PRIVATE_ANSWERS)

    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    annotation=discord.Interaction)]
    for arg in options:
        optional = not arg.required or bool(arg.words)
        parameters.append(inspect.Parameter(
            arg.name, inspect.Parameter.KEYWORD_ONLY, default=None if optional else inspect.Parameter.empty,
            annotation=Optional[_option_type(arg)] if optional else _option_type(arg),
        ))
    callback.__signature__ = inspect.Signature(parameters)
    if options:
        callback = app_commands.describe(**{arg.name: arg.help[:100] for arg in options})(callback)
    choices = {arg.name: [app_commands.Choice(name=label, value=choice)
                          for choice, label in zip(arg.choices, arg.labels or arg.choices)]
               for arg in options if arg.choices}
    if choices:
        callback = app_commands.choices(**choices)(callback)
    return app_commands.Command(name=info.name, description=info.summary[:100], callback=callback)


def _add_commands(client: EditBotClient) -> None:
    """Register the slash commands and the message menu: one generated command per public engine command (its
    summary as description, its Args as options), and by hand only /edit, /refine, /admin and the menu."""
    tree = client.tree

    @tree.command(name="edit")
    @app_commands.describe(
        image="The photo to edit", instruction="What to change, e.g. “make it snow”", **PARAM_DESCRIPTIONS
    )
    async def edit(
        interaction: discord.Interaction,
        image: discord.Attachment,
        instruction: app_commands.Range[str, 1, 500],
        text_guidance: TextGuidance | None = None,
        image_guidance: ImageGuidance | None = None,
        steps: Steps | None = None,
        seed: Seed | None = None,
    ) -> None:
        """Edit a photo with an instruction (the options are kept for your next edits)."""
        settings = settings_commands(text_guidance, image_guidance, steps, seed)
        await client.answer_edit(interaction, image, instruction, settings)

    @tree.command(name="refine")
    @app_commands.describe(instruction="What to change next, e.g. “now add a rainbow”")
    async def refine(interaction: discord.Interaction, instruction: app_commands.Range[str, 1, 500]) -> None:
        """Edit your current image again with a new instruction."""
        # A leading "/" would make the engine read the instruction as a command.
        await client.answer(interaction, [instruction.lstrip("/ ") or instruction])

    for info in client.engine.commands:
        tree.add_command(engine_command(client, info))

    # The engine's hidden admin commands, in one command only server managers see by default; the engine still
    # answers only the people in EDITBOT_ADMIN_IDS (anyone else gets its unknown-command line).
    @tree.command(name="admin")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(command="What to do", number=f"usage only: how many people to list (default {USAGE_TOP})")
    @app_commands.choices(command=[
        app_commands.Choice(name="queue status", value="queue"),
        app_commands.Choice(name=f"usage: who edited most in the last {USAGE_DAYS} days", value="usage"),
        app_commands.Choice(name="pause: start no new edits", value="pause"),
        app_commands.Choice(name="resume", value="resume"),
    ])
    async def admin(
        interaction: discord.Interaction,
        command: app_commands.Choice[str],
        number: app_commands.Range[int, 1, USAGE_TOP_MAX] | None = None,
    ) -> None:
        """Operators only: queue status, usage, pause or resume."""
        text = f"/{command.value}"
        if command.value == "usage" and number is not None:
            text += f" {number}"
        await client.answer(interaction, [text], ephemeral=True)

    @tree.context_menu(name="Edit this image")
    async def edit_this_image(interaction: discord.Interaction, message: discord.Message) -> None:
        await client.offer_edit(interaction, message)



def build_client(settings: Settings, engine: ConversationEngine) -> EditBotClient:
    """The Discord client for this engine, not yet connected (tests drive it offline)."""
    return EditBotClient(settings, engine)
