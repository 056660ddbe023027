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
