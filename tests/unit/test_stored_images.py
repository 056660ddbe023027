"""Stored images: lossless WebP without metadata, older PNG nodes still readable, photos brought down to the
largest output side once at intake."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from core.images import (
    decode_stored,
    encode_png,
    encode_stored,
    load_untrusted,
    stored_as_png,
)
from tests.support.standins import photo_like


def test_stored_images_are_lossless_webp_without_exif_or_gps() -> None:
    photo = photo_like((640, 480))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0)}  # GPS
    photo.info["exif"] = exif.tobytes()
    stored = encode_stored(photo)
    with Image.open(io.BytesIO(stored)) as opened:
        assert opened.format == "WEBP"
        assert "exif" not in opened.info and not opened.getexif()
    assert b"PhoneMaker" not in stored
    assert np.array_equal(np.asarray(decode_stored(stored)), np.asarray(photo))


def test_older_png_nodes_still_read_and_replies_stay_png() -> None:
    photo = photo_like((320, 240))
    old = encode_png(photo)
    assert np.array_equal(np.asarray(decode_stored(old)), np.asarray(photo))
    assert stored_as_png(old) is old
    reply = stored_as_png(encode_stored(photo))
    assert reply.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(decode_stored(reply)), np.asarray(photo))


def test_a_photo_larger_than_the_output_side_is_brought_down_once_at_intake() -> None:
    buffer = io.BytesIO()
    photo_like((1000, 800)).save(buffer, format="JPEG", quality=90)
    assert load_untrusted(buffer.getvalue(), max_output_side=500).image.size == (500, 400)
    assert load_untrusted(buffer.getvalue(), max_output_side=4096).image.size == (1000, 800)
