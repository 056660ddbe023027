"""Regions named in words: masks from a segmenter, edits composited inside them only, the mask preview, and CLIPSeg
loaded through the same model-source code as the editor (tiny random model)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from core import pictures
from core.editing.lazy_segmentation import LazySegmenter
from core.editing.segmentation import build_tiny_clipseg, load_segmenter
from core.errors import ModelUnavailable
from core.load_retry import LoadRetry
from core.regions import (
    INSIDE,
    Region,
    composite,
    matches_nothing,
    region_alpha,
    region_mask,
)
from tests.support.standins import MaskSegmenter, photo_like


def _ellipse_mask(size: tuple[int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    width, height = size
    ImageDraw.Draw(mask).ellipse((width * 0.2, height * 0.2, width * 0.6, height * 0.8), fill=255)
    return mask


@pytest.mark.parametrize("inverse", [False, True])
def test_outside_the_region_the_result_is_the_parent_exactly(inverse) -> None:
    parent = photo_like((1200, 900))
    edited = Image.new("RGB", parent.size, (250, 20, 20))
    segmenter = MaskSegmenter(_ellipse_mask((300, 225)))  # a mask at another size, as a model's would be
    region = Region("the ball", inverse=inverse)
    mask = region_mask(segmenter.mask(parent, region.words), region)
    result = np.asarray(composite(parent, edited, region_alpha(mask, parent.size)))
    outside = np.asarray(mask.resize(parent.size, Image.Resampling.BILINEAR)) < INSIDE
    assert np.array_equal(result[outside], np.asarray(parent)[outside])
    beyond_feather = mask.resize((300, 225)).filter(ImageFilter.MinFilter(15))  # 28 px in from the edge
    deep_inside = np.asarray(beyond_feather.resize(parent.size, Image.Resampling.NEAREST)) == 255
    assert deep_inside.any()
    assert (result[deep_inside] == (250, 20, 20)).all()
    assert segmenter.asked == ["the ball"]


def test_the_feather_stays_inside_the_region() -> None:
    mask = _ellipse_mask((400, 300))
    alpha = np.asarray(region_alpha(mask, (400, 300)))
    inside = np.asarray(mask) >= INSIDE
    assert (alpha[~inside] == 0).all()
    assert 0 < ((alpha > 0) & (alpha < 255)).sum()  # a soft edge exists, within the region


def test_words_that_match_nothing_are_told_apart_from_a_small_region() -> None:
    empty = Image.new("L", (400, 300), 40)  # a faint guess everywhere, nowhere above one half
    small = Image.new("L", (400, 300), 0)
    ImageDraw.Draw(small).rectangle((0, 0, 19, 19), fill=255)  # 400 of 120000 pixels: 0.33 %
    assert matches_nothing(empty)
    assert not matches_nothing(small)
    assert Region("the dragon").describe() == "only the dragon"
    assert Region("the person", inverse=True).describe() == "everything except the person"


def test_mask_preview_tints_the_region_and_dims_the_rest() -> None:
    photo = Image.new("RGB", (1600, 1200), (128, 128, 128))
    mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(mask).rectangle((0, 0, 799, 1199), fill=255)
    preview = pictures.mask_preview(photo, mask, caption="only the left half")
    assert max(preview.size) <= pictures.MASK_PREVIEW_SIDE + 100
    left, right = preview.getpixel((50, 50)), preview.getpixel((700, 50))
    assert left[0] > 128 and left[1] < 128  # tinted
    assert max(right) < 128  # dimmed


def test_tiny_clipseg_masks_the_whole_picture_and_loads_back_from_a_folder(tmp_path) -> None:
    photo = photo_like((300, 200))
    segmenter = load_segmenter("tiny", device="cpu")
    mask = segmenter.mask(photo, "the sky")
    assert (mask.mode, mask.size) == ("L", photo.size)
    model, processor = build_tiny_clipseg()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded = load_segmenter(str(tmp_path), device="cpu", offline=True)
    assert np.array_equal(np.asarray(reloaded.mask(photo, "the sky")), np.asarray(mask))


def test_a_segmentation_model_that_is_not_there_is_one_clear_line(tmp_path) -> None:
    with pytest.raises(ModelUnavailable, match="EDITBOT_SEGMENTATION_MODEL"):
        load_segmenter(str(tmp_path / "missing"), device="cpu")
    with pytest.raises(ModelUnavailable, match="EDITBOT_SEGMENTATION_MODEL"):
        load_segmenter("nobody/no-such-clipseg", device="cpu", offline=True)


def test_a_segmentation_model_that_could_not_be_had_is_refused_at_once_for_a_while_then_tried_again(tmp_path) -> None:
    now = [0.0]
    segmenter = LazySegmenter(str(tmp_path), device="cpu", offline=True,
                              retry=LoadRetry(retry_after=300, clock=lambda: now[0]))
    photo = photo_like((60, 40))
    with pytest.raises(ModelUnavailable, match="EDITBOT_SEGMENTATION_MODEL"):
        segmenter.mask(photo, "the sky")
    model, processor = build_tiny_clipseg()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    now[0] = 299
    with pytest.raises(ModelUnavailable, match="EDITBOT_SEGMENTATION_MODEL"):  # not loaded again yet
        segmenter.mask(photo, "the sky")
    now[0] = 300
    assert segmenter.mask(photo, "the sky").size == photo.size
