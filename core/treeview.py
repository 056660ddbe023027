"""One photo's edit tree as a person sees it: every node labelled the way /goto takes it, the line through the
current image, and the branches that leave that line.

Labels are stable: a node's label is its depth (the number of edits from the photo) and, for the second, third…
node made at that depth, a letter: `0` is the photo, `2` the first second-step edit, `2b` the next one made at that
depth, `2c` the one after… (`2a` is accepted for `2`). Moving around the tree never renames anything, so a label
seen in /history, on the /tree picture or in a terminal file name keeps meaning the same image. Candidates nobody
adopted (the other cells of a /sweep grid) are not part of the tree shown until they are picked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.domain import Node

LABEL = re.compile(r"([0-9]{1,5})([a-z]{0,3})")


def letters(index: int) -> str:
    """0 -> '', 1 -> 'b', 25 -> 'z', 26 -> 'ba'…: the suffix of the index-th node made at one depth."""
    if index == 0:
        return ""
    text = ""
    while index:
        index, digit = divmod(index, 26)
        text = chr(ord("a") + digit) + text
    return text


def parse_label(text: str) -> tuple[int, int] | None:
    """'2b' -> (2, 1); '2' and '2a' -> (2, 0); anything else -> None."""
    match = LABEL.fullmatch(text.strip().lower())
    if match is None:
        return None
    depth, suffix = int(match.group(1)), match.group(2)
    index = 0
    for char in suffix:
        index = index * 26 + ord(char) - ord("a")
    return depth, index


@dataclass(frozen=True)
class TreeView:
    """The shown nodes of one tree (the root, and every node that has been the current image, plus the head)."""

    nodes: dict[int, Node]
    labels: dict[int, str]
    depths: dict[int, int]
    children: dict[int, list[int]]
    root_id: int

    @classmethod
    def of(cls, tree: Sequence[Node], head_id: int | None = None) -> TreeView:
        """The view of `tree` (HistoryRepository.tree, oldest first)."""
        shown: dict[int, Node] = {}
        children: dict[int, list[int]] = {}
        depths: dict[int, int] = {}
        by_depth: dict[int, list[int]] = {}
        for node in tree:  # oldest first: a parent comes before its children
            if node.parent_id is None:
                depths[node.id] = 0
            elif node.parent_id in shown and (node.visit > 0 or node.id == head_id):
                depths[node.id] = depths[node.parent_id] + 1
                children[node.parent_id].append(node.id)
            else:
                continue
            shown[node.id] = node
            children[node.id] = []
            by_depth.setdefault(depths[node.id], []).append(node.id)
        labels = {node_id: f"{depth}{letters(index)}"
                  for depth, ids in by_depth.items() for index, node_id in enumerate(ids)}
        root_id = next(node_id for node_id, depth in depths.items() if depth == 0)
        return cls(shown, labels, depths, children, root_id)

    def find(self, label: str) -> Node | None:
        parsed = parse_label(label)
        if parsed is None:
            return None
        depth, index = parsed
        at_depth = [node_id for node_id, each in self.depths.items() if each == depth]
        return self.nodes[at_depth[index]] if index < len(at_depth) else None

    def label(self, node_id: int) -> str:
        return self.labels.get(node_id, "")

    def redo_child(self, node_id: int) -> int | None:
        """The child we most recently came back from (the one redo goes to)."""
        return max(self.children.get(node_id, []), key=lambda child: (self.nodes[child].visit, child), default=None)

    def line(self, head_id: int) -> list[int]:
        """From the photo to the head, continued by the redo chain."""
        line, node = [], self.nodes.get(head_id)
        while node is not None:
            line.append(node.id)
            node = self.nodes.get(node.parent_id) if node.parent_id is not None else None
        line.reverse()
        while line and (after := self.redo_child(line[-1])) is not None:
            line.append(after)
        return line

    def size(self, node_id: int) -> int:
        """How many shown nodes the subtree of node_id holds, itself included."""
        return 1 + sum(self.size(child) for child in self.children.get(node_id, []))

    def resume_point(self) -> Node:
        """Where this tree was left: the node most recently made current."""
        return max(self.nodes.values(), key=lambda node: (node.visit, node.id))

    def last_label(self) -> str:
        return self.labels[max(self.nodes, key=lambda node_id: (self.depths[node_id], node_id))]
