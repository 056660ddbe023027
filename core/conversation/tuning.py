"""Settings and tuning: show and set the edit settings, reset them, cancel an edit, and "stronger"/"weaker"."""

from __future__ import annotations

import re
from dataclasses import replace

from core.commands import Arg, button, command
from core.conversation.edits import CommandGroup, clamp
from core.domain import (
    IMAGE_GUIDANCE_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    TEXT_GUIDANCE_RANGE,
    Conversation,
    Node,
)
from core.messages import Send, TextReply
from core.offload import in_thread

# What the Stronger / Weaker buttons change, per press. Documented in the README.
STRONGER_TEXT_STEP = 1.5
STRONGER_IMAGE_STEP = 0.25

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
        seed = "random" if settings.seed is None else settings.seed
        await send(TextReply(
            f"Text guidance: {settings.text_guidance:g} (how strongly to follow the instruction; /text)\n"
            f"Image guidance: {settings.image_guidance:g} (how much of the photo to keep; /image)\n"
            f"Steps: {settings.steps} (/steps)\n"
            f"Seed: {seed} (/seed)\n"
            f"Region: {conversation.region.describe() if conversation.region else 'the whole picture'} "
            "(/only, /except, /region clear)"
        ))

    @command("text", Arg.number("x", *TEXT_GUIDANCE_RANGE, "How strongly to follow the instruction"))
    async def text_command(self, conversation: Conversation, send: Send, x: float) -> None:
        """Set text guidance: how strongly to follow the instruction (default 7.5)."""
        await self._set(conversation, send, text_guidance=x)

    @command("image", Arg.number("x", *IMAGE_GUIDANCE_RANGE, "How much of the photo to keep"))
    async def image_command(self, conversation: Conversation, send: Send, x: float) -> None:
        """Set image guidance: how much of the photo to keep (default 1.5)."""
        await self._set(conversation, send, image_guidance=x)

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
        settings = replace(conversation.settings, **change).validated()
        await in_thread(self.core.history.save_settings, conversation.id, settings)
        await send(TextReply(f"Settings: {settings.describe()}."))

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
        """Re-run node's edit with more (direction +1) or less (-1) change, same seed; keep the new values."""
        base = node.params or conversation.settings
        tuned = replace(
            base,
            text_guidance=clamp(base.text_guidance + direction * STRONGER_TEXT_STEP, TEXT_GUIDANCE_RANGE),
            image_guidance=clamp(base.image_guidance - direction * STRONGER_IMAGE_STEP, IMAGE_GUIDANCE_RANGE),
        )
        await in_thread(
            self.core.history.save_settings,
            conversation.id,
            replace(conversation.settings, text_guidance=tuned.text_guidance, image_guidance=tuned.image_guidance),
        )
        change = "More change" if direction > 0 else "Less change"
        await send(TextReply(f"{change}: now text guidance {tuned.text_guidance:g}, "
                             f"image guidance {tuned.image_guidance:g} (same seed)."))
        await self.core.rerun(conversation, node, tuned, send)
