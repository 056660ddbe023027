"""Pictures and grids: before/after, the guidance sweep and seed variations with /pick, squash, and /anyway."""

from __future__ import annotations

import random
from dataclasses import replace

from core import pictures
from core.commands import Arg, button, command
from core.conversation.captions import SHORT_INSTRUCTION_CHARS, caption, quoted, short
from core.conversation.edits import CommandGroup, is_exact_edit, is_model_edit
from core.conversation.exact import exact_edit
from core.domain import Conversation, EditJob, EditParams, Node
from core.editing.families import family_named
from core.errors import UserError
from core.images import encode_png
from core.messages import Button, ImageReply, Press, Send, TextReply
from core.offload import in_image_thread, in_thread
from core.understanding import HeldBack

# The /sweep grid around the current settings: 3x3 over a family's two tunable parameters (rows the first, e.g. text
# guidance, columns the second, e.g. image guidance), or 1x9 over its one; each parameter's spacing is declared.
SWEEP_SIDE = 3
SWEEP_CELLS = SWEEP_SIDE * SWEEP_SIDE
MAX_VARIATIONS = 4
MAX_CELLS = max(SWEEP_CELLS, MAX_VARIATIONS)
"""The most cells a grid has: the highest number /pick takes."""


def estimate(head: Node, cells: int) -> str:
    """Roughly how long a grid takes, from the time head's own edit took (measured on this machine): at most one
    edit's time per cell, as a batch never costs more than running its cells one after another."""
    if head.seconds is None or head.seconds <= 0:
        return "it takes longer than one edit"
    seconds = head.seconds * cells
    return f"up to about {seconds:.0f} s ({cells} × the {head.seconds:.1f} s your edit took)" if seconds >= 1 \
        else "about a second"


def cell_label(params: EditParams) -> str:
    """What a grid cell says under it: its tunable values and its seed."""
    family = family_named(params.family)
    values = [f"{parameter.label} {family.value(params, parameter.name):g}" for parameter in family.tunable()]
    return " · ".join([*values, f"seed {params.seed}"])


