"""Conversation state between messages: the last grid offered (/pick) and the held-back instruction (/anyway).

They were process dictionaries: lost on restart and not shared between front-ends.

Revision ID: 0003_conversation_state
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_conversation_state"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("offer", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("held_parent_id", Id, nullable=True))
        batch.add_column(sa.Column("held_instruction", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("held_instruction")
        batch.drop_column("held_parent_id")
        batch.drop_column("offer")
