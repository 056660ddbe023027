"""The parts of the InstructPix2Pix editor that are plain functions: working sizes, which UNet rows the guidance
needs and how their predictions combine, a small LRU cache, seeds and scheduler arguments. Kept apart from
core.editing.pix2pix so that file stays one readable pipeline."""

from __future__ import annotations

import copy
import inspect
import secrets
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

from core.domain import SEED_RANGE, EditParams
from core.errors import BadParams

LATENT_MULTIPLE = 8
"""Both working sides are multiples of this: the VAE downsamples by 8."""
CACHE_SIZE = 8
"""Image latents and text embeddings kept per editor (each a few hundred KiB at most)."""
DEEPCACHE_INTERVAL = 2
"""Fast mode runs the full UNet every this many steps and the shallow path in between."""


def working_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size we edit at: same aspect ratio (no crop), longest side at most `max_side` (never upscaled), both
    sides rounded down to a multiple of 8, at least 8."""
    if width < 1 or height < 1:
        raise BadParams("The image is empty.")
    longest = max(width, height)
    if longest > max_side:  # integer arithmetic: no float rounding surprises at exact multiples
        width, height = width * max_side // longest, height * max_side // longest
    return (
        max(LATENT_MULTIPLE, width // LATENT_MULTIPLE * LATENT_MULTIPLE),
        max(LATENT_MULTIPLE, height // LATENT_MULTIPLE * LATENT_MULTIPLE),
    )


def guidance_rows(text_guidance: float, image_guidance: float) -> tuple[str, ...]:
    """The UNet rows needed for this guidance. The stock formula

        uncond + g_t * (text - image) + g_i * (image - uncond) = g_t * text + (g_i - g_t) * image + (1 - g_i) * uncond

    weighs `text` (prompt and photo) by g_t >= 1, `image` (photo only) by g_i - g_t and `uncond` (neither) by
    1 - g_i; rows with a zero weight are skipped."""
    rows = ["text"]
    if image_guidance != text_guidance:
        rows.append("image")
    if image_guidance != 1.0:
        rows.append("uncond")
    return tuple(rows)


def combine_guidance(predictions: dict[str, torch.Tensor], text_guidance: float, image_guidance: float) -> torch.Tensor:
    """Apply the guidance formula to the rows `guidance_rows` asked for, in a form that matches the stock
    three-row expression to float rounding."""
    text, image, uncond = predictions["text"], predictions.get("image"), predictions.get("uncond")
    if image is not None and uncond is not None:  # the stock expression, verbatim
        return uncond + text_guidance * (text - image) + image_guidance * (image - uncond)
    if image is not None:  # g_i == 1
        return image + text_guidance * (text - image)
    if uncond is not None:  # g_i == g_t
        return uncond + text_guidance * (text - uncond)
    return text  # g_t == g_i == 1


class LRU:
    """A small least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self.hits = 0

    def get(self, key):
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return value

    def put(self, key, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


def resized(image: Image.Image, max_side: int) -> Image.Image:
    size = working_size(*image.size, max_side)
    return image if image.size == size else image.resize(size, Image.Resampling.LANCZOS)


def vae_pixels(image: Image.Image, processor) -> torch.Tensor:
    """The VAE encoder's input for a picture: what `processor.preprocess(image)` gives. With the standard settings
    (an RGB picture whose sides are multiples of the VAE's factor, scaled to [-1, 1], nothing else) it is made in one
    pass instead of preprocess's several copies and checks, about 1 ms less per picture at 512x384; other settings or
    pictures go through preprocess."""
    config = processor.config
    standard = (image.mode == "RGB" and config.do_normalize and not config.do_binarize and not config.do_convert_rgb
                and not config.do_convert_grayscale and image.width % config.vae_scale_factor == 0
                and image.height % config.vae_scale_factor == 0)
    if not standard:
        return processor.preprocess(image)
    # Laid out as preprocess lays it out (a batch of HWC arrays, viewed as NCHW): the VAE's convolutions pick their
    # kernels by layout, and another layout rounds differently.
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32)[None] / 255.0).permute(0, 3, 1, 2)
    return 2.0 * pixels - 1.0


def with_seed(params: EditParams) -> EditParams:
    return params if params.seed is not None else params.with_seed(secrets.randbelow(SEED_RANGE[1] + 1))


def step_kwargs(scheduler, generator: torch.Generator) -> dict:
    """Pass eta=0 (deterministic DDIM) and the generator (ancestral noise) to schedulers that take them, as the
    stock pipeline does."""
    accepted = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in accepted:
        kwargs["eta"] = 0.0
    if "generator" in accepted:
        kwargs["generator"] = generator
    return kwargs


def bfloat16_copy(module: torch.nn.Module) -> torch.nn.Module:
    """A bfloat16 copy of `module` in channels-last memory, made without a float32 copy first (that would need the
    module's full size again for a moment: 3.4 GB more for SD1.5's UNet); the original is left as it is."""
    memo = {
        id(tensor): torch.nn.Parameter(tensor.detach().to(torch.bfloat16), requires_grad=False)
        if isinstance(tensor, torch.nn.Parameter)
        else tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor.clone()
        for tensor in [*module.parameters(), *module.buffers()]
    }
    return copy.deepcopy(module, memo).to(memory_format=torch.channels_last)

