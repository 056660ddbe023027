"""The whole tree, reachable: /history (the line to here and the branches leaving it), /goto any label, the /tree
picture, and /photos, every photo this person started from in this chat, each resumed where it was left.

Labels come from core/treeview.py: `2` is the first edit made two steps from the photo, `2b` the next one made at
that depth; they never change as the person moves around.
"""

from __future__ import annotations

import re

from core import pictures
from core.commands import Arg, button, command
from core.conversation.captions import caption, short, translated
from core.conversation.edits import CommandGroup
from core.domain import Conversation, Node
from core.errors import UserError
from core.images import encode_png
from core.messages import Button, ImageReply, Press, Send, TextReply
from core.offload import in_image_thread, in_thread
from core.tree_picture import choose, tree_picture
from core.treeview import LABEL, TreeView

ONE_WORD = re.compile(r"\S{1,16}")

SHEET_ENTRIES = 24
"""The most thumbnails a /history contact sheet shows (the photo always first, then the newest steps)."""
LINE_AROUND_HEAD = 6
"""/history folds a long line: it lists the photo, this many steps either side of the current image, and the last."""
BRANCHES_PER_STEP = 3
"""/history lists this many branches under a step, then says how many more there are."""
PHOTOS_SHOWN = 12
"""/photos shows the newest this many photos (each one still opens with /photos N)."""
PHOTOS_MAX = 10_000
"""The highest number /photos takes before looking (Discord's limit too)."""


def count_edits(view: TreeView) -> str:
    """“1 edit”, “3 edits”: the nodes of a photo's tree below the photo."""
    edits = len(view.nodes) - 1
    return "1 edit" if edits == 1 else f"{edits} edits"


def _listed_steps(line: list[int], at: int) -> list[int | None]:
    """Indexes of the line to list, None where a run of steps is folded away."""
    keep = {0, len(line) - 1, *range(max(at - LINE_AROUND_HEAD, 0), min(at + LINE_AROUND_HEAD + 1, len(line)))}
    listed: list[int | None] = []
    for index in range(len(line)):
        if index in keep:
            listed.append(index)
        elif listed and listed[-1] is not None:
            listed.append(None)
    return listed


def history_text(view: TreeView, head_id: int) -> str:
    """The line from the photo through the current image, each step's other branches under it, long runs folded."""
    line = view.line(head_id)
    rows = []
    for index in _listed_steps(line, line.index(head_id)):
        if index is None:
            rows.append("   … (steps folded away: /goto still takes their labels)")
            continue
        node = view.nodes[line[index]]
        mark = "  ◀ you are here" if node.id == head_id else ""
        rows.append(f"{view.label(node.id)}. {short(node, as_typed=True)}{translated(node)}{mark}")
        following = line[index + 1] if index + 1 < len(line) else None
        branches = [child for child in view.children[node.id] if child != following]
        for child in branches[:BRANCHES_PER_STEP]:
            after = view.size(child) - 1
            more = f" (+{after} after it)" if after else ""
            branch = view.nodes[child]
            rows.append(f"   ↳ {view.label(child)}. {short(branch, as_typed=True)}{translated(branch)}{more}")
        if len(branches) > BRANCHES_PER_STEP:
            rows.append(f"   ↳ and {len(branches) - BRANCHES_PER_STEP} more branches here (/tree draws them)")
    return "Your edits (/goto LABEL jumps to any of them, /tree draws them all):\n" + "\n".join(rows)


