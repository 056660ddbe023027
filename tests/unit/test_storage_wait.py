"""The image store out while a person is answered: a finished edit waits for its picture (the person told once) and
is delivered once storage is back; anything else gets one clear line. Never "something went wrong"."""

from __future__ import annotations

import pytest

from core import storage_wait
from core.errors import SOMETHING_WENT_WRONG, StorageUnavailable
from tests.support.chat import images

OUT = "Storage is not answering right now"


def storage_out(image_store, monkeypatch, reads: int | None) -> list[str]:
    """The store's reads fail as an outage, the next `reads` of them (all, when None); the digests asked for."""
    asked: list[str] = []
    real_get = image_store.get

    def get(digest: str) -> bytes:
        asked.append(digest)
        if reads is None or len(asked) <= reads:
            raise StorageUnavailable()
        return real_get(digest)

    monkeypatch.setattr(image_store, "get", get)
    return asked


async def test_a_finished_edit_waits_for_storage_and_is_delivered(chat, image_store, monkeypatch):
    await chat.photo()
    asked = storage_out(image_store, monkeypatch, reads=2)
    replies = await chat("make it night")
    texts = [reply.text for reply in replies if not hasattr(reply, "image")]
    assert texts.count(storage_wait.WAITING_LINE) == 1 and len(asked) == 3, texts
    assert len(images(replies)) == 1 and not any(getattr(reply, "error", False) for reply in replies)


async def test_storage_that_stays_out_gets_one_line_saying_the_edit_is_kept(chat, image_store, monkeypatch):
    await chat.photo()
    monkeypatch.setattr(storage_wait, "GIVE_UP_SECONDS", 1.0)
    storage_out(image_store, monkeypatch, reads=None)
    replies = await chat("make it night")
    errors = [reply.text for reply in replies if getattr(reply, "error", False)]
    assert errors == [storage_wait.STILL_OUT_LINE] and not images(replies), replies


async def test_other_commands_say_storage_is_out(chat, image_store, monkeypatch):
    await chat.photo()
    await chat("make it night")
    storage_out(image_store, monkeypatch, reads=None)
    [reply] = await chat("/undo")
    assert reply.error and reply.text.startswith(OUT) and reply.text != SOMETHING_WENT_WRONG, reply.text


def test_s3_unreachable_is_storage_unavailable_and_an_image_store_outage():
    botocore = pytest.importorskip("botocore.exceptions")
    from bot.distributed.outage import IMAGE_STORE, outage_of
    from storage.s3 import S3ImageStore

    class Refusing:
        def get_object(self, **_):
            raise botocore.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    with pytest.raises(StorageUnavailable) as raised:
        S3ImageStore(Refusing(), "bucket").get("0" * 64)
    assert outage_of(raised.value) == IMAGE_STORE
