"""HistoryRepository on SQLAlchemy: the edit trees in SQLite or PostgreSQL.

Every method is one transaction and returns core.domain dataclasses, never ORM objects, so nothing lazy escapes a
session. Methods that change a conversation first lock its row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the
BEGIN IMMEDIATE from storage.database already serialises writers), so concurrent edits of one conversation cannot
hand out the same visit number or lose a head move.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, delete, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from core.domain import ChatKey, Conversation, EditParams, NewNode, Node, Region
from storage.database import bookkeeping, read_only
from storage.models import ConversationRow, NodeRow, PictureRow
from storage.retention import expired_nodes
from storage.rows import as_utc, node_from_row, region_columns, write_params
from storage.rows import conversation_from_row as _to_conversation


def _ancestors():
    """A recursive CTE of node_id (a bound parameter) and its ancestors, with their depth below node_id."""
    ancestors = (select(NodeRow.id, NodeRow.parent_id, literal(0).label("depth"))
                 .where(NodeRow.id == bindparam("node_id")).cte("ancestors", recursive=True))
    parent = aliased(NodeRow)
    return ancestors.union_all(
        select(parent.id, parent.parent_id, ancestors.c.depth + 1).where(parent.id == ancestors.c.parent_id))


def _path():
    ancestors = _ancestors()
    return select(NodeRow).join(ancestors, NodeRow.id == ancestors.c.id).order_by(ancestors.c.depth.desc())


def _whole_tree():
    ancestors = _ancestors()
    root = select(ancestors.c.id).where(ancestors.c.parent_id.is_(None)).scalar_subquery()
    tree = select(NodeRow.id).where(NodeRow.id == root).cte("tree", recursive=True)
    child = aliased(NodeRow)
    tree = tree.union_all(select(child.id).where(child.parent_id == tree.c.id))
    return select(NodeRow).join(tree, NodeRow.id == tree.c.id).order_by(NodeRow.id)


# Built once: every image reply reads its node's tree (for its label), and building these recursive statements
# cost more CPU than running them (5.9 of 6 ms for a tree of 11 nodes on SQLite).
_PATH = _path()
_TREE = _whole_tree()


class SqlHistoryRepository:
    """The edit tree of every conversation, in the database behind `engine` (see storage.database.make_engine)."""

    def __init__(self, engine: Engine) -> None:
        self._writes = sessionmaker(engine, expire_on_commit=False)
        self._reads = sessionmaker(read_only(engine), expire_on_commit=False)
        self._bookkeeping = sessionmaker(bookkeeping(engine), expire_on_commit=False)  # touch and the noted edit

    def conversation(self, key: ChatKey) -> Conversation:
        """The conversation of this person in this chat, created on first use with default settings."""
        with self._writes.begin() as session:
            row = _find_conversation(session, key)
            if row is None:
                try:
                    # A savepoint, so losing a race with another process creating the same row costs only it.
                    with session.begin_nested():
                        row = _new_conversation(key)
                        session.add(row)
                except IntegrityError:
                    row = _find_conversation(session, key)
                    assert row is not None, "the unique constraint failed, so the row exists"
            return _to_conversation(row)

    def conversation_by_id(self, conversation_id: int) -> Conversation | None:
        with self._reads.begin() as session:
            row = session.get(ConversationRow, conversation_id)
            return None if row is None else _to_conversation(row)

    def node(self, node_id: int) -> Node | None:
        with self._reads.begin() as session:
            row = session.get(NodeRow, node_id)
            return None if row is None else node_from_row(row)

    def children(self, node_id: int) -> list[Node]:
        """Direct children, oldest first."""
        with self._reads.begin() as session:
            rows = session.scalars(select(NodeRow).where(NodeRow.parent_id == node_id).order_by(NodeRow.id))
            return [node_from_row(row) for row in rows]

    def path(self, node_id: int) -> list[Node]:
        """From the root down to this node, inclusive; empty for an unknown node. One recursive query."""
        with self._reads.begin() as session:
            return [node_from_row(row) for row in session.scalars(_PATH, {"node_id": node_id})]

    def tree(self, node_id: int) -> list[Node]:
        """Every node of node_id's tree, oldest first; empty for an unknown node. One query: up to the root, then
        down from it."""
        with self._reads.begin() as session:
            return [node_from_row(row) for row in session.scalars(_TREE, {"node_id": node_id})]

    def roots(self, conversation_id: int) -> list[Node]:
        """The roots of the conversation's trees, newest first."""
        query = (select(NodeRow).where(NodeRow.conversation_id == conversation_id, NodeRow.parent_id.is_(None))
                 .order_by(NodeRow.id.desc()))
        with self._reads.begin() as session:
            return [node_from_row(row) for row in session.scalars(query)]

    def add_node(self, new: NewNode) -> Node:
        """Record a node and (unless make_head=False) make it the head.

        ValueError for an unknown conversation or a foreign parent."""
        with self._writes.begin() as session:
            return insert_node(session, new)

    def move_head(self, conversation_id: int, node_id: int | None) -> Conversation:
        """Make node_id the head (None: no current image) and raise its visit counter.

        ValueError for an unknown conversation or a node of another conversation.
        """
        with self._writes.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            if node_id is not None:
                node = _own_node(session, conversation_id, node_id, "node")
                conversation.visit_counter += 1
                node.visit = conversation.visit_counter
                node.used_at = datetime.now(UTC)
            conversation.head_id = node_id
            return _to_conversation(conversation)

    def touch(self, node_id: int) -> bool:
        """Count the node as used now; False if there is no such node. Under the conversation's lock, so a purge
        running meanwhile either sees the use or has already deleted the node."""
        with self._bookkeeping.begin() as session:
            found = session.get(NodeRow, node_id)
            if found is None:
                return False
            _lock_conversation(session, found.conversation_id)
            found = session.get(NodeRow, node_id, populate_existing=True)  # purged while we waited for the lock?
            if found is None:
                return False
            found.used_at = datetime.now(UTC)
            return True

    def save_settings(self, conversation_id: int, settings: EditParams) -> Conversation:
        """Store the conversation's edit settings; BadParams if they are out of range, ValueError if unknown."""
        settings.validated()
        with self._writes.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            write_params(conversation, settings)
            return _to_conversation(conversation)

    def save_references(self, conversation_id: int, digests: Sequence[str]) -> Conversation:
        """Keep the reference pictures (image digests, in order) waiting for the next edit; empty clears them."""
        with self._writes.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            conversation.next_inputs = list(digests) or None
            return _to_conversation(conversation)

    def save_region(self, conversation_id: int, region: Region | None) -> Conversation:
        """Store the region instructions edit (None: the whole picture); ValueError if the conversation is unknown."""
        with self._writes.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            conversation.region_words, conversation.region_inverse = region_columns(region)
            return _to_conversation(conversation)

    def save_offer(self, conversation_id: int, node_ids: Sequence[int]) -> None:
        """Remember the cells of the grid just offered, in order (replacing the previous grid)."""
        with self._writes.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            for node_id in node_ids:
                _own_node(session, conversation_id, node_id, "cell")
            conversation.offer = list(node_ids)

    def offer(self, conversation_id: int) -> list[int]:
        """The cells of the last grid offered; empty if none (or an unknown conversation)."""
        with self._reads.begin() as session:
            row = session.get(ConversationRow, conversation_id)
            return list(row.offer or []) if row is not None else []

    def hold_back(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep an instruction a hint held back, with the node it was for, until take_held_back."""
        with self._writes.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            _own_node(session, conversation_id, parent_id, "parent")
            conversation.held_parent_id, conversation.held_instruction = parent_id, instruction

    def take_held_back(self, conversation_id: int) -> tuple[int, str] | None:
        """The held-back (parent id, instruction), forgotten as it is returned; None if there is none."""
        with self._writes.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            held = conversation.held_parent_id, conversation.held_instruction
            conversation.held_parent_id = conversation.held_instruction = None
            return None if held[1] is None else held

    def note_edit(self, conversation_id: int, parent_id: int, instruction: str) -> None:
        """Keep the conversation's edit while it waits or runs in this process (replacing any earlier one)."""
        with self._bookkeeping.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            _own_node(session, conversation_id, parent_id, "parent")
            conversation.pending_parent_id, conversation.pending_instruction = parent_id, instruction

    def forget_edit(self, conversation_id: int) -> None:
        """The conversation's edit ended: nothing to offer again."""
        with self._bookkeeping.begin() as session:
            conversation = _lock_conversation(session, conversation_id)
            conversation.pending_parent_id = conversation.pending_instruction = None

    def take_interrupted_edits(self) -> list[tuple[Conversation, int, str]]:
        """Every kept edit as (conversation, parent id, instruction), forgotten as returned; one whose parent is
        gone (purged) is forgotten without being listed."""
        with self._writes.begin() as session:
            rows = session.scalars(
                select(ConversationRow).where(ConversationRow.pending_instruction.is_not(None)).with_for_update()
            ).all()
            interrupted = []
            for row in rows:
                if session.get(NodeRow, row.pending_parent_id) is not None:
                    interrupted.append((_to_conversation(row), row.pending_parent_id, row.pending_instruction))
                row.pending_parent_id = row.pending_instruction = None
            return interrupted

    def referenced_images(self) -> set[str]:
        """Every image hash some node refers to, for the image store's sweep."""
        with self._reads.begin() as session:
            found = set(session.scalars(select(NodeRow.image_hash).distinct()))
            # JSON columns may hold JSON null as well as SQL NULL: both read as None here.
            for pictures in session.scalars(select(NodeRow.inputs).where(NodeRow.inputs.is_not(None))):
                found.update(pictures or ())
            for pictures in session.scalars(select(ConversationRow.next_inputs)
                                            .where(ConversationRow.next_inputs.is_not(None))):
                found.update(pictures or ())
            return found

    def purge_before(self, cutoff: datetime) -> int:
        """Delete the trees made and last used before cutoff (storage/retention.py), one transaction per
        conversation that has old nodes; clear heads that pointed into them. Returns how many nodes were deleted."""
        cutoff = cutoff.astimezone(UTC)
        with self._reads.begin() as session:
            query = select(NodeRow.conversation_id).where(NodeRow.created_at < cutoff).distinct()
            candidates = list(session.scalars(query))
        removed = 0
        for conversation_id in candidates:
            with self._writes.begin() as session:
                conversation = _lock_conversation(session, conversation_id)
                rows = session.execute(
                    select(NodeRow.id, NodeRow.parent_id, NodeRow.created_at, NodeRow.used_at)
                    .where(NodeRow.conversation_id == conversation_id)
                )
                last_use = ((row.id, row.parent_id, as_utc(max(row.created_at, row.used_at or row.created_at)))
                            for row in rows)
                doomed = expired_nodes(last_use, cutoff)
                if not doomed:
                    continue
                if conversation.head_id in doomed:
                    conversation.head_id = None
                    session.flush()  # the head must let go before its node is deleted
                if set(conversation.offer or ()) & doomed:
                    conversation.offer = None
                if conversation.held_parent_id in doomed:
                    conversation.held_parent_id = conversation.held_instruction = None
                if conversation.pending_parent_id in doomed:
                    conversation.pending_parent_id = conversation.pending_instruction = None
                # Whole trees in one statement: the parent links are checked once it has run.
                session.execute(
                    delete(NodeRow).where(NodeRow.id.in_(doomed)).execution_options(synchronize_session=False)
                )
                removed += len(doomed)
        return removed

    def note_reference(self, digest: str, stored_bytes: int) -> None:
        try:
            with self._writes.begin() as session:
                if session.get(PictureRow, digest) is None:
                    session.add(PictureRow(image_hash=digest, stored_bytes=stored_bytes))
        except IntegrityError:
            pass  # noted at the same moment for another chat: the same bytes, the same size

    def stored_bytes(self, person: str) -> int:
        """What the pictures of a person's nodes and the reference pictures they use take in the image store,
        across their chats (a picture counted once)."""
        theirs = ConversationRow.platform + ":" + ConversationRow.user_id == person
        own_nodes = select(NodeRow).join(ConversationRow, NodeRow.conversation_id == ConversationRow.id).where(theirs)
        pictures = (
            own_nodes.with_only_columns(NodeRow.image_hash, func.max(NodeRow.stored_bytes).label("size"))
            .group_by(NodeRow.image_hash)
            .subquery()
        )
        with self._reads.begin() as session:
            total = int(session.scalar(select(func.coalesce(func.sum(pictures.c.size), 0))))
            # JSON columns may hold JSON null as well as SQL NULL: both read as None here.
            references = set()
            for digests in session.scalars(own_nodes.with_only_columns(NodeRow.inputs)
                                           .where(NodeRow.inputs.is_not(None))):
                references.update(digests or ())
            for digests in session.scalars(select(ConversationRow.next_inputs).where(theirs)):
                references.update(digests or ())
            if not references:
                return total
            references -= set(session.scalars(own_nodes.with_only_columns(NodeRow.image_hash)
                                              .where(NodeRow.image_hash.in_(references))))
            noted = select(func.coalesce(func.sum(PictureRow.stored_bytes), 0)).where(
                PictureRow.image_hash.in_(references))
            return total + int(session.scalar(noted))

    def edit_counts(self, since: datetime, limit: int) -> list[tuple[str, int]]:
        """People ("platform:user_id") by the edits they made since `since`, most first, at most limit."""
        person = ConversationRow.platform + ":" + ConversationRow.user_id  # ChatKey.person, in SQL
        edits = func.count(NodeRow.id)
        query = (
            select(person, edits)
            .join(NodeRow, NodeRow.conversation_id == ConversationRow.id)
            .where(NodeRow.instruction.is_not(None), NodeRow.created_at >= since.astimezone(UTC))
            .group_by(person)
            .order_by(edits.desc(), person)
            .limit(limit)
        )
        with self._reads.begin() as session:
            return [(name, count) for name, count in session.execute(query)]


def insert_node(session: Session, new: NewNode) -> Node:
    """add_node's work inside the caller's transaction, so other writes (the job table's) can commit with it."""
    conversation = _lock_conversation(session, new.conversation_id)
    if new.parent_id is not None:
        _own_node(session, new.conversation_id, new.parent_id, "parent")
    if new.make_head:
        conversation.visit_counter += 1
    region_words, region_inverse = region_columns(new.region)
    row = NodeRow(
        conversation_id=new.conversation_id,
        parent_id=new.parent_id,
        image_hash=new.image_hash,
        instruction=new.instruction,
        seconds=new.seconds,
        region_words=region_words,
        region_inverse=region_inverse,
        visit=conversation.visit_counter if new.make_head else 0,
        original_instruction=new.translation and new.translation.original,
        language=new.translation and new.translation.language,
        stored_bytes=new.stored_bytes,
        source=new.source,
        inputs=list(new.inputs) or None,
    )
    if new.params is not None:
        write_params(row, new.params)
    session.add(row)
    session.flush()  # the node must exist before head_id may point at it
    if new.make_head:
        conversation.head_id = row.id
    return node_from_row(row)


def _find_conversation(session: Session, key: ChatKey) -> ConversationRow | None:
    query = select(ConversationRow).filter_by(platform=key.platform, chat_id=key.chat_id, user_id=key.user_id)
    return session.scalars(query).one_or_none()


def _new_conversation(key: ChatKey) -> ConversationRow:
    row = ConversationRow(platform=key.platform, chat_id=key.chat_id, user_id=key.user_id)
    write_params(row, EditParams())
    return row


def _lock_conversation(session: Session, conversation_id: int) -> ConversationRow:
    query = select(ConversationRow).where(ConversationRow.id == conversation_id).with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise ValueError(f"no conversation {conversation_id}")
    return row


def _own_node(session: Session, conversation_id: int, node_id: int, role: str) -> NodeRow:
    row = session.get(NodeRow, node_id)
    if row is None or row.conversation_id != conversation_id:
        raise ValueError(f"{role} {node_id} is not a node of conversation {conversation_id}")
    return row
