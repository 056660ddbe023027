"""Regions: the region a conversation's instructions edit (/only, /except), the one each node was confined to, and
the one a distributed job carries.

Revision ID: 0010_regions
Revises: 0004_job_failure_kind
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_regions"
down_revision: str | None = "0009_interrupted_edits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing conversations and nodes are whole-picture ones: NULL words. Nullable columns without a default, so
    # SQLite adds them in place (a NOT NULL column with a default would make batch mode copy the table, which its
    # foreign keys refuse); NULL inverse reads as False.
    for table in ("conversations", "nodes"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("region_words", sa.Text(), nullable=True))
            batch_op.add_column(sa.Column("region_inverse", sa.Boolean(), nullable=True))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("region", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("region")
    for table in ("nodes", "conversations"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("region_inverse")
            batch_op.drop_column("region_words")
