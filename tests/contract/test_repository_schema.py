"""The database schema under the HistoryRepository: the migrations build exactly the models' schema, and SQLite's
settings (write-ahead log, foreign keys, a full fsync except for bookkeeping writes)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.database import make_engine
from storage.migrate import upgrade
from storage.models import Base
from tests.support.history_backends import sqlite_url


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migrations_build_exactly_the_models_schema(database, tmp_path, request):
    url = sqlite_url(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade(url)
    upgrade(url)  # a second run finds nothing to do
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            if database == "sqlite":
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        engine.dispose()


def test_sqlite_bookkeeping_writes_skip_the_fsync_and_every_other_write_waits_for_it(tmp_path):
    from storage.database import bookkeeping

    engine = make_engine(sqlite_url(tmp_path))
    try:
        for which, expected in ((engine, 2), (bookkeeping(engine), 1), (engine, 2)):  # FULL, NORMAL, FULL again
            with which.begin() as connection:
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == expected
    finally:
        engine.dispose()


def test_sqlite_repository_commits_nodes_with_a_full_fsync_and_reads_a_known_conversation_without_a_write_lock(
        tmp_path):
    from sqlalchemy import event

    from core.domain import NewNode
    from storage.repository import SqlHistoryRepository
    from tests.support.history_backends import ALICE

    url = sqlite_url(tmp_path)
    upgrade(url)
    engine = make_engine(url)
    statements, commits = [], []
    event.listen(engine, "before_cursor_execute", lambda _c, _r, statement, *_: statements.append(statement))
    event.listen(engine, "commit", lambda connection: commits.append(
        connection.exec_driver_sql("PRAGMA synchronous").scalar()))
    try:
        repo = SqlHistoryRepository(engine)
        conversation = repo.conversation(ALICE)  # made: a write
        statements.clear()
        assert repo.conversation(ALICE) == conversation
        assert not [statement for statement in statements if "IMMEDIATE" in statement]  # no write lock to wait for
        commits.clear()
        root = repo.add_node(NewNode(conversation.id, None, "root", None, None, None))
        assert commits == [2]  # FULL: a node's id must never be handed out twice
        commits.clear()
        repo.touch(root.id)
        repo.note_edit(conversation.id, root.id, "make it night")
        repo.forget_edit(conversation.id)
        assert commits == [1, 1, 1]  # NORMAL: bookkeeping
    finally:
        engine.dispose()
