"""S3ImageStore against moto's S3 server (a real HTTP endpoint on a free port); skipped when moto is not installed."""

from __future__ import annotations

import hashlib
import io
import logging
import socket
import uuid

import pytest
from PIL import Image

from core.images import encode_png
from core.stored_images import encode_preview, encode_stored

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server", reason="moto's S3 server (moto[server]) is not installed")

from storage.s3 import S3ImageStore  # noqa: E402


@pytest.fixture(scope="module")
def endpoint():
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def store(client) -> S3ImageStore:
    store = S3ImageStore(client, f"test-{uuid.uuid4().hex[:12]}")
    store.ensure_bucket()
    return store


def test_put_returns_the_sha256_and_get_returns_the_bytes(store):
    data = b"\x89PNG pretend image"
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.get(digest) == data
    assert store.exists(digest)


def test_each_object_is_labelled_with_its_own_format(store, client):
    picture = Image.new("RGB", (8, 8), "teal")
    older = io.BytesIO()
    picture.save(older, format="WEBP", lossless=True)
    for data, mime in ((encode_stored(picture), "image/jxl"), (encode_preview(picture), "image/jpeg"),
                       (older.getvalue(), "image/webp"), (encode_png(picture), "image/png")):
        head = client.head_object(Bucket=store.bucket, Key=store.key_for(store.put(data)))
        assert head["ContentType"] == mime


def test_putting_the_same_bytes_twice_keeps_one_object(store, client):
    first = store.put(b"same")
    second = store.put(b"same")
    assert first == second
    listed = client.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [item["Key"] for item in listed] == [store.key_for(first)]


def test_unknown_and_malformed_digests_are_key_errors(store):
    with pytest.raises(KeyError):
        store.get("0" * 64)
    with pytest.raises(KeyError):
        store.get("../../etc/passwd")
    assert not store.exists("0" * 64)
    assert not store.exists("not a digest")


def test_ensure_bucket_is_idempotent(store):
    store.ensure_bucket()
    assert store.get(store.put(b"after")) == b"after"


def test_sweep_removes_only_unreferenced_objects_past_the_grace_period(store):
    kept = store.put(b"referenced")
    orphan = store.put(b"orphan")
    assert store.sweep({kept}) == 0, "young objects are spared"
    assert store.exists(orphan)

    store.grace_seconds = -60  # everything counts as old now
    assert store.sweep({kept}) == 1
    assert store.exists(kept)
    assert not store.exists(orphan)


def test_sweep_deletes_in_batches_beyond_one_request(store):
    store.grace_seconds = -60
    digests = {store.put(f"image {n}".encode()) for n in range(1003)}
    keep = set(list(digests)[:2])
    assert store.sweep(keep) == 1001
    assert all(store.exists(digest) for digest in keep)
