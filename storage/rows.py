"""Rows to core.domain dataclasses and back: the conversions the repository and the job table share. A row is an ORM
object or a Core row: both are read by attribute.

A model edit's or a conversation's EditParams live in the long-standing columns (guidance, steps, seed, scheduler)
plus family, model and extras; NULL in those reads as the default model of family pix2pix, what rows from before
0011_models are.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.domain import ChatKey, Conversation, EditParams, Node, Region, Translation
from storage.models import ConversationRow, NodeRow


def params_from_row(row: ConversationRow | NodeRow) -> EditParams:
    return EditParams(row.text_guidance, row.image_guidance, row.steps, row.seed, row.scheduler,
                      family=row.family or "pix2pix", extras=row.extras or (), model=row.model or "")


def params_columns(params: EditParams) -> dict:
    """params as a row's columns; the default model's pix2pix values leave family, model and extras NULL, as rows have
    always been."""
    return {
        "text_guidance": params.text_guidance,
        "image_guidance": params.image_guidance,
        "steps": params.steps,
        "seed": params.seed,
        "scheduler": params.scheduler,
        "family": None if params.family == "pix2pix" else params.family,
        "model": params.model or None,
        "extras": dict(params.extras) or None,
    }


def conversation_from_row(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        key=ChatKey(row.platform, row.chat_id, row.user_id),
        head_id=row.head_id,
        settings=params_from_row(row),
        region=region_from_columns(row.region_words, row.region_inverse),
        references=tuple(row.next_inputs or ()),
    )


def node_from_row(row: NodeRow) -> Node:
    return Node(
        id=row.id,
        conversation_id=row.conversation_id,
        parent_id=row.parent_id,
        image_hash=row.image_hash,
        instruction=row.instruction,
        params=None if row.text_guidance is None else params_from_row(row),
        seconds=row.seconds,
        created_at=as_utc(row.created_at),
        visit=row.visit,
        translation=to_translation(row.original_instruction, row.language),
        region=region_from_columns(row.region_words, row.region_inverse),
        source=row.source,
        inputs=tuple(row.inputs or ()),
    )


def region_columns(region: Region | None) -> tuple[str | None, bool]:
    """A region as its two columns (words, inverse): (None, False) for the whole picture."""
    return (None, False) if region is None else (region.words, region.inverse)


def region_from_columns(words: str | None, inverse: bool | None) -> Region | None:
    return None if words is None else Region(words, bool(inverse))


def to_translation(original: str | None, language: str | None) -> Translation | None:
    """The translation a node or job row records in its two columns; None for an English instruction."""
    return None if original is None or language is None else Translation(original, language)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC), PostgreSQL aware ones: return aware UTC either way."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
