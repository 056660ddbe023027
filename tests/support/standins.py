"""Stand-ins with known behaviour for full-resolution and region tests: an editor that changes a known rectangle of
its working-size image, one that only re-encodes like a model would, a segmenter returning a fixed mask, and a
photo-like test picture."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image, ImageFilter

from core.domain import EditParams
from core.ports import EditResult

WORKING_SIDE = 512


def photo_like(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: smooth gradients, texture at several scales on its right half, sensor noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([120 + 60 * np.sin(x / (width / 10)), 110 + 50 * np.cos(y / (height / 10)),
                     100 + 40 * np.sin((x + y) / (width / 8))], axis=-1)
    texture = np.zeros((height, width), np.float32)
    for scale, amplitude in ((64, 20), (16, 14), (4, 8)):
        coarse = rng.normal(0, 1, (height // scale + 2, width // scale + 2)).astype(np.float32)
        levels = Image.fromarray(np.clip((coarse + 4) * 32, 0, 255).astype(np.uint8))
        texture += amplitude * (np.asarray(levels.resize(size, Image.Resampling.BICUBIC), np.float32) / 32 - 4)
    texture *= x > width / 2
    noise = rng.normal(0, 2, (height, width))
    return Image.fromarray(np.clip(base + (texture + noise)[..., None], 0, 255).astype(np.uint8))


def working_size(size: tuple[int, int], max_side: int = WORKING_SIDE) -> tuple[int, int]:
    """Like the real editor: longest side at most max_side, sides multiples of 8."""
    width, height = size
    longest = max(size)
    if longest > max_side:
        width, height = width * max_side // longest, height * max_side // longest
    return max(8, width // 8 * 8), max(8, height // 8 * 8)


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


def psnr(first: Image.Image, second: Image.Image) -> float:
    difference = np.asarray(first, np.float64) - np.asarray(second, np.float64)
    mean_square = float((difference ** 2).mean())
    return float("inf") if mean_square == 0 else 10 * np.log10(255 ** 2 / mean_square)
