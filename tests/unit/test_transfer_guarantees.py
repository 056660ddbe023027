"""What the full-resolution transfer and the shrink promise whatever does their arithmetic: untouched pixels are the
parent's exactly (inside the changed box too), a photo of any size gets its change where the model made it, and
results do not depend on how many threads torch may use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.domain import EditParams
from core.editing.transfer import shrink_for, transfer
from tests.support.standins import StandInEditor, photo_like, working_size


def _shifted(small: Image.Image, boxes: list[tuple[int, int, int, int]], shift: tuple[int, int, int]) -> Image.Image:
    pixels = np.asarray(small, np.int16).copy()
    for left, top, right, bottom in boxes:
        pixels[top:bottom, left:right] += np.array(shift, np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _full(box: tuple[int, int, int, int], small: Image.Image, parent: Image.Image, grow: int):
    """A working-size box grown by `grow` working pixels, at full size (rounded outwards)."""
    scale_x, scale_y = parent.width / small.width, parent.height / small.height
    left, top, right, bottom = box
    return (int((left - grow) * scale_x), int((top - grow) * scale_y),
            int(np.ceil((right + grow) * scale_x)), int(np.ceil((bottom + grow) * scale_y)))


def test_pixels_between_two_changes_far_apart_are_the_parents_exactly() -> None:
    # One box holds both changes, so the unchanged band between them goes through the whole upsampling and add:
    # a zero change (offset 128) must come back as exactly zero.
    parent = photo_like((1280, 960))
    small = parent.resize(working_size(parent.size), Image.Resampling.LANCZOS)
    edited = _shifted(small, [(40, 40, 80, 80), (400, 300, 460, 350)], (30, -30, 20))
    result = np.asarray(transfer(parent, small, edited))
    between = _full((80, 80, 400, 300), small, parent, -13)  # 13: the transfer's reach around a change
    left, top, right, bottom = between
    assert np.array_equal(result[top:bottom, left:right], np.asarray(parent)[top:bottom, left:right])
    assert not np.array_equal(result, np.asarray(parent))


@pytest.mark.parametrize("size", [(1001, 757), (1280, 960), (777, 1201)])
def test_a_photo_of_any_size_gets_the_change_where_the_model_made_it(size) -> None:
    # Scales like 1001/512 have a large denominator: the box is widened until upsampling it samples the picture
    # where upsampling the whole one would.
    shift = (40, -30, 20)
    editor = StandInEditor(shift=shift, box=(0.3, 0.3, 0.6, 0.6))
    parent = Image.eval(photo_like(size), lambda level: 40 + level * 0.6)  # no clipping by the shift
    small = parent.resize(working_size(parent.size), Image.Resampling.LANCZOS)
    result = np.asarray(transfer(parent, small, editor.edit(small, "x", EditParams()).image), np.int16)
    box = editor.working_box(small.size)
    outside = np.ones(result.shape[:2], bool)
    left, top, right, bottom = _full(box, small, parent, 13)
    outside[top:bottom, left:right] = False
    assert np.array_equal(result[outside], np.asarray(parent, np.int16)[outside])
    left, top, right, bottom = _full(box, small, parent, -13)
    shifted = np.asarray(parent, np.int16) + np.array(shift, np.int16)
    assert np.abs(result - shifted)[top:bottom, left:right].max() <= 1


def test_results_do_not_depend_on_the_number_of_threads() -> None:
    parent = photo_like((1280, 960))
    small = shrink_for(StandInEditor(), parent)
    rng = np.random.default_rng(3)
    edited = Image.fromarray(np.clip(np.asarray(small, np.int16) + rng.integers(-40, 41, (*small.size[::-1], 3)),
                                     0, 255).astype(np.uint8))
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 4):
            torch.set_num_threads(count)
            results.append((np.asarray(shrink_for(StandInEditor(), parent)), np.asarray(transfer(parent, small, edited))))
    finally:
        torch.set_num_threads(threads)
    for shrunk, transferred in results[1:]:
        assert np.array_equal(shrunk, results[0][0]) and np.array_equal(transferred, results[0][1])


def test_the_shrink_is_pillows_bicubic_within_a_level_and_leaves_a_working_size_photo_alone() -> None:
    parent = photo_like((1280, 960))
    shrunk = shrink_for(StandInEditor(), parent)
    assert shrunk.size == working_size(parent.size) and shrunk.mode == "RGB"
    bicubic = parent.resize(shrunk.size, Image.Resampling.BICUBIC)
    assert np.abs(np.asarray(shrunk, np.int16) - np.asarray(bicubic, np.int16)).max() <= 1
    small = parent.resize(shrunk.size)
    assert shrink_for(StandInEditor(), small) is small


@pytest.mark.parametrize("size", [(1001, 757), (1280, 960)])
def test_a_change_lands_on_the_same_pixels_whether_its_box_is_small_or_the_whole_picture(size) -> None:
    parent = photo_like(size)
    small = parent.resize(working_size(parent.size), Image.Resampling.LANCZOS)
    patch = (150, 120, 260, 200)
    edited = _shifted(small, [patch], (50, -40, 30))
    alone = np.asarray(transfer(parent, small, edited))
    # Two small changes in opposite corners make the changed box the whole picture.
    corners = [(0, 0, 4, 4), (small.width - 4, small.height - 4, small.width, small.height)]
    widened = np.asarray(transfer(parent, small, _shifted(edited, corners, (60, 60, 60))))
    left, top, right, bottom = _full(patch, small, parent, 20)
    assert np.array_equal(alone[top:bottom, left:right], widened[top:bottom, left:right])
