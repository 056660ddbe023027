"""Results as Telegram photos: inside Telegram's photo limits (Bot API documentation), brought down to fit when the
full-size PNG is not; the full-size file goes as a document on request (/file, the Full size button)."""

from __future__ import annotations

import io

from PIL import Image

from core.images import encode_for_upload

PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDES_SUM = 10_000
PHOTO_MAX_RATIO = 20


def fits_as_photo(png: bytes) -> bool:
    """Whether Telegram accepts these bytes as a photo (else they go as a document): at most 10 MB, width plus
    height at most 10000, sides at most 20:1."""
    if len(png) > PHOTO_MAX_BYTES:
        return False
    with Image.open(io.BytesIO(png)) as image:  # reads the header only
        width, height = image.size
    return width + height <= PHOTO_MAX_SIDES_SUM and max(width, height) <= PHOTO_MAX_RATIO * min(width, height)


def photo_for(png: bytes) -> bytes | None:
    """Blocking: the bytes to send as a photo: the PNG itself when it fits, else a copy brought inside the limits
    (sides, then bytes: JPEG when PNG is too big); None when no scaling can fit (sides beyond 20:1)."""
    if fits_as_photo(png):
        return png
    with Image.open(io.BytesIO(png)) as image:
        width, height = image.size
        if max(width, height) > PHOTO_MAX_RATIO * min(width, height):
            return None
        scale = min(1.0, (PHOTO_MAX_SIDES_SUM - 1) / (width + height))
        image = image.convert("RGB")
        if scale < 1:
            image = image.resize((int(width * scale), int(height * scale)), Image.Resampling.LANCZOS)
        return encode_for_upload(image, PHOTO_MAX_BYTES)[0]
