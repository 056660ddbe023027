"""Instructions in other languages: run the person's own words untranslated (/asis), or correct the translation
(/meant, a reply in English to a translated result, or its Fix translation button). Translating happens before every
edit (EditCore.instruct, core/understanding.py); the caption says so."""

from __future__ import annotations

from core.commands import Arg, button, command
from core.conversation.captions import quoted
from core.conversation.choices import runnable
from core.conversation.edits import CommandGroup, EditCore
from core.domain import Conversation, EditParams, Node
from core.errors import UserError
from core.hints import non_english
from core.messages import Send, TextReply
from core.offload import in_thread
from core.understanding import HeldBack

MEANT_MAX_CHARS = 500
"""The longest English /meant takes (Discord's limit too); CLIP reads far less, which check_length says."""

FIX_TRANSLATION = "meant"
"""The action of the Fix translation button under a translated result (Discord answers it with a box)."""


class Language(CommandGroup):
    position = 35

    @command("asis")
    async def asis_command(self, conversation: Conversation, send: Send) -> None:
        """Run your last instruction untranslated, as you typed it (also one I held back)."""
        if await self.core.run_held_back(conversation, send):
            return
        head = await self._translated_head(conversation, "there is nothing to run as is.")
        parent = await in_thread(self.core.history.node, head.parent_id)
        await self.core.edit(conversation, parent, head.translation.original, _same_edit(self.core, head), send,
                             region=head.region, references=head.inputs)

    @command("meant", Arg.text("english", "The English you meant, e.g. make the photo snowy", usage="ENGLISH",
                               max_chars=MEANT_MAX_CHARS))
    async def meant_command(self, conversation: Conversation, send: Send, english: str) -> None:
        """Correct my translation of your last instruction: /meant and the English you meant."""
        head = await self._translated_head(conversation, "just send the English as a new instruction.")
        await self.correct(conversation, head, english, send)

    @button(FIX_TRANSLATION, "✎ Fix translation")
    async def fix_translation_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        """Say how to correct this result's translation on this front-end."""
        if node.translation is None or node.parent_id is None:
            raise UserError("That edit was not translated.")
        read = (f"I read {quoted(node.translation.original)} ({node.translation.language}) as "
                f"{quoted(node.instruction)}.")
        if conversation.key.platform == "telegram":
            how = "Reply to that picture with the English you meant, and I make the edit again from the picture before it."
        elif node.id == conversation.head_id:
            how = "Send /meant and the English you meant, and I make the edit again from the picture before it."
        else:
            how = f"Send /goto {await self.core.label(node.id)}, then /meant and the English you meant."
        await send(TextReply(f"{read} {how}"))

    async def corrects(self, node: Node, reply: str) -> bool:
        """Whether a reply to `node` is the English the person meant for it rather than a new instruction on it: it
        is when the node is a translated edit and the reply is in English. Whoever wrote the instruction in French
        and answers its result in English is correcting the translation; a reply in French still edits the result,
        and replies to results typed in English are instructions as ever."""
        if node.translation is None or node.parent_id is None:
            return False
        return await in_thread(non_english, reply) is None

    async def correct(self, conversation: Conversation, node: Node, english: str, send: Send, *,
                      replied: bool = False) -> None:
        """Make the translated edit `node` again, from the picture before it, with the English the person meant.
        replied: the correction came as a plain reply, so say how it was taken and how to edit the result instead."""
        if node.translation is None or node.parent_id is None:
            raise UserError("That edit was not translated: send the English as a new instruction.")
        english = " ".join(english.split())
        try:
            await in_thread(self.core.understanding.check_length, english)
        except HeldBack:
            # Kept for /anyway, as its line suggests; the translation is not, as /anyway runs words as they are.
            await in_thread(self.core.history.hold_back, conversation.id, node.parent_id, english)
            raise
        if replied:
            instead = ("send it without replying" if node.id == conversation.head_id
                       else f"send /goto {await self.core.label(node.id)}, then it without replying")
            await send(TextReply(f"Taking {quoted(english)} as the English you meant by "
                                 f"{quoted(node.translation.original)}: the same edit again, from the picture before it. "
                                 f"(A new edit of that result? {instead}.)"))
        parent = await in_thread(self.core.history.node, node.parent_id)
        await self.core.edit(conversation, parent, english, _same_edit(self.core, node), send, node.translation,
                             region=node.region, references=node.inputs)

    async def _translated_head(self, conversation: Conversation, otherwise: str) -> Node:
        head = await self.core.head(conversation)
        if head.translation is None or head.parent_id is None:
            raise UserError(f"Your last instruction was not translated: {otherwise}")
        return head


def _same_edit(core: EditCore, node: Node) -> EditParams:
    """The settings a translated edit ran with, its model, family and seed included (whatever the conversation
    switched to since), so only the words change; a model the operator has since disabled gives way to the default."""
    return runnable(core.models, node.params)
