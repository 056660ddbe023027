"""The editor on a CUDA GPU (skipped without one): float16 numerics and the torch.compile path, on the tiny model.
scripts/gpu-bench.sh measures the same on the real architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.domain import EditParams
from core.editing.pix2pix import Pix2PixEditor
from core.editing.sources import load_pipeline

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

INSTRUCTION = "make it snowy"
PARAMS = EditParams(text_guidance=7.5, image_guidance=1.5, steps=4, seed=11)
MAX_SIDE = 64
FLOAT16_TOLERANCE = 0.02
"""Largest pixel difference (0..1) float16 may show against float32 on the tiny model."""


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))


def _edit(photo, *, dtype: str, compile: bool = False) -> np.ndarray:
    editor = Pix2PixEditor(load_pipeline("tiny", device="cuda", dtype=dtype), max_side=MAX_SIDE,
                           safety_checker=False, compile=compile)
    return editor.edit_to_array(photo, INSTRUCTION, PARAMS)[0]


def test_cuda_defaults_to_float16():
    pipeline = load_pipeline("tiny", device="cuda")
    assert pipeline.unet.dtype == torch.float16
    assert Pix2PixEditor(pipeline, max_side=MAX_SIDE).dtype == torch.float16


def test_float16_matches_float32_closely_and_gives_no_nan(photo):
    half, full = _edit(photo, dtype="float16"), _edit(photo, dtype="float32")
    assert not np.isnan(half).any()
    assert np.abs(half - full).max() < FLOAT16_TOLERANCE


def test_compiled_unet_gives_the_uncompiled_result(photo):
    compiled, plain = _edit(photo, dtype="float16", compile=True), _edit(photo, dtype="float16")
    assert not np.isnan(compiled).any()
    assert np.abs(compiled - plain).max() < FLOAT16_TOLERANCE


def test_batched_edits_equal_single_edits_in_float16(photo):
    editor = Pix2PixEditor(load_pipeline("tiny", device="cuda", dtype="float16"), max_side=MAX_SIDE,
                           safety_checker=False)
    variants = [PARAMS, PARAMS.with_seed(12)]
    batched = editor.edit_many([(photo, INSTRUCTION, params) for params in variants])
    for params, result in zip(variants, batched):
        alone = editor.edit(photo, INSTRUCTION, params)
        difference = np.abs(np.asarray(result.image, dtype=np.int16) - np.asarray(alone.image, dtype=np.int16))
        assert difference.max() <= 2  # 8-bit levels: float16 rounding differs a little between batch shapes
