"""The Discord slash commands: one per engine command, generated from its typed arguments (core/commands.py), and
the few written by hand (/edit, /refine, /ref, /admin and the "Edit this image" message menu)."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Optional

import discord
from discord import app_commands

from core.commands import Arg, CommandInfo
from core.conversation.admin import USAGE_DAYS, USAGE_TOP, USAGE_TOP_MAX
from core.domain import (
    IMAGE_GUIDANCE_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    TEXT_GUIDANCE_RANGE,
    EditParams,
)

if TYPE_CHECKING:
    from bot.discord_adapter import EditBotClient

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
WRITTEN_BY_HAND = frozenset({"ref"})
"""Engine commands whose Discord form is not generated from their Args: /ref takes its picture as an attachment."""
REF_DESCRIPTION = "A reference picture for your next edit: “picture 2” in the instruction (models that take several)"
REFERENCE_DESCRIPTIONS = {
    "picture2": "A reference picture: “picture 2” in the instruction (models that take several)",
    "picture3": "Another reference picture: “picture 3” in the instruction",
}


PRIVATE_ANSWERS = frozenset({"help", "history", "reset", "cancel", "settings", "info"})
"""Commands whose answer only the asker needs to see: answered ephemerally."""


def _option_type(arg: Arg) -> object:
    """The Discord option type for an engine argument, with the engine's own limits."""
    if arg.free_text:
        return app_commands.Range[str, 1, int(arg.high)]
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


def add_commands(client: EditBotClient) -> None:
    """Register the slash commands and the message menu: one generated command per public engine command (its
    summary as description, its Args as options), and by hand only /edit, /refine, /ref, /admin and the menu."""
    tree = client.tree

    @tree.command(name="edit")
    @app_commands.describe(
        image="The photo to edit", instruction="What to change, e.g. “make it snow”", **PARAM_DESCRIPTIONS,
        **REFERENCE_DESCRIPTIONS,
    )
    async def edit(
        interaction: discord.Interaction,
        image: discord.Attachment,
        instruction: app_commands.Range[str, 1, 500],
        text_guidance: TextGuidance | None = None,
        image_guidance: ImageGuidance | None = None,
        steps: Steps | None = None,
        seed: Seed | None = None,
        picture2: discord.Attachment | None = None,
        picture3: discord.Attachment | None = None,
    ) -> None:
        """Edit a photo with an instruction (the options are kept for your next edits)."""
        settings = settings_commands(text_guidance, image_guidance, steps, seed)
        references = [picture for picture in (picture2, picture3) if picture is not None]
        await client.answer_edit(interaction, image, instruction, settings, references)

    @tree.command(name="refine")
    @app_commands.describe(instruction="What to change next, e.g. “now add a rainbow”")
    async def refine(interaction: discord.Interaction, instruction: app_commands.Range[str, 1, 500]) -> None:
        """Edit your current image again with a new instruction."""
        # A leading "/" would make the engine read the instruction as a command.
        await client.answer(interaction, [instruction.lstrip("/ ") or instruction])

    @tree.command(name="ref")
    @app_commands.describe(picture=REF_DESCRIPTION)
    async def ref(interaction: discord.Interaction, picture: discord.Attachment | None = None) -> None:
        """Add a reference picture for your next edit (“picture 2”, then “picture 3”); with none, drop those waiting."""
        # Discord has no photo captioned /ref (the engine's way): the picture comes as an attachment.
        if picture is None:
            await client.answer(interaction, ["/ref clear"])
        else:
            await client.answer_edit(interaction, picture, "/ref")

    for info in client.engine.commands:
        if info.name not in WRITTEN_BY_HAND:
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
