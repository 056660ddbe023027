"""Fixtures of the distributed tests: a Redis key prefix of their own (skipped when Redis is not reachable) and a
cluster on SQLite or PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

redis_module = pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from storage.migrate import upgrade  # noqa: E402
from tests.support.cluster import REDIS_URL, Cluster  # noqa: E402
from tests.support.services import PrivateRedis  # noqa: E402


@pytest.fixture
def redis_prefix():
    client = redis_module.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis_module.ConnectionError:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable")
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def _cluster(url: str, tmp_path: Path, prefix: str):
    upgrade(url)  # once, before any worker starts
    cluster = Cluster(url, tmp_path, prefix)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(tmp_path, redis_prefix):
    yield from _cluster(f"sqlite:///{tmp_path / 'editbot.sqlite3'}", tmp_path, redis_prefix)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_cluster(request, tmp_path, redis_prefix):
    url = f"sqlite:///{tmp_path / 'editbot.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue(
        "postgres_url")
    yield from _cluster(url, tmp_path, redis_prefix)


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own, which it may stop and restart (its data kept across restarts)."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_cluster(tmp_path, private_redis):
    """A cluster on SQLite and the test's own Redis."""
    url = f"sqlite:///{tmp_path / 'editbot.sqlite3'}"
    upgrade(url)
    cluster = Cluster(url, tmp_path, "faults", redis_url=private_redis.url)
    try:
        yield cluster
    finally:
        cluster.stop()
