"""Decoded pictures kept per process (core.picture_cache), and what the engine stores and sends for a phone JPEG
carrying a GPS position: the stored root is the upload's own JPEG without metadata, the reply a JPEG preview without
metadata, and every picture decodes to the same pixels whether it comes from the cache or from the store."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.picture_cache import PictureCache, decoded_pictures
from core.queue import EditQueue
from core.runner import EditRunner
from core.stored_images import decode_stored, encode_stored
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.chat import Chat, images
from tests.support.fakes import FakeEditor
from tests.support.standins import photo_like
from tests.unit.test_stored_images import assert_no_metadata, phone_jpeg


class InputRecordingEditor(FakeEditor):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[Image.Image] = []

    def edit(self, image, instruction, params, **kwargs):
        self.inputs.append(image.copy())
        return super().edit(image, instruction, params, **kwargs)


def solid(colour, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_a_cached_picture_is_a_copy_that_callers_cannot_change() -> None:
    cache = PictureCache()
    cache.put("a" * 64, solid((10, 20, 30)))
    first = cache.get("a" * 64)
    first.paste((255, 0, 0), (0, 0, 40, 30))  # a caller drawing on what it got
    assert cache.get("a" * 64).getpixel((0, 0)) == (10, 20, 30)
    assert cache.get("b" * 64) is None


def test_the_least_recently_used_picture_goes_first_when_full() -> None:
    one_picture = 40 * 30 * 3
    cache = PictureCache(max_bytes=2 * one_picture)
    cache.put("a" * 64, solid((1, 1, 1)))
    cache.put("b" * 64, solid((2, 2, 2)))
    cache.get("a" * 64)  # now the most recently used
    cache.put("c" * 64, solid((3, 3, 3)))
    assert "a" * 64 in cache and "c" * 64 in cache and "b" * 64 not in cache
    cache.put("d" * 64, solid((4, 4, 4), size=(400, 300)))  # larger than the whole cache: not kept
    assert "d" * 64 not in cache and "a" * 64 in cache


def test_load_decodes_once_and_never_serves_a_picture_whose_file_is_gone() -> None:
    store, cache = InMemoryImageStore(), PictureCache()
    photo = photo_like((64, 48))
    digest = store.put(encode_stored(photo))
    assert np.array_equal(np.asarray(cache.load(digest, store)), np.asarray(photo))
    assert digest in cache
    other = store.put(encode_stored(solid((9, 9, 9))))
    assert cache.load(other, store).getpixel((0, 0)) == (9, 9, 9)  # each digest its own picture
    assert np.array_equal(np.asarray(cache.load(digest, store)), np.asarray(photo))
    empty = InMemoryImageStore()  # the same digest, its file purged
    try:
        cache.load(digest, empty)
    except KeyError:
        pass
    else:
        raise AssertionError("a picture whose file is gone was served from the cache")


async def test_a_phone_jpeg_with_gps_is_stored_and_sent_without_metadata_and_edits_see_the_stored_pixels() -> None:
    history, store = InMemoryHistoryRepository(), InMemoryImageStore()
    editor = InputRecordingEditor()
    engine = ConversationEngine(history, store, EditQueue(EditRunner(editor, history, store)), jpeg_previews=True)
    await engine.start()
    try:
        chat = Chat(engine, ChatKey("test", "chat-1", "alice"))
        upload = phone_jpeg((320, 240))
        [reply] = images(await chat.photo("make it night", data=upload))
    finally:
        await engine.close()
    nodes = history.path(reply.node_id)
    root, edited = (store.get(node.image_hash) for node in nodes)
    assert root.startswith(b"\xff\xd8") and len(root) < len(upload)  # the upload's own JPEG, metadata cut out
    for data in (root, edited, reply.image):
        assert_no_metadata(data)
    assert reply.image.startswith(b"\xff\xd8")  # the preview is a JPEG
    # what the editor was given is what the stored root decodes to, cached or not
    assert np.array_equal(np.asarray(editor.inputs[0]), np.asarray(decode_stored(root)))
    for node in nodes:
        assert np.array_equal(np.asarray(decoded_pictures.load(node.image_hash, store)),
                              np.asarray(decode_stored(store.get(node.image_hash))))
