"""A new photo is shrunk to its editor's working size in the background as soon as it is stored (JobQueue.prepare,
EditRunner.prepare); its edit uses that shrink, waiting for it when it is under way rather than making a second."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

from core import runner as runner_module
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey, EditJob, EditParams, NewNode
from core.editing import transfer
from core.picture_cache import PictureCache, working_key
from core.queue import EditQueue
from core.runner import EditRunner
from core.stored_images import encode_stored
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.chat import Chat
from tests.support.standins import StandInEditor, photo_like, working_size


class RecordingEditor(StandInEditor):
    """Keeps the pictures it was given."""

    def __init__(self) -> None:
        super().__init__(shift=(10, 10, 10))
        self.pictures: list[Image.Image] = []

    def edit(self, image, instruction, params, **kwargs):
        self.pictures.append(image.copy())
        return super().edit(image, instruction, params, **kwargs)


def background_done() -> None:
    runner_module._BACKGROUND.submit(lambda: None).result()  # one worker: everything submitted before is done


def stored_photo(pictures: PictureCache):
    """A runner, and a photo stored and kept decoded as the engine keeps an upload, with its root node."""
    background_done()  # nothing left over from an earlier test
    history, images, editor = InMemoryHistoryRepository(), InMemoryImageStore(), RecordingEditor()
    runner = EditRunner(editor, history, images, pictures=pictures)
    photo = photo_like((1000, 750))
    digest = images.put(encode_stored(photo))
    pictures.put(digest, photo.copy())
    conversation = history.conversation(ChatKey("test", "1", "1"))
    root = history.add_node(NewNode(conversation.id, None, digest, None, None, None))
    job = EditJob(conversation.id, "test:1", root.id, digest, "x", EditParams(seed=1))
    return runner, editor, photo, job


def counting_runner_shrinks(monkeypatch) -> list[int]:
    calls: list[int] = []
    real_shrink = transfer.shrink_for

    def counted(editor, picture):
        calls.append(1)
        return real_shrink(editor, picture)

    monkeypatch.setattr(runner_module, "shrink_for", counted)
    return calls


def test_a_prepared_photo_is_edited_from_its_background_shrink(monkeypatch) -> None:
    pictures = PictureCache()
    runner, editor, photo, job = stored_photo(pictures)
    runner.prepare(job.image_hash)
    background_done()
    size = working_size(photo.size)
    prepared = pictures.get(working_key(job.image_hash, size))
    assert np.array_equal(np.asarray(prepared), np.asarray(transfer.shrink_for(editor, photo)))
    own_shrinks = counting_runner_shrinks(monkeypatch)
    runner.run(job)
    assert own_shrinks == [] and np.array_equal(np.asarray(editor.pictures[0]), np.asarray(prepared))


def test_an_edit_waits_for_the_shrink_under_way_instead_of_making_a_second(monkeypatch) -> None:
    started, asked = threading.Event(), threading.Event()

    class Watched(PictureCache):
        def get(self, digest):
            if "@" in digest:  # the runner looks for the working-size picture
                asked.set()
            return super().get(digest)

    pictures = Watched()
    runner, editor, photo, job = stored_photo(pictures)
    real_shrink = transfer.shrink_for

    def slow_shrink(editor, picture):  # finishes only once the edit has looked for it
        started.set()
        assert asked.wait(10)
        return real_shrink(editor, picture)

    own_shrinks = counting_runner_shrinks(monkeypatch)
    monkeypatch.setattr(transfer, "shrink_for", slow_shrink)
    runner.prepare(job.image_hash)
    assert started.wait(10)
    runner.run(job)
    assert own_shrinks == []
    assert np.array_equal(np.asarray(editor.pictures[0]), np.asarray(real_shrink(editor, photo)))


def test_a_shrink_not_started_yet_is_called_off_and_the_edit_shrinks_for_itself(monkeypatch) -> None:
    pictures = PictureCache()
    runner, editor, photo, job = stored_photo(pictures)
    busy = threading.Event()
    runner_module._BACKGROUND.submit(busy.wait, 10)  # someone else's preparation holds the one worker
    own_shrinks = counting_runner_shrinks(monkeypatch)
    background_shrinks: list[int] = []
    real_shrink = transfer.shrink_for
    monkeypatch.setattr(transfer, "shrink_for", lambda *args: background_shrinks.append(1) or real_shrink(*args))
    try:
        runner.prepare(job.image_hash)
        runner.run(job)
    finally:
        busy.set()
    background_done()
    assert own_shrinks == [1] and background_shrinks == [1]  # the result's, for its next edit; not the photo's


def test_the_engine_hands_a_stored_photo_to_the_queue_to_prepare(history, image_store) -> None:
    import asyncio

    prepared: list[str] = []

    class Watching(EditQueue):
        def prepare(self, digest: str) -> None:
            prepared.append(digest)
            super().prepare(digest)

    async def talk() -> None:
        engine = ConversationEngine(history, image_store, Watching(EditRunner(RecordingEditor(), history,
                                                                              image_store)))
        await engine.start()
        try:
            await Chat(engine, ChatKey("test", "1", "alice")).photo()
        finally:
            await engine.close()

    asyncio.run(talk())
    [root] = history.tree(history.conversation(ChatKey("test", "1", "alice")).head_id)
    assert prepared == [root.image_hash]


def test_preparing_never_waits_for_a_model_being_loaded() -> None:
    from core.editing.registry import ModelRegistry, ModelSpec

    loading, release = threading.Event(), threading.Event()

    def load(spec):
        loading.set()
        assert release.wait(10)
        return RecordingEditor()

    models = ModelRegistry([ModelSpec("default", "pix2pix", "a/b"), ModelSpec("other", "pix2pix", "c/d")], load,
                           keep_loaded=2)
    pictures = PictureCache()
    runner = EditRunner(None, InMemoryHistoryRepository(), InMemoryImageStore(), models=models, pictures=pictures)
    loader = threading.Thread(target=models.editor, args=("other",))
    loader.start()
    try:
        assert loading.wait(10)  # the load holds the registry's lock from now on
        done = threading.Event()
        threading.Thread(target=lambda: (runner.prepare("some digest"), done.set()), daemon=True).start()
        assert done.wait(10), "prepare waited for the load"
        assert models.loaded_editor() is None and models.loaded_editor("other") is None
    finally:
        release.set()
        loader.join()
    assert models.loaded_editor("other") is not None
