"""A failed job's kind in its row (EditCancelled, UnsafeImage, ..., or "internal"), so metrics need not read its line.

Revision ID: 0004_job_failure_kind
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_job_failure_kind"
down_revision: str | None = "0003_conversation_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Rows failed before this revision kept only their line: the one for a bug or a device failure is "internal", any
# other a refusal of unknown class ("UserError"), as metrics counted them until now.
FAILED_ON_OUR_SIDE = "The edit failed on my side; nothing was changed. Please try again."


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("failure_kind", sa.String(length=64), nullable=True))
    jobs = sa.table("jobs", sa.column("state", sa.String), sa.column("error", sa.Text),
                    sa.column("failure_kind", sa.String))
    op.execute(jobs.update().where(jobs.c.state == "cancelled").values(failure_kind="EditCancelled"))
    op.execute(jobs.update().where(jobs.c.state == "failed").values(failure_kind=sa.case(
        ((jobs.c.error.is_(None)) | (jobs.c.error == FAILED_ON_OUR_SIDE), "internal"), else_="UserError")))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("failure_kind")
