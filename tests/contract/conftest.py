"""The repository every HistoryRepository contract test runs against: the in-memory fake, SQLite and PostgreSQL
must behave alike. PostgreSQL runs when EDITBOT_TEST_POSTGRES_URL is set (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/test); each test gets a fresh schema of its own, dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.ports import HistoryRepository
from storage.memory import InMemoryHistoryRepository
from tests.support.history_backends import Backend, sql_backend, sqlite_url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request, tmp_path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend(InMemoryHistoryRepository())
    elif request.param == "sqlite":
        yield from sql_backend(sqlite_url(tmp_path))
    else:
        yield from sql_backend(request.getfixturevalue("postgres_url"))


@pytest.fixture
def repo(backend) -> HistoryRepository:
    return backend.repository
