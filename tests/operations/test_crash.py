"""Killing the process at any moment must leave a sound database whose every node's image is on disk, whole."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.blobs import FileImageStore
from storage.database import make_engine
from storage.migrate import upgrade
from storage.models import ConversationRow, NodeRow

ROUNDS = 8
REPO_ROOT = Path(__file__).resolve().parents[2]

# Puts an image, then records a node for it, forever; says "writing" once the first node is committed.
WRITER = textwrap.dedent(
    """
    import os, random, sys
    from pathlib import Path
    from core.domain import ChatKey, EditParams, NewNode
    from storage.blobs import FileImageStore
    from storage.database import make_engine
    from storage.repository import SqlHistoryRepository

    url, image_dir = sys.argv[1], Path(sys.argv[2])
    repository, store = SqlHistoryRepository(make_engine(url)), FileImageStore(image_dir)
    conversation = repository.conversation(ChatKey("crash", "chat", "person"))

    def record_one(head):
        image = b"\\x89PNG\\r\\n\\x1a\\n" + os.urandom(random.randint(1, 64 * 1024))
        digest = store.put(image)
        if head is None:
            return repository.add_node(NewNode(conversation.id, None, digest, None, None, None)).id
        params = EditParams(seed=random.randint(0, 2**32 - 1))
        return repository.add_node(NewNode(conversation.id, head, digest, "edit", params, 0.5)).id

    head = record_one(conversation.head_id)
    print("writing", flush=True)
    while True:
        head = record_one(head)
    """
)


@pytest.mark.slow
def test_killing_the_writer_at_random_moments_never_corrupts_anything(tmp_path):
    url = f"sqlite:///{tmp_path / 'editbot.sqlite3'}"
    image_dir = tmp_path / "images"
    upgrade(url)
    chooser = random.Random()
    committed = 0
    for _ in range(ROUNDS):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(image_dir)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert writer.stdout.readline().strip() == "writing", "the writer died before writing anything"
            time.sleep(chooser.uniform(0.0, 0.4))
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        assert writer.returncode == -signal.SIGKILL

        now_committed = _check_everything_committed_is_whole(url, FileImageStore(image_dir))
        assert now_committed > committed  # nothing committed before was lost, and the writer made progress
        committed = now_committed


def _check_everything_committed_is_whole(url: str, store: FileImageStore) -> int:
    """Assert the database is sound and every node's image exists and matches its hash; return the node count."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
            nodes = connection.execute(select(NodeRow.id, NodeRow.image_hash)).all()
            head_id = connection.scalar(select(ConversationRow.head_id))
    finally:
        engine.dispose()
    for _, digest in nodes:
        assert hashlib.sha256(store.get(digest)).hexdigest() == digest
    assert head_id == max(node_id for node_id, _ in nodes)
    return len(nodes)
