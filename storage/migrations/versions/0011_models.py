"""Models: the model a conversation's next edit runs on (family, name, the family's own values) with the reference
pictures waiting for it; the model, weights source, values and reference pictures of each node; a job's references.

Revision ID: 0011_models
Revises: 0010_regions
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_models"
down_revision: str | None = "0010_regions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without defaults, so SQLite adds them in place (as 0010 explains); NULL reads as the default
    # model of family pix2pix with no extra values and no references: what every existing row is.
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("family", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("model", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("extras", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("next_inputs", sa.JSON(), nullable=True))
    with op.batch_alter_table("nodes") as batch_op:
        batch_op.add_column(sa.Column("family", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("model", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("source", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("extras", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("inputs", sa.JSON(), nullable=True))
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("inputs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("inputs")
    with op.batch_alter_table("nodes") as batch_op:
        for column in ("inputs", "extras", "source", "model", "family"):
            batch_op.drop_column(column)
    with op.batch_alter_table("conversations") as batch_op:
        for column in ("next_inputs", "extras", "model", "family"):
            batch_op.drop_column(column)
