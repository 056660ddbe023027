"""Settings and tuning: show and set the edit settings, reset them, cancel an edit, and "stronger"/"weaker".

Which settings there are, their ranges, and what Stronger/Weaker change come from the family of the conversation's
model (core.editing.families): text and image guidance for InstructPix2Pix, one guidance for FLUX, Qwen's true CFG
scale and negative prompt, steps and seed for all."""

from __future__ import annotations

import re

from core.commands import Arg, button, command
from core.conversation.choices import describe
from core.conversation.edits import CommandGroup
from core.domain import (
    IMAGE_GUIDANCE_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    TEXT_GUIDANCE_RANGE,
    Conversation,
    EditParams,
    Node,
)
from core.editing.families import Family, family_named
from core.errors import BadParams
from core.messages import Send, TextReply
from core.offload import in_thread

# The command that sets each declared parameter, as /settings names it.
SETTING_COMMANDS = {"text_guidance": "text", "image_guidance": "image", "guidance": "guidance",
                    "true_cfg_scale": "guidance", "negative_prompt": "negative", "steps": "steps", "seed": "seed"}
NO_NEGATIVE = "off"
"""What /negative takes to go back to the family's default negative prompt."""

# Plain-language tuning: a message that is just one of these re-runs the last edit with more or less change.
MORE_CHANGE = frozenset({
    "stronger", "more", "more change", "more changes", "change it more", "even more", "not enough", "do it more",
    "bolder", "follow the instruction more", "more effect",
})
LESS_CHANGE = frozenset({
    "weaker", "less", "less change", "fewer changes", "change it less", "subtler", "more subtle", "too much",
    "softer", "gentler", "keep more of the photo", "keep more of the original", "closer to the original",
    "less effect",
})
_SOFTENERS = re.compile(r"^(?:please |a bit |a little |slightly |much |way |a lot )+|(?: please)$")


def tuning_direction(text: str) -> int:
    """+1 for "more change" phrases, -1 for "less change" ones, 0 for anything else (an instruction)."""
    phrase = _SOFTENERS.sub("", re.sub(r"[^\w\s]", "", text.lower()).strip()).strip()
    return 1 if phrase in MORE_CHANGE else -1 if phrase in LESS_CHANGE else 0


