"""Edits confined to a region named in words ("the sky"), or to everything but one ("the person").

A `Segmenter` (core.ports) turns the words into a soft mask; `region_alpha` makes the feathered weight the edit is
blended with, feathered *inwards* only, so that outside the region the result is the parent's pixels exactly;
`composite` blends; `matches_nothing` tells the engine when the words name nothing in the picture.
"""

from __future__ import annotations

import logging
import re

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from core.domain import Region
from core.errors import ModelUnavailable, UserError

log = logging.getLogger(__name__)

__all__ = ["Region", "region_mask", "matches_nothing", "region_alpha", "composite"]

UNAVAILABLE = ("Editing part of the picture is not available right now: nothing was changed. Send the instruction "
               "without a region, or send /region clear to edit the whole picture.")

INSIDE = 128
"""Mask level (0..255) from which a pixel belongs to the region: CLIPSeg's probability 0.5."""
MIN_AREA = 0.002
"""A region covering less than this share of the picture matches nothing (0.2%: a 200x120 patch of a 12 MP photo)."""
FEATHER = 0.01
"""Feather width as a share of the picture's longer side (40 px on a 4032 px photo), inside the region only."""
MASK_SIDE = 512
"""Longer side at which masks are feathered (then brought up to the picture's size): cheap at any photo size."""


def region_mask(mask: Image.Image, region: Region) -> Image.Image:
    """The segmenter's soft mask for `region.words`, turned into the region's own mask (inverted for /except)."""
    mask = mask.convert("L")
    return ImageChops.invert(mask) if region.inverse else mask


def matches_nothing(mask: Image.Image, min_area: float = MIN_AREA) -> bool:
    """True when less than `min_area` of the picture is inside the mask: the words name nothing here."""
    inside = np.asarray(mask.convert("L")) >= INSIDE
    return float(inside.mean()) < min_area


def region_alpha(mask: Image.Image, size: tuple[int, int], feather: float = FEATHER) -> Image.Image:
    """The blending weight ("L", `size`) of a region mask (any size, same aspect): 255 well inside, falling to 0 at
    the region's edge over `feather` of the longer side, and 0 everywhere outside (mask below INSIDE)."""
    mask = mask.convert("L")
    scale = min(1.0, MASK_SIDE / max(mask.size))
    small = mask.resize((max(1, round(mask.width * scale)), max(1, round(mask.height * scale))),
                        Image.Resampling.BILINEAR) if scale < 1 else mask
    inside = small.point(lambda level: 255 if level >= INSIDE else 0)
    reach = max(1, round(feather * max(small.size)))  # feather width in mask pixels
    # Erode by the feather's width, then blur back out by about as much: the soft edge stays inside the region.
    shrunk = inside.filter(ImageFilter.MinFilter(2 * (reach // 2) + 1))
    soft = shrunk.filter(ImageFilter.GaussianBlur(reach / 2)).resize(size, Image.Resampling.BILINEAR)
    outside_cut = mask.resize(size, Image.Resampling.BILINEAR).point(lambda level: 255 if level >= INSIDE else 0)
    return ImageChops.darker(soft, outside_cut)


def composite(parent: Image.Image, edited: Image.Image, alpha: Image.Image) -> Image.Image:
    """`edited` where alpha is 255, `parent` where it is 0 (exactly), blended between; all at the parent's size."""
    if edited.size != parent.size:
        edited = edited.resize(parent.size, Image.Resampling.BICUBIC)
    return Image.composite(edited.convert("RGB"), parent.convert("RGB"), alpha)


def split_region(text: str) -> tuple[Region | None, str]:
    """The inline form of a region: "in the sky: make it a sunset" -> (only the sky, "make it a sunset"),
    "only the sky: ..." as "in the sky: ...", "except the person: make it snow" -> (everything except the person,
    ...); any other text -> (None, text)."""
    match = INLINE.fullmatch(text.strip())
    if match is None:
        return None, text
    words = " ".join(match["words"].split())
    return Region(words, inverse=match["how"].lower() == "except"), match["instruction"].strip()


INLINE = re.compile(r"(?P<how>in|only|except)\s+(?P<words>[^:\n]{1,64}?)\s*:\s*(?P<instruction>\S.*)",
                    re.IGNORECASE | re.DOTALL)
"""The inline region syntax (README, /help): "in WORDS: INSTRUCTION" (or "only WORDS: ...", as /only says it) or
"except WORDS: INSTRUCTION"."""


def find(segmenter, photo: Image.Image, region: Region) -> tuple[bool, Image.Image]:
    """Blocking: look for `region` in `photo` (any size; segmented at most MASK_SIDE on its longer side). Returns
    whether its words name anything there (before /except inverts them: "except the dragon" with no dragon names
    nothing either) and the region's mask at the size segmented."""
    small = photo.convert("RGB")
    small.thumbnail((MASK_SIDE, MASK_SIDE), Image.Resampling.BILINEAR)
    try:
        mask = segmenter.mask(small, region.words)
    except ModelUnavailable as error:  # the operator's to fix (logged: which setting); the person is told what works
        log.warning("regions unavailable: %s", error)
        raise UserError(UNAVAILABLE) from None
    return not matches_nothing(mask), region_mask(mask, region)
