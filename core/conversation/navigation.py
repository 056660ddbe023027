"""Navigation: greeting and help, undo and redo, retry, the original photo (the tree itself: core/conversation/trees.py)."""

from __future__ import annotations

from dataclasses import replace

from core.commands import button, command
from core.conversation.captions import caption
from core.conversation.edits import CommandGroup
from core.domain import Conversation, Node
from core.errors import UserError
from core.messages import Send, TextReply
from core.offload import in_thread

TELEGRAM_SHARED_HISTORY = (
    "In a group, each person has their own history, but the group's anonymous admins share one (Telegram does not "
    "say which admin wrote, so they can undo each other's edits), and so does everyone posting as the same channel."
)

GREETING = ("Hi! Send me a photo with an instruction as its caption, like “make it night” or “give him a red suit”, "
            "and I'll edit it. Keep sending instructions to refine the result; /undo and /redo walk your history. "
            "/help lists everything.")
HELP_INTRO = "Send a photo with an instruction, then keep refining with plain text."
# Discord gives the bot no captions and no plain messages: a photo and its instruction come through /edit or the
# message menu, the next instructions through /refine.
GREETINGS = {
    "discord": ("Hi! Use /edit with a photo and an instruction, like “make it night” or “give him a red suit”, or "
                "choose Apps → Edit this image on a message with a picture, and I'll edit it. Keep refining the "
                "result with /refine; /undo and /redo walk your history. /help lists everything."),
}
HELP_INTROS = {
    "discord": ("/edit a photo with an instruction (or choose Apps → Edit this image on a message with a picture), "
                "then keep refining with /refine."),
}


class Navigation(CommandGroup):
    position = 10

    @command("start")
    async def start_command(self, conversation: Conversation, send: Send) -> None:
        """Say hello and explain how to start."""
        await send(TextReply(GREETINGS.get(conversation.key.platform, GREETING)))

    @command("help")
    async def help_command(self, conversation: Conversation, send: Send) -> None:
        """List the commands."""
        lines = [HELP_INTROS.get(conversation.key.platform, HELP_INTRO)]
        if self.core.understanding.translator is not None:
            lines.append("Write in any language: I translate it to English and show what the model was given. "
                         "Translated wrongly? Press ✎ Fix translation under the result, or send /meant and the "
                         "English you meant; /asis runs your own words.")
        lines.append("")
        lines += [f"{info.usage} — {info.summary}" for info in self.core.commands]
        if conversation.key.platform == "telegram":
            lines += ["", TELEGRAM_SHARED_HISTORY]
        await send(TextReply("\n".join(lines)))

    @command("undo")
    async def undo_command(self, conversation: Conversation, send: Send) -> None:
        """Go back to the image before the last edit."""
        await self.undo_button(conversation, await self.core.head(conversation), send)

    @command("redo")
    async def redo_command(self, conversation: Conversation, send: Send) -> None:
        """Go forward again to the edit you undid."""
        await self.redo_button(conversation, await self.core.head(conversation), send)

    @button("undo", "↶ Undo")
    async def undo_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        if node.parent_id is None:
            raise UserError("Nothing to undo: this is the original photo.")
        parent = await self.core.move(conversation, node.parent_id)
        await send(await self.core.show(parent, f"Undone. Now at: {caption(parent)}"))

    @button("redo", "↷ Redo")
    async def redo_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        target = await self.core.redo_target(node)
        if target is None:
            raise UserError("Nothing to redo.")
        target = await self.core.move(conversation, target.id)
        await send(await self.core.show(target, f"Redone. Now at: {caption(target)}"))

    @command("retry")
    async def retry_command(self, conversation: Conversation, send: Send) -> None:
        """Run the last edit again with its own settings and a new seed (the same as the Retry button)."""
        await self.retry_button(conversation, await self.core.head(conversation), send)

    @button("retry", "🎲 Retry")
    async def retry_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        # The result's own settings (what its caption says), with a new seed: a sibling to compare with.
        await self.core.rerun(conversation, node, replace(node.params or conversation.settings, seed=None), send)

    @command("original")
    async def original_command(self, conversation: Conversation, send: Send) -> None:
        """Go back to the original photo (your edits stay in /history)."""
        head = await self.core.head(conversation)
        [root, *_] = await in_thread(self.core.history.path, head.id)
        root = await self.core.move(conversation, root.id)
        await send(await self.core.show(root, "Original photo"))
