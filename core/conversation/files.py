"""The full-size file of an image: where a platform shows results smaller or recompressed (Telegram photos, Discord's
upload limit), /file and the Full size button send the stored picture itself, lossless."""

from __future__ import annotations

from core.commands import button, command
from core.conversation.edits import CommandGroup
from core.domain import Conversation, Node
from core.messages import ImageReply, Send
from core.offload import in_image_thread
from core.stored_images import stored_as_png

FILE_BUTTON = "file"
"""The action of the Full size button, which platforms that show results smaller add under them."""


class Files(CommandGroup):
    position = 55

    @command("file", on_image=True)
    async def file_command(self, conversation: Conversation, send: Send, node: Node) -> None:
        """Send the current image as a full-size file (lossless PNG), as it is stored."""
        await self.file_button(conversation, node, send)

    @button(FILE_BUTTON, "⬇ Full size")
    async def file_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        data = await in_image_thread(lambda: stored_as_png(self.core.images.get(node.image_hash)))
        label = await self.core.label(node.id)
        await send(ImageReply(data, f"Full size, lossless: step {label}", node.id, kind="file", label=label))
