"""The SQL an edit runs, as SQLAlchemy Core statements built once with bound parameters.

An edit makes about ten repository calls. Through the ORM each cost 0.3-1.2 ms of CPU on SQLite, mostly building
statements, opening a Session and flushing its unit of work; the same SQL as Core statements built once, on a plain
Connection, costs a third to a quarter of that (docs/performance.md). Rows come back as Core rows, which storage.rows
converts like ORM objects (they are read by attribute).

Methods that change a conversation lock its row first, as storage.repository says: with SELECT ... FOR UPDATE, or
by updating it first (an UPDATE takes the same row lock on PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, literal, select, update

from core.domain import NewNode, Node
from storage.models import ConversationRow, NodeRow, PictureRow
from storage.rows import node_from_row, params_columns, region_columns

CONVERSATIONS, NODES, PICTURES = ConversationRow.__table__, NodeRow.__table__, PictureRow.__table__
_conversation_id = CONVERSATIONS.c.id == bindparam("conversation_id")


def _ancestors():
    """A recursive CTE of node_id (a bound parameter) and its ancestors, with their depth below node_id."""
    ancestors = (select(NODES.c.id, NODES.c.parent_id, literal(0).label("depth"))
                 .where(NODES.c.id == bindparam("node_id")).cte("ancestors", recursive=True))
    parent = NODES.alias("parent")
    return ancestors.union_all(
        select(parent.c.id, parent.c.parent_id, ancestors.c.depth + 1).where(parent.c.id == ancestors.c.parent_id))


def _path():
    ancestors = _ancestors()
    return select(NODES).join(ancestors, NODES.c.id == ancestors.c.id).order_by(ancestors.c.depth.desc())


def _whole_tree():
    ancestors = _ancestors()
    root = select(ancestors.c.id).where(ancestors.c.parent_id.is_(None)).scalar_subquery()
    tree = select(NODES.c.id).where(NODES.c.id == root).cte("tree", recursive=True)
    child = NODES.alias("child")
    tree = tree.union_all(select(child.c.id).where(child.c.parent_id == tree.c.id))
    return select(NODES).join(tree, NODES.c.id == tree.c.id).order_by(NODES.c.id)


def _person():
    """ChatKey.person in SQL, compared with the bound parameter person."""
    return CONVERSATIONS.c.platform + ":" + CONVERSATIONS.c.user_id == bindparam("person")


def _stored_bytes():
    """The bytes of a person's node pictures (each picture once), and the reference pictures their nodes were given
    or their chats keep (JSON lists of digests, any of them SQL or JSON null)."""
    own_nodes = select(NODES).join(CONVERSATIONS, NODES.c.conversation_id == CONVERSATIONS.c.id).where(_person())
    pictures = (own_nodes.with_only_columns(NODES.c.image_hash, func.max(NODES.c.stored_bytes).label("size"))
                .group_by(NODES.c.image_hash).subquery())
    total = select(func.coalesce(func.sum(pictures.c.size), 0))
    references = (own_nodes.with_only_columns(NODES.c.inputs).where(NODES.c.inputs.is_not(None))
                  .union_all(select(CONVERSATIONS.c.next_inputs).where(_person())))
    digests = bindparam("digests", expanding=True)
    own_pictures = own_nodes.with_only_columns(NODES.c.image_hash).where(NODES.c.image_hash.in_(digests))
    noted = select(func.coalesce(func.sum(PICTURES.c.stored_bytes), 0)).where(PICTURES.c.image_hash.in_(digests))
    return total, references, own_pictures, noted


PATH = _path()
TREE = _whole_tree()
NODE = select(NODES).where(NODES.c.id == bindparam("node_id"))
CHILDREN = select(NODES).where(NODES.c.parent_id == bindparam("node_id")).order_by(NODES.c.id)
NODE_CONVERSATION = select(NODES.c.conversation_id).where(NODES.c.id == bindparam("node_id"))
CONVERSATION = select(CONVERSATIONS).where(_conversation_id)
CONVERSATION_BY_KEY = select(CONVERSATIONS).where(CONVERSATIONS.c.platform == bindparam("platform"),
                                                  CONVERSATIONS.c.chat_id == bindparam("chat_id"),
                                                  CONVERSATIONS.c.user_id == bindparam("user_id"))
LOCK_CONVERSATION = CONVERSATION.with_for_update()
# touch: the node's conversation, locked (FOR UPDATE OF only the conversation's row; SQLite ignores it)
LOCK_NODE_CONVERSATION = (select(CONVERSATIONS.c.id).join(NODES, NODES.c.conversation_id == CONVERSATIONS.c.id)
                          .where(NODES.c.id == bindparam("node_id")).with_for_update(of=CONVERSATIONS))
UPDATE_CONVERSATION = update(CONVERSATIONS).where(_conversation_id)  # the columns: the parameters' other keys
UPDATE_CONVERSATION_RETURNING = UPDATE_CONVERSATION.returning(*CONVERSATIONS.c)
RAISE_VISIT_COUNTER = (UPDATE_CONVERSATION.values(visit_counter=CONVERSATIONS.c.visit_counter + 1)
                       .returning(CONVERSATIONS.c.visit_counter))
INSERT_NODE = insert(NODES).returning(*NODES.c)
STORED_BYTES, REFERENCES, OWN_PICTURES, NOTED_BYTES = _stored_bytes()
ROOTS = (select(NODES).where(NODES.c.conversation_id == bindparam("conversation_id"), NODES.c.parent_id.is_(None))
         .order_by(NODES.c.id.desc()))
UPDATE_NODE = update(NODES).where(NODES.c.id == bindparam("node_id"))  # the columns: the parameters' other keys
OFFER = select(CONVERSATIONS.c.offer).where(_conversation_id)
PICTURE = select(PICTURES.c.image_hash).where(PICTURES.c.image_hash == bindparam("image_hash"))

# Maintenance: start-up, the image store's sweep, retention, usage.
LOCK_PENDING = select(CONVERSATIONS).where(CONVERSATIONS.c.pending_instruction.is_not(None)).with_for_update()
NODE_PICTURES = select(NODES.c.image_hash).distinct()
ALL_REFERENCES = (select(NODES.c.inputs).where(NODES.c.inputs.is_not(None))
                  .union_all(select(CONVERSATIONS.c.next_inputs).where(CONVERSATIONS.c.next_inputs.is_not(None))))
PURGE_CANDIDATES = select(NODES.c.conversation_id).where(NODES.c.created_at < bindparam("cutoff")).distinct()
NODE_USES = (select(NODES.c.id, NODES.c.parent_id, NODES.c.created_at, NODES.c.used_at)
             .where(NODES.c.conversation_id == bindparam("conversation_id")))
DELETE_NODES = delete(NODES).where(NODES.c.id.in_(bindparam("node_ids", expanding=True)))


def _edit_counts():
    person = CONVERSATIONS.c.platform + ":" + CONVERSATIONS.c.user_id  # ChatKey.person, in SQL
    edits = func.count(NODES.c.id)
    return (select(person, edits).join(NODES, NODES.c.conversation_id == CONVERSATIONS.c.id)
            .where(NODES.c.instruction.is_not(None), NODES.c.created_at >= bindparam("since"))
            .group_by(person).order_by(edits.desc(), person).limit(bindparam("limit")))


EDIT_COUNTS = _edit_counts()


def update_conversation(connection: Connection, conversation_id: int, **values) -> Row:
    """Set columns of a conversation, locking its row; the row as it is now. ValueError if there is none."""
    row = connection.execute(UPDATE_CONVERSATION_RETURNING, {"conversation_id": conversation_id, **values}).first()
    if row is None:
        raise ValueError(f"no conversation {conversation_id}")
    return row


def set_conversation(connection: Connection, conversation_id: int, **values) -> None:
    """update_conversation without reading the row back."""
    if connection.execute(UPDATE_CONVERSATION, {"conversation_id": conversation_id, **values}).rowcount == 0:
        raise ValueError(f"no conversation {conversation_id}")


def raise_visit_counter(connection: Connection, conversation_id: int) -> int:
    """The conversation's next visit number, counted (which locks its row). ValueError if there is none."""
    visit = connection.scalar(RAISE_VISIT_COUNTER, {"conversation_id": conversation_id})
    if visit is None:
        raise ValueError(f"no conversation {conversation_id}")
    return visit


