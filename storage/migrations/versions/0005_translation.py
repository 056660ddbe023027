"""Translated instructions: a node (and the job that makes it) keeps the person's own words and their language
beside the English the model was given.

Revision ID: 0005_translation
Revises: 0004_job_failure_kind
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_translation"
down_revision: str | None = "0004_job_failure_kind"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("nodes", "jobs")


def upgrade() -> None:
    # Nullable columns: existing rows (English instructions, photos) need no value.
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("original_instruction", sa.Text(), nullable=True))
            batch_op.add_column(sa.Column("language", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("language")
            batch_op.drop_column("original_instruction")
