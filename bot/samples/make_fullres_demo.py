"""Draw the README's before/after pictures of full-size results and regional edits, with the project's own code.

No model: a stand-in edit (a warm tint added in a rectangle of the 512 px working image) on a 2048x1536 photo-like
picture, and a fixed ellipse as the "segmenter's" mask. Deterministic: rerunning rewrites the same pictures.

    python bot/samples/make_fullres_demo.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core import pictures
from core.editing.pix2pix_parts import working_size
from core.editing.transfer import transfer
from core.editing.transfer_bench import photo_like
from core.regions import Region, composite, region_alpha, region_mask

OUTPUT = Path(__file__).with_name("fullres")
SIZE = (2048, 1536)
CROP = (1200, 500, 1600, 800)  # a 1:1 crop inside the edited rectangle, on the textured half


def _stand_in_edit(small: Image.Image) -> Image.Image:
    pixels = np.asarray(small, np.int16).copy()
    width, height = small.size
    pixels[height // 5: height * 4 // 5, width // 2: width * 9 // 10] += np.array((45, 10, -35), np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def main() -> None:
    OUTPUT.mkdir(exist_ok=True)
    photo = photo_like(SIZE)
    small = photo.resize(working_size(*SIZE, 512), Image.Resampling.LANCZOS)
    edited = _stand_in_edit(small)
    before = edited.resize(SIZE, Image.Resampling.LANCZOS).crop(CROP)  # the working result scaled up (before)
    after = transfer(photo, small, edited).crop(CROP)
    pictures.compare(before, after, labels=("Scaled up from 512 px (before)", "Full size (now)"),
                     caption="Stand-in edit (warm tint in a rectangle), 1:1 crop of a 2048x1536 result").save(
        OUTPUT / "full-size.png", optimize=True)
    mask = Image.new("L", SIZE, 0)
    ImageDraw.Draw(mask).ellipse((300, 300, 1100, 1300), fill=255)
    region = Region("the ball")
    whole = transfer(photo, small, Image.eval(small, lambda level: 255 - level))  # a stand-in "invert" edit
    regional = composite(photo, whole, region_alpha(region_mask(mask, region), SIZE))
    preview = pictures.mask_preview(photo, mask, caption=f"/mask: {region.describe()}")
    preview.save(OUTPUT / "mask.jpg", quality=85)
    pictures.compare(photo, regional, caption="Stand-in edit (invert) inside the mask only; outside, the photo's own "
                     "pixels").save(OUTPUT / "region.jpg", quality=85)


if __name__ == "__main__":
    main()
