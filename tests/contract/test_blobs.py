"""The file image store (and, where the contract is shared, the in-memory fake)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from storage.blobs import FileImageStore
from storage.memory import InMemoryImageStore

PNG_ISH = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
LONG_AGO = time.time() - 10 * 24 * 3600


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    return FileImageStore(tmp_path / "images") if request.param == "file" else InMemoryImageStore()


def _age(store: FileImageStore, digest: str) -> None:
    os.utime(store.path_for(digest), (LONG_AGO, LONG_AGO))


def _all_files(store: FileImageStore) -> list[str]:
    return sorted(path.name for path in store.root.rglob("*") if path.is_file())


def test_put_returns_the_sha256_of_the_content_and_get_gives_it_back(store):
    digest = store.put(PNG_ISH)
    assert digest == hashlib.sha256(PNG_ISH).hexdigest()
    assert store.get(digest) == PNG_ISH
    assert store.exists(digest)


def test_unknown_or_malformed_digests_are_key_errors(store):
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    for digest in (missing, "../../etc/passwd", "ABC", ""):
        with pytest.raises(KeyError):
            store.get(digest)
        assert not store.exists(digest)


def test_putting_the_same_bytes_twice_keeps_one_copy(store):
    assert store.put(PNG_ISH) == store.put(PNG_ISH)
    other = store.put(b"another image")
    assert store.get(other) == b"another image"
    if isinstance(store, FileImageStore):
        assert len(_all_files(store)) == 2


def test_files_are_fanned_out_by_digest_and_no_temporary_file_is_left(tmp_path):
    store = FileImageStore(tmp_path)
    digest = store.put(PNG_ISH)
    assert store.path_for(digest) == tmp_path / digest[:2] / digest[2:4] / f"{digest}.png"
    assert store.path_for(digest).read_bytes() == PNG_ISH
    assert _all_files(store) == [f"{digest}.png"]


def test_sweep_removes_only_old_unreferenced_files(tmp_path):
    store = FileImageStore(tmp_path, grace_seconds=3600)
    kept_old = store.put(b"referenced")
    unreferenced_old = store.put(b"forgotten")
    unreferenced_young = store.put(b"just put, row not yet committed")
    _age(store, kept_old)
    _age(store, unreferenced_old)

    assert store.sweep(keep={kept_old}) == 1
    assert store.exists(kept_old) and store.exists(unreferenced_young)
    assert not store.exists(unreferenced_old)
    assert store.sweep(keep={kept_old}) == 0


def test_putting_existing_content_again_protects_it_from_the_next_sweep(tmp_path):
    store = FileImageStore(tmp_path, grace_seconds=3600)
    digest = store.put(PNG_ISH)
    _age(store, digest)
    store.put(PNG_ISH)  # sent again: a node referring to it is about to be committed
    assert store.sweep(keep=set()) == 0
    assert store.get(digest) == PNG_ISH


def test_sweep_removes_old_temporary_files_left_by_a_crash(tmp_path):
    store = FileImageStore(tmp_path, grace_seconds=3600)
    digest = store.put(PNG_ISH)
    folder = store.path_for(digest).parent
    old_leftover, young_leftover = folder / ".tmp-crashed", folder / ".tmp-being-written"
    old_leftover.write_bytes(b"half an ima")
    young_leftover.write_bytes(b"half an ima")
    os.utime(old_leftover, (LONG_AGO, LONG_AGO))

    assert store.sweep(keep={digest}) == 1
    assert not old_leftover.exists() and young_leftover.exists()
    assert store.get(digest) == PNG_ISH


def test_memory_store_sweep_honours_keep_and_grace():
    patient, eager = InMemoryImageStore(grace_seconds=3600), InMemoryImageStore(grace_seconds=0)
    for store in (patient, eager):
        kept, dropped = store.put(b"kept"), store.put(b"dropped")
        assert store.sweep(keep={kept}) == (1 if store is eager else 0)
        assert store.exists(kept) and store.exists(dropped) == (store is patient)
