"""Choosing the model (/model) and giving it reference pictures (/ref), for the models the operator enabled
(EDITBOT_MODELS, core.editing.registry).

A photo captioned /ref, i.e. Incoming(key, text="/ref", image=bytes), adds a reference picture to the next edit; the
instruction calls them "picture 2", "picture 3"... (the photo being edited is picture 1). A plain photo still starts
a new tree. The references wait in the conversation until a model edit takes them.
"""

from __future__ import annotations

import re
from dataclasses import replace

from core.commands import Arg, command, split_command
from core.conversation.choices import describe, refuse_references
from core.conversation.edits import CommandGroup
from core.domain import Conversation
from core.editing.families import Family
from core.images import load_untrusted
from core.messages import Send, TextReply
from core.offload import in_image_thread, in_thread

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")


def is_reference(text: str | None) -> bool:
    """Whether a photo's caption makes it a reference picture (/ref) rather than a new photo to edit."""
    parsed = split_command((text or "").strip())
    return parsed is not None and parsed == ("ref", "")


def pictures_in(family: Family) -> str:
    """How many pictures a family takes, in words."""
    if family.pictures == 1:
        return "1 picture"
    return f"up to {family.pictures} pictures (your photo and {family.pictures - 1} references with /ref)"


class Models(CommandGroup):
    position = 25

    @command("model", Arg.word("name", MODEL_NAME, "A model's name, as /model lists them", usage="NAME",
                               default=None))
    async def model_command(self, conversation: Conversation, send: Send, name: str | None) -> None:
        """List the models you can choose, or switch to one: your next edit uses it; your tree goes on."""
        models = self.core.models
        current = conversation.settings.model or models.default
        if name is None:
            lines = ["Models (/model NAME switches; your next edit uses it):"]
            for spec in models.specs.values():
                marks = [f"{spec.family}, {pictures_in(models.family(spec.name))}"]
                if spec.name == current:
                    marks.append("current")
                elif models.loads_here and models.is_loaded(spec.name):
                    marks.append("loaded")
                lines.append(f"• {spec.name} — {' · '.join(marks)}")
            await send(TextReply("\n".join(lines)))
            return
        spec = models.spec(name)  # BadParams naming the enabled ones for an unknown name
        if spec.name == current:
            await send(TextReply(f"You are already using {spec.name} ({spec.family})."))
            return
        family = models.family(spec.name)
        settings = replace(family.defaults(), model="" if spec.name == models.default else spec.name,
                           seed=conversation.settings.seed)
        await in_thread(self.core.history.save_settings, conversation.id, settings)
        switched = (f"Switched to {spec.name} ({spec.family}, {pictures_in(family)}): your next edit uses it and "
                    f"your tree goes on. Settings: {describe(settings)}.")
        lines = [switched]
        if conversation.references and len(conversation.references) > family.pictures - 1:
            await in_thread(self.core.history.save_references, conversation.id, ())
            lines.append(f"The reference pictures waiting were dropped: {spec.name} takes "
                         f"{family.pictures - 1 or 'no'} reference pictures.")
        if models.loads_here and not models.is_loaded(spec.name):
            lines.append("It is not loaded yet, so that edit will take a while longer while it loads.")
        await send(TextReply("\n".join(lines)))

    @command("ref", Arg("what", str, "clear: drop the reference pictures waiting", "clear", choices=("clear",),
                        labels=("drop the reference pictures waiting",), default=None))
    async def ref_command(self, conversation: Conversation, send: Send, what: str | None) -> None:
        """Send a photo captioned /ref to give your next edit a reference picture (picture 2, 3...); /ref clear."""
        waiting = len(conversation.references)
        if what == "clear":
            await in_thread(self.core.history.save_references, conversation.id, ())
            await send(TextReply("No reference pictures now." if waiting else "There were no reference pictures."))
            return
        family = self.core.models.family(conversation.settings.model or self.core.models.default)
        refuse_references(family, 1, self.core.models)
        await send(TextReply(f"Send a photo with the caption /ref to add a reference picture for your next edit; "
                             f"the instruction calls them “picture 2”, “picture 3”. {waiting} waiting now; "
                             "/ref clear drops them."))

    async def add_reference(self, conversation: Conversation, data: bytes, send: Send) -> None:
        """A photo captioned /ref: keep it for the next edit, if the conversation's model takes one more."""
        family = self.core.models.family(conversation.settings.model or self.core.models.default)
        refuse_references(family, len(conversation.references) + 1, self.core.models)
        person = conversation.key.person
        await self.core.require_room(person)
        intake = await in_image_thread(load_untrusted, data, **self.core.intake_limits)
        digest, size = await in_image_thread(self.core.store, intake.image)
        await in_thread(self.core.history.note_reference, digest, size)
        saved = await in_thread(self.core.history.save_references, conversation.id,
                                (*conversation.references, digest))
        number = len(saved.references) + 1
        if intake.notice:
            await send(TextReply(intake.notice))
        if conversation.head_id is None:
            where = "Now send the photo to edit (picture 1) with your instruction"
        else:
            where = "Your next instruction edits the current image (picture 1)"
        await send(TextReply(f"Reference picture {number} added. {where}; call this one “picture {number}”, e.g. "
                             f"“put the hat from picture {number} on her”."))
