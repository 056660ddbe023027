"""Exact edits: rotate, flip and crop done losslessly without the model, recorded as nodes like any edit."""

from __future__ import annotations

from PIL import Image, ImageOps

from core.commands import Arg, command
from core.conversation.captions import caption
from core.conversation.edits import CommandGroup, EditCore
from core.domain import Conversation, NewNode, Node
from core.messages import Send
from core.offload import in_image_thread, in_thread

TRANSPOSES = {
    "rotate 90": Image.Transpose.ROTATE_270,
    "rotate 180": Image.Transpose.ROTATE_180,
    "rotate 270": Image.Transpose.ROTATE_90,
    "flip h": Image.Transpose.FLIP_LEFT_RIGHT,
    "flip v": Image.Transpose.FLIP_TOP_BOTTOM,
}


async def exact_edit(core: EditCore, conversation: Conversation, parent: Node, operation: str, send: Send) -> Node:
    """An exact operation on parent, recorded as a child (and the new head) like any edit."""

    await core.require_room(conversation.key.person)

    def apply() -> tuple[str, int]:
        image = core.image(parent.image_hash)
        if operation == "crop square":
            side = min(image.size)
            image = ImageOps.fit(image, (side, side), method=Image.Resampling.NEAREST)
        else:
            image = image.transpose(TRANSPOSES[operation])
        return core.store(image)

    digest, size = await in_image_thread(apply)
    node = await in_thread(core.history.add_node, NewNode(conversation.id, parent.id, digest, operation,
                                                          stored_bytes=size))
    await send(await core.show(node, caption(node)))
    return node


class ExactEdits(CommandGroup):
    position = 40

    @command("rotate", Arg.choice("angle", ("90", "180", "270"), "Clockwise"))
    async def rotate_command(self, conversation: Conversation, send: Send, angle: str) -> None:
        """Rotate the image clockwise, exactly (no model)."""
        await exact_edit(self.core, conversation, await self.core.head(conversation), f"rotate {angle}", send)

    @command("flip", Arg.choice("direction", ("h", "v"), "Which way to mirror",
                                     labels=("left to right", "top to bottom")))
    async def flip_command(self, conversation: Conversation, send: Send, direction: str) -> None:
        """Mirror the image left to right (h) or top to bottom (v), exactly."""
        await exact_edit(self.core, conversation, await self.core.head(conversation), f"flip {direction}", send)

    @command("crop", Arg.choice("shape", ("square",), "The shape to crop to"))
    async def crop_command(self, conversation: Conversation, send: Send, shape: str) -> None:
        """Crop the image to a centred square, exactly."""
        await exact_edit(self.core, conversation, await self.core.head(conversation), f"crop {shape}", send)