class Grids(CommandGroup):
    position = 30

    @command("compare", on_image=True)
    async def compare_command(self, conversation: Conversation, send: Send, node: Node) -> None:
        """Show the current image beside the one it was made from."""
        await self.compare_button(conversation, node, send)

    @button("compare", "⇆ Compare")
    async def compare_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        if node.parent_id is None:
            raise UserError("This is the original photo: there is nothing to compare yet.")
        parent = await in_thread(self.core.history.node, node.parent_id)

        def draw() -> bytes:
            before, after = self.core.fetcher(parent.image_hash), self.core.fetcher(node.image_hash)
            return encode_png(pictures.compare(before, after, caption=short(node)))

        await send(ImageReply(await in_image_thread(draw), f"Before and after: {short(node)}", node.id,
                              kind="compare"))

    @command("sweep")
    async def sweep_command(self, conversation: Conversation, send: Send) -> None:
        """Re-render your last edit over a grid of its model's guidance (3x3 over two, 1x9 over one), to pick."""
        head = await self.core.last_edit(conversation, "/sweep")
        settings = conversation.settings
        if (settings.family, settings.model) != (head.params.family, head.params.model):
            settings = head.params  # the last edit was another model's: sweep around its own values
        family = family_named(settings.family)
        tunable = family.tunable()[:2]
        if not tunable:
            raise UserError(f"{family.name} has no guidance to sweep: try /variations.")

        def spread(parameter, side: int) -> list[float]:
            centre = family.value(settings, parameter.name)
            offsets = range(-(side // 2), side // 2 + 1)
            return [parameter.clamp(centre + offset * parameter.sweep) for offset in offsets]

        if len(tunable) == 2:
            rows, columns = spread(tunable[0], SWEEP_SIDE), spread(tunable[1], SWEEP_SIDE)
            values = [(row, column) for row in rows for column in columns]
            row_labels = [f"{tunable[0].label} {value:g}" for value in rows]
            column_labels = [f"{tunable[1].label} {value:g}" for value in columns]
        else:
            values = [(value,) for value in spread(tunable[0], SWEEP_CELLS)]
            row_labels, column_labels = [], [f"{tunable[0].label} {value:g}" for (value,) in values]
        variants = []
        for cell in values:
            variant = replace(settings, seed=head.params.seed)
            for parameter, value in zip(tunable, cell):
                variant = family.with_value(variant, parameter.name, value)
            variants.append(variant)
        await self._offer(conversation, head, tuple(variants), send, columns=len(column_labels),
                          title=f"{quoted(head.instruction, SHORT_INSTRUCTION_CHARS)} · seed {head.params.seed}",
                          column_labels=column_labels, row_labels=row_labels)

    @command("variations", Arg.whole("n", 1, MAX_VARIATIONS, f"How many new seeds to try (default {MAX_VARIATIONS})",
                                     default=MAX_VARIATIONS))
    async def variations_command(self, conversation: Conversation, send: Send, n: int) -> None:
        """Render your last edit with N new seeds (up to 4) at once, to pick the one you like."""
        head = await self.core.last_edit(conversation, "/variations")
        variants = tuple(replace(head.params, seed=seed) for seed in random.sample(range(2**32), n))
        await self._offer(conversation, head, variants, send, columns=min(n, 2),
                          title=quoted(head.instruction, SHORT_INSTRUCTION_CHARS))

    async def _offer(self, conversation: Conversation, head: Node, variants: tuple[EditParams, ...], send: Send,
                     *, columns: int, title: str, column_labels=(), row_labels=()) -> None:
        """Render variants of head's edit in one batch, record them as candidates (and as the grid /pick chooses
        from), and show them as a numbered grid with a button for each."""
        parent = await in_thread(self.core.history.node, head.parent_id)
        await self.core.claim(conversation, parent)
        job = EditJob(conversation.id, conversation.key.person, parent.id, parent.image_hash, head.instruction,
                      variants[0], variants, translation=head.translation,
                      region=head.region, references=head.inputs)
        await send(TextReply(f"Rendering {len(variants)} versions in one batch: {estimate(head, len(variants))}. "
                             "/cancel stops it."))
        candidates = await self.core.run(job, send, what=f"{len(variants)} versions together")
        await in_thread(self.core.history.save_offer, conversation.id, [node.id for node in candidates])

        def draw() -> bytes:
            cells = [self.core.fetcher(node.image_hash) for node in candidates]
            labels = [cell_label(node.params) for node in candidates]
            grid = pictures.labelled_grid(cells, columns=columns, cell_labels=labels, column_labels=column_labels,
                                          row_labels=row_labels, title=title)
            return encode_png(grid)

        buttons = tuple(Button(f"Pick {number}", Press("pick", node.id))
                        for number, node in enumerate(candidates, start=1))
        await send(ImageReply(await in_image_thread(draw), f"{title}\nPick one with the buttons or /pick N.",
                              head.id, buttons, kind="grid"))

    @command("pick", Arg.whole("n", 1, MAX_CELLS, "The cell number on the grid", upper="cells"))
    async def pick_command(self, conversation: Conversation, send: Send, n: int) -> None:
        """Adopt cell N of your last /sweep or /variations."""
        offer = await in_thread(self.core.history.offer, conversation.id)
        await self.pick_button(conversation, await in_thread(self.core.history.node, offer[n - 1]), send)

    async def cells(self, conversation: Conversation) -> int:
        offer = await in_thread(self.core.history.offer, conversation.id)
        if not offer:
            raise UserError("Nothing to pick from: use /sweep or /variations first (or the buttons under a grid).")
        return len(offer)

    @button("pick", "Pick")
    async def pick_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        """Make a candidate the current image; its guidance becomes the conversation's settings."""
        if node is None or not is_model_edit(node):
            raise UserError("That button is out of date.")
        settings, family = conversation.settings, family_named(node.params.family)
        if (settings.family, settings.model) == (node.params.family, node.params.model):
            for parameter in family.tunable():
                settings = family.with_value(settings, parameter.name, family.value(node.params, parameter.name))
            await in_thread(self.core.history.save_settings, conversation.id, settings)
        node = await self.core.move(conversation, node.id)
        await send(await self.core.show(node, f"Picked. {caption(node)}"))

    @command("squash")
    async def squash_command(self, conversation: Conversation, send: Send) -> None:
        """Redo your chain of edits as one edit of the original photo (repeated edits lose quality)."""
        head = await self.core.head(conversation)
        path = await in_thread(self.core.history.path, head.id)
        edits = [node for node in path if is_model_edit(node)]
        if len(edits) < 2:
            raise UserError("Nothing to squash: /squash combines two or more edits into one.")
        if len({node.region for node in edits}) > 1:  # one edit has one region: repeat them faithfully or not at all
            places = ", ".join(dict.fromkeys(node.region.describe() if node.region else "whole picture"
                                             for node in edits))
            raise UserError(f"These edits changed different parts of the picture ({places}): /squash can only "
                            "combine edits of the same part.")
        if len({(node.params.family, node.params.model) for node in edits}) > 1:
            names = ", ".join(dict.fromkeys(node.params.model or node.params.family for node in edits))
            raise UserError(f"These edits were made by different models ({names}): /squash can only combine "
                            "edits of one model.")
        with_references = [node for node in edits if node.inputs]
        if len(with_references) > 1:
            raise UserError("Two of these edits had their own reference pictures: /squash can only combine edits "
                            "where at most one had them.")
        instruction = " and ".join(node.instruction for node in edits)  # the English each edit was given
        try:
            await in_thread(self.core.understanding.check_length, instruction)
        except HeldBack as problem:
            raise UserError(f"Combined, the instructions are too much for one edit: {problem}") from None
        # The edits' own model: with the person's settings while they still use it, else the last edit's values
        # (the seed as the person's settings choose it).
        params = conversation.settings
        if (params.family, params.model) != (edits[-1].params.family, edits[-1].params.model):
            params = replace(edits[-1].params, seed=params.seed)
        squashed = await self.core.edit(conversation, path[0], instruction, params, send, region=edits[0].region,
                                        references=with_references[0].inputs if with_references else ())
        # Exact edits are lossless and cheap: apply them again, in order, on top of the squashed edit.
        for node in path:
            if is_exact_edit(node):
                squashed = await exact_edit(self.core, conversation, squashed, node.instruction, send)

    @command("anyway")
    async def anyway_command(self, conversation: Conversation, send: Send) -> None:
        """Run the instruction I held back (not English, or too long) as it is."""
        if not await self.core.run_held_back(conversation, send):
            raise UserError("There is no instruction waiting: just send one.")

    @button("anyway", "🔁 Try again")
    async def anyway_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        # Offered under an edit a restart interrupted: runs the instruction kept for this very picture.
        held = await in_thread(self.core.history.take_held_back, conversation.id)
        if held is None or held[0] != node.id:
            raise UserError("That button is out of date: send the instruction again.")
        await self.core.edit(conversation, node, held[1], conversation.settings, send)
