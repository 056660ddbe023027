"""Full-resolution results: the model's change, made at the working size, lands on the full-size parent; what the
edit did not touch keeps the parent's exact pixels, and chains of edits do not lose quality."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.domain import ChatKey, EditJob, EditParams, NewNode
from core.editing.transfer import shrink_for, transfer
from core.runner import EditRunner
from core.stored_images import decode_stored, encode_stored
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.standins import StandInEditor, photo_like, psnr, working_size

# Working pixels around a change that the transfer may touch: low-band blur (3 sigma = 6), structure feathering
# (3 + 3), bilinear upsampling (1) and the box margin.
REACH = 13


def _boxes(editor: StandInEditor, full: tuple[int, int], grow: int):
    """The stand-in's rectangle grown by `grow` working pixels, at full size (fractional edges rounded outwards
    for grow > 0, inwards for grow < 0)."""
    small = working_size(full)
    left, top, right, bottom = editor.working_box(small)
    scale_x, scale_y = full[0] / small[0], full[1] / small[1]
    edges = ((left - grow) * scale_x, (top - grow) * scale_y, (right + grow) * scale_x, (bottom + grow) * scale_y)
    if grow > 0:
        return int(edges[0]), int(edges[1]), int(np.ceil(edges[2])), int(np.ceil(edges[3]))
    return int(np.ceil(edges[0])), int(np.ceil(edges[1])), int(edges[2]), int(edges[3])


def _edit(editor: StandInEditor, parent: Image.Image) -> Image.Image:
    small = parent.resize(working_size(parent.size), Image.Resampling.LANCZOS)
    return transfer(parent, small, editor.edit(small, "x", EditParams()).image)


@pytest.mark.parametrize("shift", [(60, -40, 20), (-120, 90, 0)])
def test_outside_the_changed_rectangle_the_result_is_the_parent_exactly(shift) -> None:
    editor = StandInEditor(shift=shift)
    parent = photo_like((1600, 1200))
    result = np.asarray(_edit(editor, parent))
    left, top, right, bottom = _boxes(editor, parent.size, REACH)
    outside = np.ones(result.shape[:2], bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(result[outside], np.asarray(parent)[outside])
    assert not np.array_equal(result, np.asarray(parent))


def test_inside_the_rectangle_the_result_is_the_stand_ins_change_brought_up_to_size() -> None:
    shift = (60, -40, 20)
    editor = StandInEditor(shift=shift)
    # Levels 40..193, so that the shift never clips (clipping makes the working-size change differ from the full).
    parent = Image.eval(photo_like((1600, 1200)), lambda level: 40 + level * 0.6)
    result = np.asarray(_edit(editor, parent), np.int16)
    left, top, right, bottom = _boxes(editor, parent.size, -REACH)
    shifted = np.asarray(parent, np.int16) + np.array(shift, np.int16)
    assert np.abs(result - shifted)[top:bottom, left:right].max() <= 1


def test_a_full_size_edit_keeps_the_parents_size_and_detail_where_a_scaled_up_result_would_not() -> None:
    parent = photo_like((1600, 1200))
    editor = StandInEditor(shift=(30, 0, 0))
    result = _edit(editor, parent)
    assert result.size == parent.size
    small = parent.resize(working_size(parent.size), Image.Resampling.LANCZOS)
    scaled_up = editor.edit(small, "x", EditParams()).image.resize(parent.size, Image.Resampling.LANCZOS)
    truth = np.asarray(parent, np.int16).copy()
    left, top, right, bottom = _boxes(editor, parent.size, 0)
    truth[top:bottom, left:right] += np.array((30, 0, 0), np.int16)
    truth = Image.fromarray(np.clip(truth, 0, 255).astype(np.uint8))
    assert psnr(result, truth) > psnr(scaled_up, truth) + 3


def test_identity_edits_at_4032x3024_stay_above_45_db_through_a_chain_of_five() -> None:
    history, images = InMemoryHistoryRepository(), InMemoryImageStore()
    runner = EditRunner(StandInEditor(), history, images)
    original = photo_like((4032, 3024))
    conversation = history.conversation(ChatKey("test", "1", "1"))
    node = history.add_node(NewNode(conversation.id, None, images.put(encode_stored(original)), None, None, None))
    for _ in range(5):
        job = EditJob(conversation.id, "test:1", node.id, node.image_hash, "leave it", EditParams(seed=1))
        [node] = runner.run(job)
        result = decode_stored(images.get(node.image_hash))
        assert result.size == original.size
        assert psnr(result, original) >= 45
    # What the bot did before: the working-size result scaled back up.
    small = original.resize(working_size(original.size), Image.Resampling.LANCZOS)
    assert psnr(small.resize(original.size, Image.Resampling.LANCZOS), original) < 45


def test_a_models_re_encoding_alone_changes_nothing_visible_through_five_edits() -> None:
    editor = StandInEditor(reencode=True)
    original = current = photo_like((1600, 1200))
    for _ in range(5):
        current = _edit(editor, current)
    assert psnr(current, original) >= 45


def test_the_editor_gets_the_photo_already_at_its_working_size() -> None:
    history, images = InMemoryHistoryRepository(), InMemoryImageStore()
    editor = StandInEditor(shift=(10, 10, 10))
    runner = EditRunner(editor, history, images)
    photo = photo_like((1000, 750))
    conversation = history.conversation(ChatKey("test", "1", "1"))
    root = history.add_node(NewNode(conversation.id, None, images.put(encode_stored(photo)), None, None, None))
    [node] = runner.run(EditJob(conversation.id, "test:1", root.id, root.image_hash, "x", EditParams(seed=1)))
    assert editor.inputs == [working_size(photo.size)]
    assert decode_stored(images.get(node.image_hash)).size == photo.size


class RecordingEditor(StandInEditor):
    """Keeps the pictures it was given."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pictures: list[Image.Image] = []

    def edit(self, image, instruction, params, **kwargs):
        self.pictures.append(image.copy())
        return super().edit(image, instruction, params, **kwargs)


