"""The /tree picture: one photo's edit tree as small thumbnails on a graph, left to right, each with the label /goto
takes, the current image framed.

A big tree is folded so the picture stays small enough for Telegram and Discord (at most MAX_COLUMNS steps across and
MAX_ROWS branches down, about 2000 px a side): first each branch off the current line is drawn by its first image
only, with a "+N" badge for what it hides; then only the steps nearest the current image are drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw

from core.pictures import (
    ACCENT,
    BACKGROUND,
    INK,
    MARGIN,
    MUTED,
    Picture,
    draw_badge,
    fit_square,
    font,
    line_height,
    wrap_lines,
)
from core.treeview import TreeView

TREE_THUMB = 112
GAP_X = 36
GAP_Y = 14
MAX_COLUMNS = 14
MAX_ROWS = 10
MAX_FULL_NODES = 60
"""A tree with more shown nodes than this is folded."""


@dataclass(frozen=True)
class Drawn:
    """What the picture holds: the nodes drawn (parents before children), each with how many it hides."""

    ids: list[int]
    folded: dict[int, int]
    left_out: int


def choose(view: TreeView, head_id: int) -> Drawn:
    """The nodes to draw: all of a small tree; for a big one the current line near the head and the first image of
    each branch leaving it."""
    every = [node_id for node_id in view.nodes]  # oldest first, parents before children
    depth_of = view.depths
    fits = (len(every) <= MAX_FULL_NODES and max(depth_of.values()) < MAX_COLUMNS
            and sum(1 for node_id in every if not view.children[node_id]) <= MAX_ROWS)
    if fits:
        return Drawn(every, {}, 0)
    line = view.line(head_id)
    at = line.index(head_id)
    start = max(0, min(at - MAX_COLUMNS // 2, len(line) - MAX_COLUMNS))
    window = line[start:start + MAX_COLUMNS]
    chosen, folded = list(window), {}
    tips = [child for node_id in window for child in view.children[node_id] if child not in line]
    for tip in tips[:MAX_ROWS - 1]:
        chosen.append(tip)
        if view.size(tip) > 1:
            folded[tip] = view.size(tip) - 1
    drawn = sorted(chosen, key=lambda node_id: (depth_of[node_id], node_id))
    return Drawn(drawn, folded, len(view.nodes) - len(drawn) - sum(folded.values()))


def tree_picture(view: TreeView, head_id: int, drawn: Drawn, image: Callable[[int], Picture], *,
                 title: str) -> Image.Image:
    """Draw `drawn` nodes of `view`: columns are steps from the photo, rows are branches."""
    ids = set(drawn.ids)
    top_depth = min(view.depths[node_id] for node_id in drawn.ids)
    kids = {node_id: [child for child in view.children[node_id] if child in ids] for node_id in drawn.ids}
    tops = [node_id for node_id in drawn.ids if view.nodes[node_id].parent_id not in ids]
    rows: dict[int, int] = {}
    next_row = 0

    def place(node_id: int) -> None:  # depth first: a leaf takes the next row, a parent its first child's
        nonlocal next_row
        for child in kids[node_id]:
            place(child)
        if kids[node_id]:
            rows[node_id] = rows[kids[node_id][0]]
        else:
            rows[node_id] = next_row
            next_row += 1

    for top in tops:
        place(top)
    label_h = line_height(14)
    cell_w, cell_h = TREE_THUMB + GAP_X, TREE_THUMB + label_h + GAP_Y
    columns = max(view.depths[node_id] for node_id in drawn.ids) - top_depth + 1
    title_band = line_height(18) + MARGIN
    notes = _notes(drawn, top_depth)
    note_band = line_height(14) * len(notes) + (MARGIN if notes else 0)
    sheet = Image.new("RGB", (MARGIN * 2 + columns * cell_w - GAP_X, title_band + next_row * cell_h + MARGIN
                              + note_band), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((MARGIN, MARGIN // 2), title, font=font(18), fill=INK)

    def corner(node_id: int) -> tuple[int, int]:
        return (MARGIN + (view.depths[node_id] - top_depth) * cell_w, title_band + rows[node_id] * cell_h)

    for node_id in drawn.ids:  # the lines first, under the thumbnails
        x, y = corner(node_id)
        for child in kids[node_id]:
            cx, cy = corner(child)
            middle = x + TREE_THUMB + GAP_X // 2
            points = [(x + TREE_THUMB, y + TREE_THUMB // 2), (middle, y + TREE_THUMB // 2),
                      (middle, cy + TREE_THUMB // 2), (cx, cy + TREE_THUMB // 2)]
            draw.line(points, fill=MUTED, width=2)
    for node_id in drawn.ids:
        x, y = corner(node_id)
        thumb = fit_square(image(node_id), TREE_THUMB)
        left, top = x + (TREE_THUMB - thumb.width) // 2, y + (TREE_THUMB - thumb.height) // 2
        sheet.paste(thumb, (left, top))
        if node_id == head_id:
            draw.rectangle((left - 4, top - 4, left + thumb.width + 3, top + thumb.height + 3), outline=ACCENT,
                           width=4)
        draw_badge(draw, (left + 3, top + 3), view.labels[node_id], size=14)
        under = view.nodes[node_id].instruction or "the photo"
        if drawn.folded.get(node_id):
            under = f"+{drawn.folded[node_id]} more after it"
        [line] = wrap_lines(under, TREE_THUMB + GAP_X // 2, 14, 1)
        draw.text((x, y + TREE_THUMB + 2), line, font=font(14), fill=ACCENT if node_id == head_id else MUTED)
    for number, note in enumerate(notes):
        draw.text((MARGIN, sheet.height - note_band + number * line_height(14)), note, font=font(14), fill=MUTED)
    return sheet


def _notes(drawn: Drawn, top_depth: int) -> list[str]:
    notes = []
    if top_depth:
        notes.append(f"Steps 0–{top_depth - 1} are to the left (/history lists them).")
    if drawn.left_out:
        notes.append(f"{drawn.left_out} more images are not drawn: /history lists every branch.")
    return notes