def lock_conversation(connection: Connection, conversation_id: int) -> Row:
    row = connection.execute(LOCK_CONVERSATION, {"conversation_id": conversation_id}).first()
    if row is None:
        raise ValueError(f"no conversation {conversation_id}")
    return row


def require_own_node(connection: Connection, conversation_id: int, node_id: int, role: str) -> None:
    if connection.scalar(NODE_CONVERSATION, {"node_id": node_id}) != conversation_id:
        raise ValueError(f"{role} {node_id} is not a node of conversation {conversation_id}")


def insert_node(connection: Connection, new: NewNode) -> Node:
    """add_node's work inside the caller's transaction, so other writes (the job table's) can commit with it."""
    if new.make_head:
        visit = raise_visit_counter(connection, new.conversation_id)
    else:
        lock_conversation(connection, new.conversation_id)
        visit = 0
    if new.parent_id is not None:
        require_own_node(connection, new.conversation_id, new.parent_id, "parent")
    region_words, region_inverse = region_columns(new.region)
    params = {} if new.params is None else params_columns(new.params)
    row = connection.execute(INSERT_NODE, {
        "conversation_id": new.conversation_id,
        "parent_id": new.parent_id,
        "image_hash": new.image_hash,
        "instruction": new.instruction,
        "seconds": new.seconds,
        "region_words": region_words,
        "region_inverse": region_inverse,
        "visit": visit,
        "original_instruction": new.translation and new.translation.original,
        "language": new.translation and new.translation.language,
        "stored_bytes": new.stored_bytes,
        "source": new.source,
        "inputs": list(new.inputs) or None,
        **params,
    }).one()
    if new.make_head:  # only now: head_id's foreign key needs the node to exist
        connection.execute(UPDATE_CONVERSATION, {"conversation_id": new.conversation_id, "head_id": row.id})
    return node_from_row(row)
