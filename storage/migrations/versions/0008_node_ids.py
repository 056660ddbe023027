"""Node ids are never reused, using a node counts for retention, and what each node stores is counted.

SQLite gave a purged node's id to the next node when the purge removed the newest rows, so a button under an old
result could act on someone's new edit: the nodes table gets AUTOINCREMENT (a rebuild of the table on SQLite;
PostgreSQL's sequences never go back already). nodes.used_at records the last visit (undo, goto, a button), so a
tree someone browsed today is not purged. nodes.stored_bytes is what the node's picture takes in the image store
(EDITBOT_MAX_STORED_MB_PER_PERSON adds them up); 0 for the nodes before it.

Revision ID: 0008_node_ids
Revises: 0004_job_failure_kind
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_node_ids"
down_revision: str | None = "0005_translation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    columns = [sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
               sa.Column("stored_bytes", sa.BigInteger(), nullable=False, server_default="0")]
    if op.get_bind().dialect.name != "sqlite":
        for column in columns:
            op.add_column("nodes", column)
        return
    # SQLite adds AUTOINCREMENT only by rebuilding the table, which drops the old one; foreign keys are on and cannot
    # be switched off inside the migration's transaction, so every link to a node (heads, jobs, parents) steps aside
    # during the rebuild and comes back after it.
    op.execute("CREATE TEMPORARY TABLE heads_0008 AS SELECT id, head_id FROM conversations WHERE head_id IS NOT NULL")
    op.execute("CREATE TEMPORARY TABLE parents_0008 AS SELECT id, parent_id FROM nodes WHERE parent_id IS NOT NULL")
    op.execute("CREATE TEMPORARY TABLE jobs_0008 AS SELECT * FROM jobs")
    op.execute("UPDATE conversations SET head_id = NULL")
    op.execute("UPDATE nodes SET parent_id = NULL")
    op.execute("DELETE FROM jobs")
    with op.batch_alter_table("nodes", recreate="always", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for column in columns:
            batch.add_column(column)
    op.execute("UPDATE nodes SET parent_id = (SELECT parent_id FROM parents_0008 WHERE parents_0008.id = nodes.id)")
    op.execute("UPDATE conversations SET head_id = (SELECT head_id FROM heads_0008 WHERE heads_0008.id = "
               "conversations.id)")
    op.execute("INSERT INTO jobs SELECT * FROM jobs_0008")
    for table in ("heads_0008", "parents_0008", "jobs_0008"):
        op.execute(f"DROP TABLE {table}")

def downgrade() -> None:
    # AUTOINCREMENT stays on SQLite: taking it away would only let ids be reused again.
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("stored_bytes")
        batch.drop_column("used_at")
