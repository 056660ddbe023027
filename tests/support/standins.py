"""Stand-ins with known behaviour for full-resolution and region tests: an editor that changes a known rectangle of
its working-size image, one that only re-encodes like a model would, a segmenter returning a fixed mask, and a
photo-like test picture."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image, ImageFilter

from core.domain import EditParams
from core.editing import pix2pix
from core.editing.transfer_bench import photo_like  # noqa: F401  (shared with the benchmark)
from core.ports import EditResult

WORKING_SIDE = 512


def working_size(size: tuple[int, int]) -> tuple[int, int]:
    """The real editor's working size at its default longest side."""
    return pix2pix.working_size(*size, WORKING_SIDE)


class StandInEditor:
    """An Editor that adds `shift` (RGB levels) inside `box` (fractions of the working image: left, top, right,
    bottom) and, with `reencode`, blurs and adds seeded noise everywhere as a model's re-encoding would. shift 0 and
    no reencode: it returns its (working-size) input unchanged."""

    def __init__(self, *, box=(0.25, 0.25, 0.6, 0.7), shift=(0, 0, 0), reencode: bool = False) -> None:
        self.box = box
        self.shift = np.array(shift, np.int16)
        self.reencode = reencode
        self.inputs: list[tuple[int, int]] = []

    def working_size(self, size):
        return working_size(size)

    def working_box(self, size: tuple[int, int]) -> tuple[int, int, int, int]:
        width, height = size
        left, top, right, bottom = self.box
        return round(left * width), round(top * height), round(right * width), round(bottom * height)

    def edit(self, image, instruction, params, *, on_step=None, cancel=None) -> EditResult:
        started = time.perf_counter()
        self.inputs.append(image.size)
        size = working_size(image.size)
        small = image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)
        if self.reencode:
            noisy = np.asarray(small.filter(ImageFilter.GaussianBlur(0.8)), np.float32)
            noisy += np.random.default_rng(len(self.inputs)).normal(0, 1.0, noisy.shape)
            small = Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
        pixels = np.asarray(small, np.int16).copy()
        left, top, right, bottom = self.working_box(size)
        pixels[top:bottom, left:right] += self.shift
        result = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        params = params if params.seed is not None else params.with_seed(0)
        return EditResult(result, params, time.perf_counter() - started)

    def edit_batch(self, image, instruction, variants, *, on_step=None, cancel=None):
        return [self.edit(image, instruction, params) for params in variants]

    def edit_many(self, requests, *, on_step=None, cancel=None):
        return [self.edit(image, instruction, params) for image, instruction, params in requests]

    def batch_key(self, image, params: EditParams) -> tuple:
        return working_size(image.size), params.steps


class MaskSegmenter:
    """A Segmenter that returns a fixed mask (brought to the picture's size) whatever the words."""

    def __init__(self, mask: Image.Image) -> None:
        self.fixed = mask.convert("L")
        self.asked: list[str] = []

    def mask(self, image, words):
        self.asked.append(words)
        return self.fixed.resize(image.size, Image.Resampling.BILINEAR)


def left_half_mask(size: tuple[int, int] = (64, 64)) -> Image.Image:
    """A mask of the left half of a picture (255) and nothing of the right (0)."""
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    return mask


def psnr(first: Image.Image, second: Image.Image) -> float:
    difference = np.asarray(first, np.float64) - np.asarray(second, np.float64)
    mean_square = float((difference ** 2).mean())
    return float("inf") if mean_square == 0 else 10 * np.log10(255 ** 2 / mean_square)