class Trees(CommandGroup):
    position = 15

    @command("history")
    async def history_command(self, conversation: Conversation, send: Send) -> None:
        """List the edits from the photo to here and the branches leaving them, labelled for /goto."""
        view, head = await self.core.view(conversation)
        line = view.line(head.id)
        shown = line if len(line) <= SHEET_ENTRIES else line[:1] + line[-(SHEET_ENTRIES - 1):]

        def draw() -> bytes:
            entries = [
                pictures.SheetEntry(view.label(node_id), self._fetch(view.nodes[node_id]),
                                    short(view.nodes[node_id], as_typed=True, bare=True), node_id == head.id,
                                    max(len(view.children[node_id]) - 1, 0))
                for node_id in shown
            ]
            return encode_png(pictures.contact_sheet(entries))

        sheet = await in_image_thread(draw)  # first: a missing picture is said before anything else
        await send(TextReply(history_text(view, head.id)))
        await send(ImageReply(sheet, "Your history: the labels are the ones /goto takes.", head.id, kind="history"))

    @command("goto", Arg.word("label", ONE_WORD, "A step label from /history or /tree, like 2 or 2b", usage="LABEL",
                              default=""))
    async def goto_command(self, conversation: Conversation, send: Send, label: str) -> None:
        """Jump to any image of this photo's tree by its label (2, 2b…) from /history or /tree."""
        view, _ = await self.core.view(conversation)
        node = view.find(label)
        if node is None:
            label = label if LABEL.fullmatch(label) else ""  # only a label is worth repeating back
            raise UserError(f"There is no step {label} here: /goto takes a label from /history "
                            f"(0 to {view.last_label()}, and branches like 2b)." if label else
                            f"/goto needs a step label from /history: 0 to {view.last_label()}, "
                            "and branches like 2b.")
        node = await self.core.move(conversation, node.id)
        await send(await self.core.show(node, f"Step {view.label(node.id)}: {caption(node)}"))

    @command("tree")
    async def tree_command(self, conversation: Conversation, send: Send) -> None:
        """Draw this photo's whole tree of edits, labelled for /goto, the current image framed."""
        view, head = await self.core.view(conversation)
        drawn = choose(view, head.id)
        edits = count_edits(view)

        def draw() -> bytes:
            picture = tree_picture(view, head.id, drawn, lambda node_id: self._fetch(view.nodes[node_id]),
                                   title=f"This photo's tree: {edits} · you are at {view.label(head.id)}")
            return encode_png(picture)

        await send(ImageReply(await in_image_thread(draw),
                              f"Your tree: /goto LABEL jumps to any image (you are at {view.label(head.id)}).",
                              head.id, kind="tree", label=view.label(head.id)))

    @command("photos", Arg.whole("n", 1, PHOTOS_MAX, "Which photo to go back to, as numbered by /photos",
                                 default=None))
    async def photos_command(self, conversation: Conversation, send: Send, n: int | None) -> None:
        """List the photos you started from here, newest first; /photos N goes back to one where you left it."""
        roots = await in_thread(self.core.history.roots, conversation.id)
        if not roots:
            raise UserError("You have not sent me a photo here yet.")
        if n is not None:
            if n > len(roots):
                raise UserError(f"/photos needs a whole number: from 1 to {len(roots)}.")
            await self.resume_button(conversation, roots[n - 1], send)
            return
        shown = roots[:PHOTOS_SHOWN]
        views = [TreeView.of(await in_thread(self.core.history.tree, root.id)) for root in shown]
        head_id = conversation.head_id
        rows = []
        for number, (root, view) in enumerate(zip(shown, views), start=1):
            left = view.resume_point()
            where = "here now" if head_id in view.nodes else f"left at {view.label(left.id)}: {short(left)}"
            rows.append(f"{number}. sent {root.created_at:%Y-%m-%d %H:%M} UTC · {count_edits(view)} · {where}")
        if len(roots) > len(shown):
            rows.append(f"… and {len(roots) - len(shown)} older photos (/photos N still opens them).")
        await send(TextReply("Your photos here, newest first (/photos N goes back to one):\n" + "\n".join(rows)))

        def draw() -> bytes:
            entries = [pictures.SheetEntry(str(number), self._fetch(view.resume_point()),
                                           count_edits(view), head_id in view.nodes)
                       for number, view in enumerate(views, start=1)]
            return encode_png(pictures.contact_sheet(entries, title="Your photos, newest first"))

        buttons = tuple(Button(f"Open {number}", Press("resume", root.id))
                        for number, root in enumerate(shown, start=1))
        await send(ImageReply(await in_image_thread(draw), "Your photos: press one, or /photos N, to go back to it.",
                              head_id or shown[0].id, buttons, kind="photos"))

    @button("resume", "Open")
    async def resume_button(self, conversation: Conversation, node: Node, send: Send) -> None:
        """Go back to node's tree where it was left."""
        view = TreeView.of(await in_thread(self.core.history.tree, node.id))
        left = await self.core.move(conversation, view.resume_point().id)
        await send(await self.core.show(left, f"Back to this photo, at step {view.label(left.id)}: "
                                              f"{caption(left)}"))

    def _fetch(self, node: Node):
        """The stored bytes of node's image, fetched when the picture is drawn (decoded small there)."""
        return self.core.fetcher(node.image_hash)
