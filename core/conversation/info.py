"""/info: the current image's full record, everything needed to reproduce it or to find it in the tree."""

from __future__ import annotations

from datetime import UTC

from core.commands import command
from core.conversation.edits import CommandGroup, is_model_edit
from core.domain import Conversation
from core.messages import Send, TextReply
from core.offload import in_image_thread


class ImageRecord(CommandGroup):
    position = 50

    @command("info")
    async def info_command(self, conversation: Conversation, send: Send) -> None:
        """Show the current image's full record: size, instruction, every parameter, seed, model, time, parent."""
        node = await self.core.head(conversation)
        width, height = (await in_image_thread(self.core.image, node.image_hash)).size
        lines = [f"Image #{node.id}: {width}×{height} pixels"]
        if node.instruction is None:
            lines.append("The original photo you sent (no instruction, no model).")
        elif not is_model_edit(node):
            lines.append(f"Exact edit: {node.instruction} (no model).")
        else:
            params = node.params
            lines.append(f"Instruction: “{node.instruction}”")
            if node.translation is not None:
                lines.append(f"Translated from {node.translation.language}: “{node.translation.original}”")
            lines += [
                f"Text guidance: {params.text_guidance:g}",
                f"Image guidance: {params.image_guidance:g}",
                f"Steps: {params.steps}",
                f"Scheduler: {params.scheduler}",
                f"Seed: {'random' if params.seed is None else params.seed}",
                f"Model: {self.core.model or 'not named'}",
            ]
            if node.seconds is not None:
                lines.append(f"Time taken: {node.seconds:.1f} s")
        lines.append(f"Made: {node.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
        lines.append("Parent: none (this is the original)" if node.parent_id is None else f"Parent: #{node.parent_id}")
        await send(TextReply("\n".join(lines)))