class Tuning(CommandGroup):
    position = 20

    @command("reset")
    async def reset_command(self, conversation: Conversation, send: Send) -> None:
        """Put the photo aside and restore the default settings; send a new photo to start again."""
        await in_thread(self.core.history.move_head, conversation.id, None)
        await in_thread(self.core.history.save_settings, conversation.id, self.core.defaults)
        await send(TextReply("Done: settings are back to defaults. Send a new photo to start again; "
                             "/photos lists your earlier ones."))

    @command("settings")
    async def settings_command(self, conversation: Conversation, send: Send) -> None:
        """Show your current edit settings."""
        settings = conversation.settings
        family = family_named(settings.family)
        lines = []
        for parameter in family.parameters:
            value = family.value(settings, parameter.name)
            shown = {None: "random"}.get(value, value) if parameter.name == "seed" else value
            if parameter.kind == "float":
                shown = f"{value:g}"
            elif parameter.kind == "text":
                shown = f"“{value.strip()}”" if value.strip() else "none"
            name = parameter.name.replace("_", " ").capitalize()
            where = f"/{SETTING_COMMANDS[parameter.name]}"
            meaning = "" if parameter.name in ("steps", "seed") else f"{parameter.meaning}; "
            lines.append(f"{name}: {shown} ({meaning}{where})")
        lines.append(f"Region: {conversation.region.describe() if conversation.region else 'the whole picture'} "
                     "(/only, /except, /region clear)")
        models = self.core.models
        if len(models.specs) > 1 or settings.model:
            name = settings.model or models.default
            lines.append(f"Model: {name} ({family.name}; /model)")
        if family.takes_references:
            lines.append(f"Reference pictures: {len(conversation.references)} waiting (/ref)")
        await send(TextReply("\n".join(lines)))

    @command("text", Arg.number("x", *TEXT_GUIDANCE_RANGE, "How strongly to follow the instruction"))
    async def text_command(self, conversation: Conversation, send: Send, x: float) -> None:
        """Set text guidance: how strongly to follow the instruction (default 7.5)."""
        await self._set(conversation, send, text_guidance=x)

    @command("image", Arg.number("x", *IMAGE_GUIDANCE_RANGE, "How much of the photo to keep"))
    async def image_command(self, conversation: Conversation, send: Send, x: float) -> None:
        """Set image guidance: how much of the photo to keep (default 1.5)."""
        await self._set(conversation, send, image_guidance=x)

    @command("guidance", Arg.number("x", 1.0, 20.0, "How strongly to follow the instruction"))
    async def guidance_command(self, conversation: Conversation, send: Send, x: float) -> None:
        """Set the guidance of a model with one (FLUX's guidance, Qwen's true CFG scale)."""
        family = family_named(conversation.settings.family)
        tunable = family.tunable()
        if len(tunable) != 1:
            raise BadParams(f"{family.name} has text and image guidance: set them with /text and /image.")
        await self._set(conversation, send, **{tunable[0].name: x})

    @command("negative", Arg.text("words", "What the picture should not look like, or 'off'", usage="WORDS|off",
                                  max_chars=500))
    async def negative_command(self, conversation: Conversation, send: Send, words: str) -> None:
        """Set a negative prompt (Qwen-Image-Edit): what the picture should not look like; 'off' clears it."""
        family = family_named(conversation.settings.family)
        if not any(parameter.name == "negative_prompt" for parameter in family.parameters):
            raise BadParams(f"{family.name} takes no negative prompt; /settings lists what it takes.")
        default = family.parameter("negative_prompt").default
        await self._set(conversation, send, negative_prompt=default if words.lower() == NO_NEGATIVE else words)

    @command("steps", Arg.whole("n", *STEPS_RANGE, "Denoising steps: more is slower and finer"))
    async def steps_command(self, conversation: Conversation, send: Send, n: int) -> None:
        """Set the number of denoising steps: more is slower and finer (default 20)."""
        await self._set(conversation, send, steps=n)

    @command("seed", Arg.whole("n", *SEED_RANGE, "A number to repeat results, or 'random'", usage="N|random",
                               words=(("random", None),)))
    async def seed_command(self, conversation: Conversation, send: Send, n: int | None) -> None:
        """Pin the random seed to repeat results, or go back to a random one."""
        await self._set(conversation, send, seed=n)

    async def _set(self, conversation: Conversation, send: Send, **change) -> None:
        """Set declared parameters (BadParams with one line for one this family lacks or a value out of range)."""
        family = family_named(conversation.settings.family)
        settings = conversation.settings
        for name, value in change.items():
            if name not in {parameter.name for parameter in family.parameters}:
                label = name.replace("_", " ")
                raise BadParams(f"{family.name} has no {label}; /settings lists what it takes.")
            settings = family.with_value(settings, name, value)
        settings = family.validated(settings.validated())
        await in_thread(self.core.history.save_settings, conversation.id, settings)
        await send(TextReply(f"Settings: {describe(settings)}."))

    @command("cancel")
    async def cancel_command(self, conversation: Conversation, send: Send) -> None:
        """Cancel your edit that is waiting or running."""
        cancelled = self.core.queue.cancel(conversation.id)
        await send(TextReply("Cancelling your edit." if cancelled else "You have no edit on the way."))

    @button("stronger", "➕ Stronger")
    async def stronger_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        await self.tune(conversation, node, +1, send)

    @button("weaker", "➖ Weaker")
    async def weaker_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        await self.tune(conversation, node, -1, send)

    async def tune(self, conversation: Conversation, node: Node, direction: int, send: Send) -> None:
        """Re-run node's edit (its own model) with more (direction +1) or less (-1) change, same seed: each of its
        family's tunable values moves by what the family declares. The new values become the conversation's when
        it still uses that model."""
        base = node.params or conversation.settings
        family = family_named(base.family)
        tuned = nudged(family, base, direction)
        settings = conversation.settings
        if (settings.family, settings.model) == (base.family, base.model):
            for parameter in family.tunable():
                settings = family.with_value(settings, parameter.name, family.value(tuned, parameter.name))
            await in_thread(self.core.history.save_settings, conversation.id, settings)
        change = "More change" if direction > 0 else "Less change"
        values = ", ".join(f"{parameter.name.replace('_', ' ')} {family.value(tuned, parameter.name):g}"
                           for parameter in family.tunable())
        await send(TextReply(f"{change}: now {values} (same seed)."))
        await self.core.rerun(conversation, node, tuned, send)


def nudged(family: Family, params: EditParams, direction: int) -> EditParams:
    """params with every tunable value moved one Stronger (+1) or Weaker (-1) step, kept in range."""
    for parameter in family.tunable():
        value = family.value(params, parameter.name) + direction * parameter.stronger
        params = family.with_value(params, parameter.name, parameter.clamp(value))
    return params
