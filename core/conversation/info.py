"""/info: the current image's full record, everything needed to reproduce it or to find it in the tree."""

from __future__ import annotations

from datetime import UTC

from core.commands import command
from core.conversation.edits import CommandGroup, is_model_edit
from core.domain import Conversation, Node
from core.editing.families import family_named
from core.messages import Send, TextReply
from core.offload import in_image_thread, in_thread
from core.treeview import TreeView


class ImageRecord(CommandGroup):
    position = 50

    @command("info", on_image=True)
    async def info_command(self, conversation: Conversation, send: Send, node: Node) -> None:
        """Show the current image's full record: size, instruction, every parameter, seed, model, time, parent."""
        # labels as /history shows them and /goto takes them (core.label: a candidate as it would be once picked)
        tree = TreeView.of(await in_thread(self.core.history.tree, node.id), node.id)
        width, height = (await in_image_thread(self.core.image, node.image_hash)).size
        lines = [f"Step {tree.label(node.id)}: {width}×{height} pixels"]
        if node.instruction is None:
            lines.append("The original photo you sent (no instruction, no model).")
        elif not is_model_edit(node):
            lines.append(f"Exact edit: {node.instruction} (no model).")
        else:
            params = node.params
            family = family_named(params.family)
            lines.append(f"Instruction: “{node.instruction}”")
            if node.translation is not None:
                lines.append(f"Translated from {node.translation.language}: “{node.translation.original}”")
            for parameter in family.parameters:
                value = family.value(params, parameter.name)
                if parameter.name == "seed":
                    if family.name == "pix2pix":  # only pix2pix's editor offers schedulers
                        lines.append(f"Scheduler: {params.scheduler}")
                    value = "random" if value is None else value
                elif parameter.kind == "float":
                    value = f"{value:g}"
                elif parameter.kind == "text":
                    value = f"“{value.strip()}”" if value.strip() else "none"
                lines.append(f"{parameter.name.replace('_', ' ').capitalize()}: {value}")
            lines.append(self._model_line(node))
            if node.inputs:
                pictures = ", ".join(f"picture {number} ({digest[:12]})"
                                     for number, digest in enumerate(node.inputs, start=2))
                lines.append(f"Reference pictures: {pictures}")
            if node.seconds is not None:
                lines.append(f"Time taken: {node.seconds:.1f} s")
        lines.append(f"Made: {node.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC")
        if node.parent_id is None:
            lines.append("Parent: none (this is the original)")
        else:
            parent = tree.label(node.parent_id)
            lines.append(f"Parent: {parent} (the original)" if node.parent_id == tree.root_id else f"Parent: {parent}")
        await send(TextReply("\n".join(lines)))

    def _model_line(self, node: Node) -> str:
        """The model that made a model edit: as it always read for the single default model, else its name,
        family and weights source."""
        params, models = node.params, self.core.models
        if len(models.specs) == 1 and not params.model:
            return f"Model: {self.core.model or 'not named'}"
        name = params.model or models.default
        return f"Model: {name} ({params.family}, weights {node.source or 'not recorded'})"
