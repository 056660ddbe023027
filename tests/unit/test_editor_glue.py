"""The pix2pix editor's own work around the model gives exactly what the diffusers helpers it replaces give."""

from __future__ import annotations

import numpy as np
import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image

from core.editing.pix2pix_parts import vae_pixels


def noise_picture(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    channels = {"RGB": 3, "RGBA": 4}[mode]
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def test_the_vae_input_is_exactly_what_preprocess_makes() -> None:
    processor = VaeImageProcessor(vae_scale_factor=8)
    for picture in (noise_picture((512, 384)), noise_picture((64, 40)), noise_picture((60, 44)),
                    noise_picture((64, 40), "RGBA")):
        expected = processor.preprocess(picture)
        made = vae_pixels(picture, processor)
        assert made.shape == expected.shape and made.dtype == expected.dtype
        assert made.stride() == expected.stride()  # the layout decides how the VAE's convolutions round
        assert torch.equal(made, expected), picture


def test_other_settings_go_through_preprocess() -> None:
    processor = VaeImageProcessor(vae_scale_factor=8, do_normalize=False)
    picture = noise_picture((64, 40))
    assert torch.equal(vae_pixels(picture, processor), processor.preprocess(picture))
