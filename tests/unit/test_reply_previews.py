"""A result's reply JPEG is encoded by the edit runner beside the node's own encoding, storing and recording
(core/reply_previews.py): the reply shows exactly the JPEG of the stored picture, a failure while storing leaves
neither a node nor a preview, and jobs whose results are not shown one by one make none."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from core.conversation.engine import ConversationEngine
from core.domain import ChatKey, EditJob, EditParams, NewNode
from core.reply_previews import ReplyPreviews, reply_previews
from core.queue import EditQueue
from core.runner import EditRunner
from core.stored_images import decode_stored, encode_preview, encode_stored
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.chat import images, texts
from tests.support.standins import StandInEditor, photo_like


def runner_with_a_root(previews: ReplyPreviews, history=None, store=None):
    history, store = history or InMemoryHistoryRepository(), store or InMemoryImageStore()
    runner = EditRunner(StandInEditor(shift=(10, 10, 10)), history, store, previews=previews)
    conversation = history.conversation(ChatKey("test", "1", "1"))
    root = history.add_node(NewNode(conversation.id, None, store.put(encode_stored(photo_like((640, 480)))),
                                    None, None, None))
    return runner, store, conversation, root


def test_the_preview_is_made_before_the_node_is_recorded_and_is_the_stored_pictures_jpeg() -> None:
    previews = ReplyPreviews()
    offered_when_recorded = []

    class Watching(InMemoryHistoryRepository):
        def add_node(self, new: NewNode):
            offered_when_recorded.append(new.parent_id is None or new.image_hash in previews._previews)
            return super().add_node(new)

    runner, store, conversation, root = runner_with_a_root(previews, history=Watching())
    [node] = runner.run(EditJob(conversation.id, "test:1", root.id, root.image_hash, "x", EditParams(seed=1)))
    assert offered_when_recorded == [True, True]
    preview = previews.take(node.image_hash)
    assert preview.result() == encode_preview(decode_stored(store.get(node.image_hash)))
    assert previews.take(node.image_hash) is None  # taken once


def test_a_variants_job_makes_no_previews() -> None:
    previews = ReplyPreviews()
    runner, _, conversation, root = runner_with_a_root(previews)
    variants = (EditParams(seed=1), EditParams(seed=2))
    runner.run(EditJob(conversation.id, "test:1", root.id, root.image_hash, "x", EditParams(), variants=variants))
    assert len(previews) == 0


def test_a_failure_while_storing_leaves_no_node_and_no_preview() -> None:
    previews = ReplyPreviews()

    class Failing(InMemoryImageStore):
        fail = False

        def put(self, data: bytes) -> str:
            if self.fail:
                raise OSError("disk full")
            return super().put(data)

    store = Failing()
    runner, _, conversation, root = runner_with_a_root(previews, store=store)
    store.fail = True
    with pytest.raises(OSError):
        runner.run(EditJob(conversation.id, "test:1", root.id, root.image_hash, "x", EditParams(seed=1)))
    assert len(previews) == 0 and runner.history.children(root.id) == []


def test_only_so_many_previews_wait_to_be_taken() -> None:
    from concurrent.futures import Future

    previews = ReplyPreviews(kept=2)
    for digest in ("a", "b", "c"):
        previews.offer(digest, Future())
    assert previews.take("a") is None and previews.take("b") is not None and previews.take("c") is not None


@pytest.fixture
async def engine(editor, history, image_store, segmenter):
    """The engine as bot/bootstrap.py wires it for chats that show JPEGs: its runner makes the process's previews,
    emptied first of any an earlier test left (offering as many as are kept pushes the old ones out)."""
    for number in range(reply_previews.kept):
        reply_previews.offer(f"drain-{number}", Future())
    for number in range(reply_previews.kept):
        reply_previews.take(f"drain-{number}")
    runner = EditRunner(editor, history, image_store, segmenter=segmenter, previews=reply_previews)
    engine = ConversationEngine(history, image_store, EditQueue(runner), segmenter=segmenter, jpeg_previews=True)
    await engine.start()
    yield engine
    await engine.close()


async def test_the_reply_shows_the_runners_jpeg_of_the_stored_result(chat, engine, image_store, history):
    await chat.photo()
    [reply] = images(await chat("make it night"))
    node = history.node(reply.node_id)
    assert reply.image == encode_preview(decode_stored(image_store.get(node.image_hash)))
    assert reply_previews.take(node.image_hash) is None and len(reply_previews) == 0  # taken by the reply


async def test_a_storage_failure_after_the_edit_says_one_line_and_records_nothing(chat, image_store, history,
                                                                                  monkeypatch):
    await chat.photo()
    conversation = history.conversation(chat.key)
    root = conversation.head_id

    def put(data: bytes) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(image_store, "put", put)
    replies = await chat("make it night")
    assert not images(replies) and [reply.error for reply in texts(replies)] == [True], replies
    assert history.children(root) == [] and len(reply_previews) == 0
