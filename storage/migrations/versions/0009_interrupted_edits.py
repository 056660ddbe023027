"""The edit a conversation has waiting or running in the embedded mode, so a restart can say it was interrupted.

The in-process queue loses its jobs when the process ends (SIGTERM past the grace period, SIGKILL, a crash): the
conversation keeps the edit's parent and instruction until the edit ends, and at start-up each one left is offered
again. One per conversation, as the queue allows.

Revision ID: 0009_interrupted_edits
Revises: 0008_node_ids
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_interrupted_edits"
down_revision: str | None = "0008_node_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("pending_parent_id", Id, nullable=True))
        batch.add_column(sa.Column("pending_instruction", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("pending_instruction")
        batch.drop_column("pending_parent_id")
