"""Storage speed figures: `python -m storage.bench [DATABASE_URL]` (default: SQLite in a temporary folder).

Prints how long the image store and the repository take for what the bot does per edit. Figures, not assertions:
they depend on the disk (every SQLite commit and every put is fsynced).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.domain import ChatKey, EditParams, NewNode
from storage.blobs import FileImageStore
from storage.database import make_engine
from storage.migrate import upgrade
from storage.repository import SqlHistoryRepository

IMAGE_BYTES = 400 * 1024  # about a 512x512 PNG
THREADS, EDITS_PER_THREAD = 50, 5
CHAIN_DEPTH = 200


def _report(label: str, count: int, run: Callable[[], None]) -> None:
    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    print(f"{label:<48} {count:>5} in {elapsed:6.2f} s   {1000 * elapsed / count:7.2f} ms each")


def main(url: str | None, folder: Path) -> None:
    url = url or f"sqlite:///{folder / 'bench.sqlite3'}"
    upgrade(url)
    repository = SqlHistoryRepository(make_engine(url))
    store = FileImageStore(folder / "images")
    images = [os.urandom(IMAGE_BYTES) for _ in range(50)]
    print(f"database: {url.split('@')[-1]}")

    digests: list[str] = []
    _report("image store put (400 KiB, fsynced)", len(images), lambda: digests.extend(map(store.put, images)))
    _report("image store get", len(digests), lambda: [store.get(digest) for digest in digests])

    conversation = repository.conversation(ChatKey("bench", "chain", "person"))
    head: list[int | None] = [None]

    def chain() -> None:
        for _ in range(CHAIN_DEPTH):
            head[0] = repository.add_node(NewNode(conversation.id, head[0], "0" * 64, "edit", EditParams(seed=1), 1.0)).id

    _report("add_node, one thread", CHAIN_DEPTH, chain)
    _report(f"path() of a {CHAIN_DEPTH}-deep node", 20, lambda: [repository.path(head[0]) for _ in range(20)])

    def person(number: int) -> None:
        own = repository.conversation(ChatKey("bench", "group", str(number)))
        parent = None
        for _ in range(EDITS_PER_THREAD):
            parent = repository.add_node(NewNode(own.id, parent, "0" * 64, "edit", EditParams(seed=1), 1.0)).id

    def crowd() -> None:
        workers = [threading.Thread(target=person, args=(n,)) for n in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    _report(f"add_node, {THREADS} threads at once", THREADS * EDITS_PER_THREAD, crowd)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        main(sys.argv[1] if len(sys.argv) > 1 else None, Path(scratch))
