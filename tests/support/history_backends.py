"""The HistoryRepository backends the contract tests run on (tests/contract/conftest.py), and the people and
settings those tests record: the in-memory fake, SQLite, and PostgreSQL when EDITBOT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from core.domain import ChatKey, EditParams
from core.ports import HistoryRepository
from storage.database import make_engine
from storage.migrate import upgrade
from storage.repository import SqlHistoryRepository

ALICE = ChatKey("telegram", "100", "1")
BOB = ChatKey("telegram", "100", "2")  # same chat as Alice, another person
USED = EditParams(text_guidance=9.0, image_guidance=1.2, steps=30, seed=2**32 - 1, scheduler="euler-a")


@dataclass
class Backend:
    repository: HistoryRepository
    engine: Engine | None = None  # None for the in-memory fake


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'nested' / 'editbot.sqlite3'}"


def sql_backend(url: str) -> Iterator[Backend]:
    upgrade(url)
    engine = make_engine(url)
    try:
        yield Backend(SqlHistoryRepository(engine), engine)
    finally:
        engine.dispose()
