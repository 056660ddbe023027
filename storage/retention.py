"""The retention rule every HistoryRepository applies, in one place.

A conversation's history is a forest: one tree per photo sent. A tree expires as a whole when its newest node was
made, and every node last used (visited by /undo or /goto, a button pressed on it), before the cutoff, so nothing
anyone touched recently goes, and no kept node ever loses its parent. A head that
pointed into an expired tree is cleared (the person is asked for a new photo); the conversation and its settings stay.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime


def expired_nodes(nodes: Iterable[tuple[int, int | None, datetime]], cutoff: datetime) -> set[int]:
    """Ids of the nodes in expired trees, from one conversation's (id, parent_id, last use) triples: a node's last use
    is when it was made or, if later, last used."""
    parents: dict[int, int | None] = {}
    made: dict[int, datetime] = {}
    for node_id, parent_id, created_at in nodes:
        parents[node_id] = parent_id
        made[node_id] = created_at

    def root_of(node_id: int) -> int:
        while (parent := parents[node_id]) is not None:
            node_id = parent
        return node_id

    roots = {node_id: root_of(node_id) for node_id in parents}
    newest: dict[int, datetime] = {}
    for node_id, root in roots.items():
        newest[root] = max(newest.get(root, made[node_id]), made[node_id])
    return {node_id for node_id, root in roots.items() if newest[root] < cutoff}
