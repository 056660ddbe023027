"""Navigation: greeting and help, undo and redo, the history and jumping in it, retry, the original photo."""

from __future__ import annotations

from dataclasses import replace

from core import pictures
from core.commands import Arg, button, command
from core.conversation.edits import CommandGroup, caption, short
from core.domain import Conversation, Node
from core.errors import UserError
from core.images import encode_png
from core.messages import ImageReply, Send, TextReply
from core.offload import in_image_thread, in_thread

# The newest entries a /history contact sheet shows (the original photo always comes first).
SHEET_ENTRIES = 24
GOTO_MAX = 10_000
"""The highest step number /goto takes before looking at the history (Discord's limit too)."""


class Navigation(CommandGroup):
    position = 10

    @command("start")
    async def start_command(self, conversation: Conversation, send: Send) -> None:
        """Say hello and explain how to start."""
        await send(TextReply(
            "Hi! Send me a photo with an instruction as its caption, like “make it night” or “give him a red suit”, "
            "and I'll edit it. Keep sending instructions to refine the result; /undo and /redo walk your history. "
            "/help lists everything."
        ))

    @command("help")
    async def help_command(self, conversation: Conversation, send: Send) -> None:
        """List the commands."""
        lines = ["Send a photo with an instruction, then keep refining with plain text.",
                 "To change only part of it: “in the sky: make it a sunset” (or “except the person: …”), "
                 "or /only WORDS for every edit until /region clear.", ""]
        lines += [f"{info.usage} — {info.summary}" for info in self.core.commands]
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

    @command("history")
    async def history_command(self, conversation: Conversation, send: Send) -> None:
        """Show the edits from the original photo to here, numbered for /goto."""
        line = await self.core.line(conversation)
        head_id = conversation.head_id
        rows = []
        for number, node in enumerate(line):
            mark = "  ◀ you are here" if node.id == head_id else ""
            rows.append(f"{number}. {short(node)}{mark}")
        await send(TextReply("Your edits (use /goto N):\n" + "\n".join(rows)))
        sheet = await self._contact_sheet(line, head_id)
        await send(ImageReply(sheet, "Your history: the numbers are the ones /goto takes.", head_id, kind="history"))

    async def _contact_sheet(self, line: list[Node], head_id: int) -> bytes:
        numbered = list(enumerate(line))
        if len(numbered) > SHEET_ENTRIES:
            numbered = numbered[:1] + numbered[-(SHEET_ENTRIES - 1):]
        branches = {}
        for _, node in numbered:
            children = [child for child in await in_thread(self.core.history.children, node.id) if child.visit > 0]
            branches[node.id] = max(len(children) - 1, 0)

        def draw() -> bytes:
            entries = [
                pictures.SheetEntry(number, self.core.image(node.image_hash), short(node).strip("“”"),
                                    node.id == head_id, branches[node.id])
                for number, node in numbered
            ]
            return encode_png(pictures.contact_sheet(entries))

        return await in_image_thread(draw)

    @command("goto", Arg.whole("n", 0, GOTO_MAX, "The step number, as listed by /history", upper="last_step"))
    async def goto_command(self, conversation: Conversation, send: Send, n: int) -> None:
        """Jump to step N of /history."""
        line = await self.core.line(conversation)
        node = await self.core.move(conversation, line[n].id)
        await send(await self.core.show(node, f"Step {n}: {caption(node)}"))

    async def last_step(self, conversation: Conversation) -> int:
        return len(await self.core.line(conversation)) - 1

    @command("retry")
    async def retry_command(self, conversation: Conversation, send: Send) -> None:
        """Run the last edit again from the same image, with your current settings and a new seed."""
        head = await self.core.head(conversation)
        await self.core.rerun(conversation, head, replace(conversation.settings, seed=None), send)

    @button("retry", "🎲 Retry")
    async def retry_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        # The button under a result repeats that result's own settings, with a new seed.
        await self.core.rerun(conversation, node, replace(node.params or conversation.settings, seed=None), send)

    @command("original")
    async def original_command(self, conversation: Conversation, send: Send) -> None:
        """Go back to the original photo (your edits stay in /history)."""
        line = await self.core.line(conversation)
        root = await self.core.move(conversation, line[0].id)
        await send(await self.core.show(root, "Original photo"))