def test_a_result_is_shrunk_for_its_next_edit_ahead_of_time_to_the_same_pixels() -> None:
    from core import runner as runner_module
    from core.picture_cache import PictureCache, working_key

    history, images, pictures = InMemoryHistoryRepository(), InMemoryImageStore(), PictureCache()
    editor = RecordingEditor(shift=(10, 10, 10))
    runner = EditRunner(editor, history, images, pictures=pictures)
    photo = photo_like((1000, 750))
    conversation = history.conversation(ChatKey("test", "1", "1"))
    root = history.add_node(NewNode(conversation.id, None, images.put(encode_stored(photo)), None, None, None))
    [first] = runner.run(EditJob(conversation.id, "test:1", root.id, root.image_hash, "x", EditParams(seed=1)))
    runner_module._BACKGROUND.submit(lambda: None).result()  # one worker: everything submitted before is done
    size = working_size(photo.size)
    prepared = pictures.get(working_key(first.image_hash, size))
    assert prepared is not None  # made while the person looked at the result, not when the next edit asked
    result = decode_stored(images.get(first.image_hash))
    assert np.array_equal(np.asarray(prepared), np.asarray(shrink_for(editor, result)))
    runner.run(EditJob(conversation.id, "test:1", first.id, first.image_hash, "y", EditParams(seed=1)))
    assert np.array_equal(np.asarray(editor.pictures[-1]), np.asarray(prepared))


def test_output_working_stores_what_the_editor_returns() -> None:
    history, images = InMemoryHistoryRepository(), InMemoryImageStore()
    editor = StandInEditor(shift=(10, 10, 10))
    runner = EditRunner(editor, history, images, output="working")
    photo = photo_like((1000, 750))
    conversation = history.conversation(ChatKey("test", "1", "1"))
    root = history.add_node(NewNode(conversation.id, None, images.put(encode_stored(photo)), None, None, None))
    [node] = runner.run(EditJob(conversation.id, "test:1", root.id, root.image_hash, "x", EditParams(seed=1)))
    assert editor.inputs == [photo.size]
    assert decode_stored(images.get(node.image_hash)).size == working_size(photo.size)


def test_input_and_output_of_different_sizes_are_refused() -> None:
    parent = photo_like((200, 100))
    with pytest.raises(ValueError):
        transfer(parent, parent.resize((96, 48)), parent.resize((64, 32)))
