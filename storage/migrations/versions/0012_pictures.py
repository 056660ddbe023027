"""Pictures: what each reference picture takes in the image store, so the per-person storage limit counts them.

Revision ID: 0012_pictures
Revises: 0011_models
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_pictures"
down_revision: str | None = "0011_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # References sent before this was recorded have no row: they count as nothing, as node pictures from before
    # stored_bytes did.
    op.create_table(
        "pictures",
        sa.Column("image_hash", sa.String(64), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("image_hash", name=op.f("pk_pictures")),
    )


def downgrade() -> None:
    op.drop_table("pictures")
