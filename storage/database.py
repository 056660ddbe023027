"""Engines for SQLite and PostgreSQL, tuned so the same repository code is safe on both.

SQLite is made crash-safe and concurrency-safe: write-ahead logging, synchronous=FULL, foreign keys on, a 30 s
busy timeout, and every transaction opened with BEGIN IMMEDIATE. Transactions on an engine from `bookkeeping()`
commit with synchronous=NORMAL instead: in WAL mode that syncs the log at the next FULL commit or checkpoint, not
at this one. A killed or crashed process still loses none of them; a power cut or an OS crash may take back the
last ones, which only say when a node was last used and which edit was running (an fsync per commit cost 4 ms on
this project's machines, and an edit made three such commits while its person waited). Nodes, and so the ids that
buttons carry, are always committed with FULL: taken back, an id would be handed out again. Taking the write lock up front (instead of on the
first write, as a plain BEGIN does) means a transaction never has to upgrade a read lock, the case SQLite answers
with "database is locked" at once instead of waiting. Transactions run on an engine from `read_only()` use a plain
BEGIN, so reads never queue behind writers.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000
_READ_ONLY_OPTION = "editbot_read_only"
_BOOKKEEPING_OPTION = "editbot_bookkeeping"


def make_engine(url: str | URL) -> Engine:
    """An Engine for a SQLAlchemy URL: SQLite (parent folders created, pragmas set) or anything else as given,
    e.g. postgresql+psycopg://user@host/db."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    _configure_sqlite(engine)
    return engine


def read_only(engine: Engine) -> Engine:
    """The same engine (sharing its pool) for transactions that only read: on SQLite they start with a plain BEGIN."""
    return engine.execution_options(**{_READ_ONLY_OPTION: True})


def bookkeeping(engine: Engine) -> Engine:
    """The same engine for writes a power cut may take back (on SQLite: committed without waiting for an fsync)."""
    return engine.execution_options(**{_BOOKKEEPING_OPTION: True})


def _configure_sqlite(engine: Engine) -> None:
    # SQLAlchemy's documented recipe for taking over transaction control from the pysqlite driver.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # stop pysqlite emitting its own (deferred) BEGIN
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        options = connection.get_execution_options()
        if options.get(_READ_ONLY_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        # Set on every write (connections are pooled): it applies to this transaction's commit.
        connection.exec_driver_sql(f"PRAGMA synchronous = {'NORMAL' if options.get(_BOOKKEEPING_OPTION) else 'FULL'}")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
