"""Encoding the pictures intake accepted: lossless PNG without metadata, and uploads under a size limit; and the
bundled sample photo passes intake."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageCms

import bot
from core.images import encode_for_upload, encode_png, load_untrusted
from tests.support.images_factory import RED, encoded, noisy_rgb


def test_encode_png_is_lossless_and_drops_metadata() -> None:
    image = noisy_rgb((64, 48))
    image.info["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

    png = encode_png(image)

    reopened = Image.open(io.BytesIO(png))
    assert reopened.format == "PNG"
    assert reopened.tobytes() == image.tobytes()
    assert b"iCCP" not in png


def test_upload_is_png_when_it_fits() -> None:
    image = Image.new("RGB", (64, 48), RED)

    data, mime = encode_for_upload(image, max_bytes=10_000)

    assert mime == "image/png"
    assert data == encode_png(image)


def test_upload_falls_back_to_jpeg_under_the_limit() -> None:
    image = noisy_rgb((256, 192))
    limit = len(encode_png(image)) // 2

    data, mime = encode_for_upload(image, max_bytes=limit)

    assert mime == "image/jpeg"
    assert len(data) <= limit
    assert Image.open(io.BytesIO(data)).size == (256, 192)


def test_upload_shrinks_the_image_when_quality_alone_is_not_enough() -> None:
    image = noisy_rgb((256, 192))
    lowest_quality_size = len(encoded(image, "JPEG", quality=60))
    limit = lowest_quality_size // 3

    data, mime = encode_for_upload(image, max_bytes=limit)

    assert mime == "image/jpeg"
    assert len(data) <= limit
    width, height = Image.open(io.BytesIO(data)).size
    assert width < 256 and abs(width / height - 256 / 192) < 0.05


def test_upload_limit_that_nothing_fits_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        encode_for_upload(noisy_rgb((256, 192)), max_bytes=100)


def test_the_bundled_sample_photo_passes_intake() -> None:
    sample = Path(bot.__file__).with_name("samples") / "sample.jpg"

    intake = load_untrusted(sample.read_bytes())

    assert sample.stat().st_size < 100_000
    assert intake.image.size == (512, 384)
    assert intake.original_format == "JPEG"
