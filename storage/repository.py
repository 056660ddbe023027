"""HistoryRepository on SQLAlchemy: the edit trees in SQLite or PostgreSQL.

Every method is one transaction and returns core.domain dataclasses. Methods that change a conversation first lock
its row (SELECT ... FOR UPDATE, or an UPDATE of it, on PostgreSQL; on SQLite the BEGIN IMMEDIATE from
storage.database already serialises writers), so concurrent edits of one conversation cannot hand out the same visit
number or lose a head move. The SQL is Core statements built once (storage/statements.py): an edit makes about ten
of these calls, and through the ORM each cost several times the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, Row, insert
from sqlalchemy.exc import IntegrityError

import storage.statements as sql
from core.domain import ChatKey, Conversation, EditParams, NewNode, Node, Region
from storage.database import bookkeeping, read_only
from storage.retention import expired_nodes
from storage.rows import as_utc, conversation_from_row, node_from_row, params_columns, region_columns
from storage.statements import (insert_node, lock_conversation, raise_visit_counter, require_own_node,
                                set_conversation, update_conversation)


class SqlHistoryRepository:
    """The edit tree of every conversation, in the database behind `engine` (see storage.database.make_engine)."""

    def __init__(self, engine: Engine) -> None:
        self._writes = engine
        self._reads = read_only(engine)
        self._bookkeeping = bookkeeping(engine)  # touch and the noted edit

    def conversation(self, key: ChatKey) -> Conversation:
        """The conversation of this person in this chat, created on first use with default settings."""
        with self._reads.begin() as connection:  # a read first: on SQLite a write transaction queues behind writers
            row = connection.execute(sql.CONVERSATION_BY_KEY, _key(key)).first()
        if row is None:
            row = self._new_conversation(key)
        return conversation_from_row(row)

    def _new_conversation(self, key: ChatKey) -> Row:
        with self._writes.begin() as connection:
            row = connection.execute(sql.CONVERSATION_BY_KEY, _key(key)).first()  # made since the read?
            if row is None:
                try:
                    # A savepoint, so losing a race with another process creating the same row costs only it.
                    with connection.begin_nested():
                        connection.execute(insert(sql.CONVERSATIONS), {**_key(key), **params_columns(EditParams())})
                except IntegrityError:
                    pass  # the unique constraint failed, so the row exists
                row = connection.execute(sql.CONVERSATION_BY_KEY, _key(key)).one()
            return row

    def conversation_by_id(self, conversation_id: int) -> Conversation | None:
        with self._reads.begin() as connection:
            row = connection.execute(sql.CONVERSATION, {"conversation_id": conversation_id}).first()
            return None if row is None else conversation_from_row(row)

    def node(self, node_id: int) -> Node | None:
        with self._reads.begin() as connection:
            row = connection.execute(sql.NODE, {"node_id": node_id}).first()
            return None if row is None else node_from_row(row)

    def children(self, node_id: int) -> list[Node]:
        """Direct children, oldest first."""
        return self._nodes(sql.CHILDREN, node_id=node_id)

    def path(self, node_id: int) -> list[Node]:
        """From the root down to this node, inclusive; empty for an unknown node. One recursive query."""
        return self._nodes(sql.PATH, node_id=node_id)

    def tree(self, node_id: int) -> list[Node]:
        """Every node of node_id's tree, oldest first; empty for an unknown node. One query: up to the root, then
        down from it."""
        return self._nodes(sql.TREE, node_id=node_id)

    def roots(self, conversation_id: int) -> list[Node]:
        """The roots of the conversation's trees, newest first."""
        return self._nodes(sql.ROOTS, conversation_id=conversation_id)

    def _nodes(self, statement, **parameters) -> list[Node]:
        with self._reads.begin() as connection:
            return [node_from_row(row) for row in connection.execute(statement, parameters)]

    def add_node(self, new: NewNode) -> Node:
        """Record a node and (unless make_head=False) make it the head.

        ValueError for an unknown conversation or a foreign parent."""
        with self._writes.begin() as connection:
            return insert_node(connection, new)

    def move_head(self, conversation_id: int, node_id: int | None) -> Conversation:
        """Make node_id the head (None: no current image) and raise its visit counter.

        ValueError for an unknown conversation or a node of another conversation.
        """
        with self._writes.begin() as connection:
            if node_id is None:
                return conversation_from_row(update_conversation(connection, conversation_id, head_id=None))
            visit = raise_visit_counter(connection, conversation_id)
            require_own_node(connection, conversation_id, node_id, "node")
            connection.execute(sql.UPDATE_NODE, {"node_id": node_id, "visit": visit, "used_at": datetime.now(UTC)})
            return conversation_from_row(update_conversation(connection, conversation_id, head_id=node_id))

    def touch(self, node_id: int) -> bool:
        """Count the node as used now; False if there is no such node. Under the conversation's lock, so a purge
        running meanwhile either sees the use or has already deleted the node."""
        with self._bookkeeping.begin() as connection:
            if connection.scalar(sql.LOCK_NODE_CONVERSATION, {"node_id": node_id}) is None:
                return False
            # Counted after the lock: a purge that held it has deleted the node by now, and nothing is updated.
            return connection.execute(sql.UPDATE_NODE, {"node_id": node_id, "used_at": datetime.now(UTC)}).rowcount > 0

    def save_settings(self, conversation_id: int, settings: EditParams) -> Conversation:
        """Store the conversation's edit settings; BadParams if they are out of range, ValueError if unknown."""
        settings.validated()
        return self._update(conversation_id, **params_columns(settings))

    def save_references(self, conversation_id: int, digests: Sequence[str]) -> Conversation:
        """Keep the reference pictures (image digests, in order) waiting for the next edit; empty clears them."""
        return self._update(conversation_id, next_inputs=list(digests) or None)

    def save_region(self, conversation_id: int, region: Region | None) -> Conversation:
        """Store the region instructions edit (None: the whole picture); ValueError if the conversation is unknown."""
        region_words, region_inverse = region_columns(region)
        return self._update(conversation_id, region_words=region_words, region_inverse=region_inverse)

    def _update(self, conversation_id: int, **values) -> Conversation:
        with self._writes.begin() as connection:
            return conversation_from_row(update_conversation(connection, conversation_id, **values))

    def save_offer(self, conversation_id: int, node_ids: Sequence[int]) -> None:
        """Remember the cells of the grid just offered, in order (replacing the previous grid)."""
        with self._writes.begin() as connection:
            set_conversation(connection, conversation_id, offer=list(node_ids))
            for node_id in node_ids:
                require_own_node(connection, conversation_id, node_id, "cell")

    def offer(self, conversation_id: int) -> list[int]:
        """The cells of the last grid offered; empty if none (or an unknown conversation)."""
        with self._reads.begin() as connection:
            return list(connection.scalar(sql.OFFER, {"conversation_id": conversation_id}) or [])

    def hold_back(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep an instruction a hint held back, with the node it was for, until take_held_back."""
        with self._writes.begin() as connection:
            set_conversation(connection, conversation_id, held_parent_id=parent_id, held_instruction=instruction)
            require_own_node(connection, conversation_id, parent_id, "parent")

    def take_held_back(self, conversation_id: int) -> tuple[int, str] | None:
        """The held-back (parent id, instruction), forgotten as it is returned; None if there is none."""
        with self._writes.begin() as connection:
            row = lock_conversation(connection, conversation_id)
            if row.held_instruction is None:
                return None
            connection.execute(sql.UPDATE_CONVERSATION, {"conversation_id": conversation_id, "held_parent_id": None,
                                                         "held_instruction": None})
            return row.held_parent_id, row.held_instruction

    def note_edit(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep the conversation's edit while it waits or runs in this process (replacing any earlier one)."""
        with self._bookkeeping.begin() as connection:
            set_conversation(connection, conversation_id, pending_parent_id=parent_id, pending_instruction=instruction)
            require_own_node(connection, conversation_id, parent_id, "parent")  # after the lock; raising undoes it

    def forget_edit(self, conversation_id: int) -> None:
        """The conversation's edit ended: nothing to offer again."""
        with self._bookkeeping.begin() as connection:
            set_conversation(connection, conversation_id, pending_parent_id=None, pending_instruction=None)

    def take_interrupted_edits(self) -> list[tuple[Conversation, int, str]]:
        """Every kept edit as (conversation, parent id, instruction), forgotten as returned; one whose parent is
        gone (purged) is forgotten without being listed."""
        with self._writes.begin() as connection:
            interrupted = []
            for row in connection.execute(sql.LOCK_PENDING).all():
                if connection.scalar(sql.NODE_CONVERSATION, {"node_id": row.pending_parent_id}) is not None:
                    interrupted.append((conversation_from_row(row), row.pending_parent_id, row.pending_instruction))
                connection.execute(sql.UPDATE_CONVERSATION, {"conversation_id": row.id, "pending_parent_id": None,
                                                             "pending_instruction": None})
            return interrupted

    def referenced_images(self) -> set[str]:
        """Every image hash some node refers to, for the image store's sweep."""
        with self._reads.begin() as connection:
            found = set(connection.scalars(sql.NODE_PICTURES))
            # JSON columns may hold JSON null as well as SQL NULL: both read as None here.
            for pictures in connection.scalars(sql.ALL_REFERENCES):
                found.update(pictures or ())
            return found

    def purge_before(self, cutoff: datetime) -> int:
        """Delete the trees made and last used before cutoff (storage/retention.py), one transaction per
        conversation that has old nodes; clear heads that pointed into them. Returns how many nodes were deleted."""
        cutoff = cutoff.astimezone(UTC)
        with self._reads.begin() as connection:
            candidates = list(connection.scalars(sql.PURGE_CANDIDATES, {"cutoff": cutoff}))
        removed = 0
        for conversation_id in candidates:
            with self._writes.begin() as connection:
                conversation = lock_conversation(connection, conversation_id)
                rows = connection.execute(sql.NODE_USES, {"conversation_id": conversation_id})
                last_use = ((row.id, row.parent_id, as_utc(max(row.created_at, row.used_at or row.created_at)))
                            for row in rows)
                doomed = expired_nodes(last_use, cutoff)
                if not doomed:
                    continue
                letting_go = {}
                if conversation.head_id in doomed:
                    letting_go["head_id"] = None
                if set(conversation.offer or ()) & doomed:
                    letting_go["offer"] = None
                if conversation.held_parent_id in doomed:
                    letting_go["held_parent_id"] = letting_go["held_instruction"] = None
                if conversation.pending_parent_id in doomed:
                    letting_go["pending_parent_id"] = letting_go["pending_instruction"] = None
                if letting_go:  # first: the head must let go before its node is deleted
                    connection.execute(sql.UPDATE_CONVERSATION, {"conversation_id": conversation_id, **letting_go})
                # Whole trees in one statement: the parent links are checked once it has run.
                connection.execute(sql.DELETE_NODES, {"node_ids": list(doomed)})
                removed += len(doomed)
        return removed

    def note_reference(self, digest: str, stored_bytes: int) -> None:
        try:
            with self._writes.begin() as connection:
                if connection.scalar(sql.PICTURE, {"image_hash": digest}) is None:
                    connection.execute(insert(sql.PICTURES), {"image_hash": digest, "stored_bytes": stored_bytes})
        except IntegrityError:
            pass  # noted at the same moment for another chat: the same bytes, the same size

    def stored_bytes(self, person: str) -> int:
        """What the pictures of a person's nodes and the reference pictures they use take in the image store,
        across their chats (a picture counted once)."""
        with self._reads.begin() as connection:
            total = connection.scalar(sql.STORED_BYTES, {"person": person})
            # JSON columns may hold JSON null as well as SQL NULL: both read as None here.
            references = set()
            for digests in connection.scalars(sql.REFERENCES, {"person": person}):
                references.update(digests or ())
            if not references:
                return total
            references -= set(connection.scalars(sql.OWN_PICTURES, {"person": person, "digests": list(references)}))
            return total + connection.scalar(sql.NOTED_BYTES, {"digests": list(references)})

    def edit_counts(self, since: datetime, limit: int) -> list[tuple[str, int]]:
        """People ("platform:user_id") by the edits they made since `since`, most first, at most limit."""
        with self._reads.begin() as connection:
            parameters = {"since": since.astimezone(UTC), "limit": limit}
            return [(name, count) for name, count in connection.execute(sql.EDIT_COUNTS, parameters)]


def _key(key: ChatKey) -> dict:
    return {"platform": key.platform, "chat_id": key.chat_id, "user_id": key.user_id}
