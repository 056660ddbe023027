"""Instructions in other languages: run the person's own words untranslated (/asis), or correct the translation
(/meant). Translating happens before every edit (EditCore.instruct, core/understanding.py); the caption says so."""

from __future__ import annotations

from core.commands import Arg, command
from core.conversation.edits import CommandGroup
from core.domain import Conversation, Node
from core.errors import UserError
from core.messages import Send
from core.offload import in_thread
from core.understanding import HeldBack

MEANT_MAX_CHARS = 500
"""The longest English /meant takes (Discord's limit too); CLIP reads far less, which check_length says."""


class Language(CommandGroup):
    position = 35

    @command("asis")
    async def asis_command(self, conversation: Conversation, send: Send) -> None:
        """Run your last instruction untranslated, as you typed it (also one I held back)."""
        if await self.core.run_held_back(conversation, send):
            return
        head = await self._translated_head(conversation, "there is nothing to run as is.")
        parent = await in_thread(self.core.history.node, head.parent_id)
        await self.core.edit(conversation, parent, head.translation.original, conversation.settings, send)

    @command("meant", Arg.text("english", "The English you meant, e.g. make the photo snowy", usage="ENGLISH",
                               max_chars=MEANT_MAX_CHARS))
    async def meant_command(self, conversation: Conversation, send: Send, english: str) -> None:
        """Correct my translation of your last instruction: /meant and the English you meant."""
        head = await self._translated_head(conversation, "just send the English as a new instruction.")
        try:
            await in_thread(self.core.understanding.check_length, english)
        except HeldBack:
            # Kept for /anyway, as its line suggests; the translation is not, as /anyway runs words as they are.
            await in_thread(self.core.history.hold_back, conversation.id, head.parent_id, english)
            raise
        parent = await in_thread(self.core.history.node, head.parent_id)
        await self.core.edit(conversation, parent, english, conversation.settings, send, head.translation)

    async def _translated_head(self, conversation: Conversation, otherwise: str) -> Node:
        head = await self.core.head(conversation)
        if head.translation is None or head.parent_id is None:
            raise UserError(f"Your last instruction was not translated: {otherwise}")
        return head
