"""Regions: edit only part of the picture, named in words. /only and /except set the region instructions edit, /mask
shows it (before any GPU time is spent), /region shows or clears it. The inline form "in the sky: make it a sunset"
confines one instruction (EditCore.instruct reads it)."""

from __future__ import annotations

from core.commands import MAX_ARG_CHARS, Arg, command
from core.conversation.edits import CommandGroup, can_not_find
from core.domain import Conversation, Region
from core.errors import UserError
from core.messages import ImageReply, Send, TextReply
from core.offload import in_thread

WHOLE_PICTURE = "Edits now change the whole picture."
INLINE_HINT = "For one edit only, write “in the sky: make it a sunset” (or “except the person: …”)."


class Regions(CommandGroup):
    position = 25

    @command("only", Arg.text("words", "What to edit, like 'the sky'", usage="WORDS",
                                     max_chars=MAX_ARG_CHARS))
    async def only_command(self, conversation: Conversation, send: Send, words: str) -> None:
        """Edit only the part of the picture these words name (e.g. /only the sky), until /region clear."""
        await self._set(conversation, Region(" ".join(words.split())), send)

    @command("except", Arg.text("words", "What to keep, like 'the person'", usage="WORDS",
                                       max_chars=MAX_ARG_CHARS))
    async def except_command(self, conversation: Conversation, send: Send, words: str) -> None:
        """Edit everything except what these words name (e.g. /except the person), until /region clear."""
        await self._set(conversation, Region(" ".join(words.split()), inverse=True), send)

    @command("mask")
    async def mask_command(self, conversation: Conversation, send: Send) -> None:
        """Show the part of the current image your edits change (tinted), before any edit runs."""
        region = conversation.region
        if region is None:
            raise UserError(f"No region is set: {WHOLE_PICTURE[:-1].lower()}. Choose one with /only WORDS or "
                            "/except WORDS.")
        head = await self.core.head(conversation)
        found, picture = await self.core.find_region(head, region)
        text = f"Edits change {region.describe()} (tinted)." if found else can_not_find(region)
        await send(ImageReply(picture, text, head.id, kind="mask"))

    @command("region", Arg.choice("action", ("clear",), "Go back to whole-picture edits",
                                  labels=("whole-picture edits",)))
    async def region_command(self, conversation: Conversation, send: Send, action: str) -> None:
        """Go back to editing the whole picture."""
        await in_thread(self.core.history.save_region, conversation.id, None)
        await send(TextReply(WHOLE_PICTURE))

    async def _set(self, conversation: Conversation, region: Region, send: Send) -> None:
        """Keep the region for the next instructions; with a picture, show it first, refusing words that name
        nothing in it."""
        head = None if conversation.head_id is None else await in_thread(self.core.history.node,
                                                                         conversation.head_id)
        if head is not None:
            found, picture = await self.core.find_region(head, region)
            if not found:
                await send(ImageReply(picture, can_not_find(region), head.id, kind="mask"))
                raise UserError("The region was not changed: try other words.")
        await in_thread(self.core.history.save_region, conversation.id, region)
        text = (f"Edits now change {region.describe()}: send an instruction. /region clear goes back to the whole "
                f"picture. {INLINE_HINT}")
        if head is None:
            await send(TextReply(text))
        else:
            await send(ImageReply(picture, f"{text} Tinted: what will change.", head.id, kind="mask"))
