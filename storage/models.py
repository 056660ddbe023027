"""The database schema as SQLAlchemy 2 typed ORM classes. Alembic's migrations must produce exactly this.

Types are chosen to work on SQLite and PostgreSQL alike: ids are BIGINT on PostgreSQL but INTEGER on SQLite (only an
INTEGER PRIMARY KEY is SQLite's auto-numbered rowid); chat and user ids are strings because platforms disagree on
their shape; timestamps are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer(), "sqlite")

# Deterministic constraint names, so migrations can name them and schema comparisons agree on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ConversationRow(Base):
    """One person in one chat: where they are in their tree and their edit settings."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "user_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    # conversations.head_id -> nodes and nodes.conversation_id -> conversations form a cycle; use_alter lets
    # CREATE TABLE run first and the constraint be added afterwards. The repository flushes a new node before
    # pointing head_id at it, so rows are always written in an order both constraints accept.
    head_id: Mapped[int | None] = mapped_column(Id, ForeignKey("nodes.id", use_alter=True))
    text_guidance: Mapped[float] = mapped_column(Float)
    image_guidance: Mapped[float] = mapped_column(Float)
    steps: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(BigInteger)  # up to 2**32 - 1: too big for a 32-bit INTEGER
    scheduler: Mapped[str] = mapped_column(String(16))
    # Raised each time a node becomes head; the node keeps the value it got, so redo can find the latest child.
    visit_counter: Mapped[int] = mapped_column(Integer, default=0)
    # Conversation state between messages: the cells of the last grid offered (node ids, for /pick N) and the
    # instruction a hint held back with the node it was for (for /anyway). No foreign keys: retention clears them.
    offer: Mapped[list | None] = mapped_column(JSON)
    held_parent_id: Mapped[int | None] = mapped_column(Id)
    held_instruction: Mapped[str | None] = mapped_column(Text)
    # The edit waiting or running for this conversation in the embedded mode (its parent and instruction), kept
    # until it ends: one still here at start-up was interrupted by a restart and is offered again.
    pending_parent_id: Mapped[int | None] = mapped_column(Id)
    pending_instruction: Mapped[str | None] = mapped_column(Text)
    # The region instructions edit (/only, /except): its words (NULL: the whole picture) and whether it is inverse.
    region_words: Mapped[str | None] = mapped_column(Text)
    region_inverse: Mapped[bool | None] = mapped_column(Boolean, default=False)
    # The model the next edit runs on (/model; NULL: the default model, family pix2pix), its family's own values
    # ({name: value}) and the reference pictures (/ref, image digests in order) waiting for the next edit.
    family: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(32))
    extras: Mapped[dict | None] = mapped_column(JSON)
    next_inputs: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, onupdate=utc_now)


class NodeRow(Base):
    """One image in an edit tree: a root (a photo someone sent) or an edit of its parent."""

    __tablename__ = "nodes"
    # Ids are never reused, even after a purge deletes the newest rows: an old button must not act on a new node.
    # PostgreSQL's sequences never go back; SQLite needs AUTOINCREMENT for that.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Id, ForeignKey("conversations.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(Id, ForeignKey("nodes.id"), index=True)
    image_hash: Mapped[str] = mapped_column(String(64), index=True)
    # What the model was given (English); for a translated instruction, what the person typed and its language.
    instruction: Mapped[str | None] = mapped_column(Text)
    original_instruction: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(32))
    # The parameters actually used, seed included; all NULL for a root.
    text_guidance: Mapped[float | None] = mapped_column(Float)
    image_guidance: Mapped[float | None] = mapped_column(Float)
    steps: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    scheduler: Mapped[str | None] = mapped_column(String(16))
    seconds: Mapped[float | None] = mapped_column(Float)
    # The region the edit was confined to (NULL words: the whole picture), so /retry and /squash repeat it.
    region_words: Mapped[str | None] = mapped_column(Text)
    region_inverse: Mapped[bool | None] = mapped_column(Boolean, default=False)
    # Which model made a model edit (NULL family: pix2pix, NULL model: the default, from before models were
    # recorded), where its weights came from, its family's own values and its reference pictures' digests.
    family: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(Text)
    extras: Mapped[dict | None] = mapped_column(JSON)
    inputs: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    visit: Mapped[int] = mapped_column(Integer)
    # The last time someone went to it or pressed one of its buttons (NULL: never since it was made): retention
    # keeps a tree anyone used recently, not only one edited recently.
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bytes its picture takes in the image store, as stored (0 for nodes from before it was counted): what the
    # per-person storage limit adds up.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class PictureRow(Base):
    """What a reference picture (/ref) takes in the image store, as stored: node pictures carry their own size, and
    the per-person storage limit adds these up for the references a person's chats keep."""

    __tablename__ = "pictures"

    image_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)


class JobRow(Base):
    """An edit job of the distributed mode (bot.distributed.jobs). Its id, chosen by the front-end, is the idempotency key."""

    __tablename__ = "jobs"
    # The front-end's re-attachment query: its jobs not yet delivered.
    __table_args__ = (Index("ix_jobs_frontend_delivered", "frontend", "delivered"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Id, ForeignKey("conversations.id"), index=True)
    person: Mapped[str] = mapped_column(String(128))
    frontend: Mapped[str] = mapped_column(String(64))
    parent_id: Mapped[int] = mapped_column(Id, ForeignKey("nodes.id"))
    image_hash: Mapped[str] = mapped_column(String(64))
    instruction: Mapped[str] = mapped_column(Text)
    original_instruction: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(32))
    # EditParams as a dict, and the variants of a batch job as a list of them.
    params: Mapped[dict] = mapped_column(JSON)
    variants: Mapped[list] = mapped_column(JSON)
    # EditJob.region: {"words": ..., "inverse": ...}, or NULL for a whole-picture edit.
    region: Mapped[dict | None] = mapped_column(JSON)
    # EditJob.references: the reference pictures' digests, in order (NULL: none).
    inputs: Mapped[list | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    worker: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    node_ids: Mapped[list] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # How a failed or cancelled job's failure is counted (core.errors.failure_kind); NULL while it has not failed.
    failure_kind: Mapped[str | None] = mapped_column(String(64))
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now, onupdate=utc_now)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
