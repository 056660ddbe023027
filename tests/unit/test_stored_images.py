"""Stored images: lossless JPEG XL without metadata, older PNG nodes still readable, photos brought down to the
largest output side once at intake."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from core.images import encode_png, load_untrusted
from core.stored_images import (
    decode_stored,
    encode_stored,
    stored_as_png,
    stored_upload,
    strip_jpeg_metadata,
)
from tests.support.standins import photo_like


def test_stored_images_are_lossless_jpeg_xl_without_exif_or_gps() -> None:
    photo = photo_like((640, 480))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0)}  # GPS
    photo.info["exif"] = exif.tobytes()
    stored = encode_stored(photo)
    assert_no_metadata(stored)
    assert np.array_equal(np.asarray(decode_stored(stored)), np.asarray(photo))


@pytest.mark.parametrize("size", [(1, 1), (1, 300), (3, 2), (257, 129)])
def test_stored_pictures_of_any_size_decode_to_the_same_pixels(size) -> None:
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(decode_stored(encode_stored(noise))), np.asarray(noise))


def test_older_webp_nodes_still_read() -> None:
    photo = photo_like((320, 240))
    buffer = io.BytesIO()
    photo.save(buffer, format="WEBP", lossless=True, method=0, quality=0)
    assert np.array_equal(np.asarray(decode_stored(buffer.getvalue())), np.asarray(photo))


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


# ------------------------------------------------------------------ uploads kept as their own JPEG bytes

GPS_LATITUDE = (48.0, 51.0, 30.0)
JPEG_XL_CODESTREAM = b"\xff\x0a"


def phone_jpeg(size=(640, 480), *, orientation: int = 1, icc: bytes | None = None, progressive=False) -> bytes:
    """A JPEG as a phone writes it: EXIF with a maker, a GPS position and an orientation; a comment; XMP."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: GPS_LATITUDE}
    buffer = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    photo_like(size).save(buffer, format="JPEG", quality=90, exif=exif, comment=b"secret comment",
                          xmp=b"<x:xmpmeta>secret xmp</x:xmpmeta>", progressive=progressive, **extra)
    return buffer.getvalue()


def assert_no_metadata(data: bytes) -> None:
    for secret in (b"PhoneMaker", b"secret comment", b"secret xmp", b"Exif\x00\x00", b"ICC_PROFILE"):
        assert secret not in data
    if not data.startswith(b"\xff\xd8"):
        assert data.startswith(JPEG_XL_CODESTREAM)  # a bare codestream: no container, so no Exif or XML boxes
        return
    with Image.open(io.BytesIO(data)) as opened:
        assert not opened.getexif() and "exif" not in opened.info and "icc_profile" not in opened.info
        assert "comment" not in opened.info and "xmp" not in opened.info


@pytest.mark.parametrize("progressive", [False, True])
def test_an_upright_jpeg_is_kept_as_its_own_bytes_without_metadata(progressive) -> None:
    upload = phone_jpeg(progressive=progressive)
    intake = load_untrusted(upload)
    stored, picture = stored_upload(upload, intake)
    assert stored.startswith(b"\xff\xd8") and stored.endswith(b"\xff\xd9")
    assert len(stored) < len(upload) and len(upload) - len(stored) < 2_000  # only the metadata went
    assert_no_metadata(stored)
    assert np.array_equal(np.asarray(decode_stored(stored)), np.asarray(intake.image))
    assert np.array_equal(np.asarray(picture), np.asarray(intake.image))


def test_a_jpeg_that_needed_turning_upright_is_stored_turned_and_lossless() -> None:
    upload = phone_jpeg(orientation=6)  # rotated 90° clockwise when shown
    intake = load_untrusted(upload)
    stored, _ = stored_upload(upload, intake)
    assert stored.startswith(JPEG_XL_CODESTREAM)
    assert_no_metadata(stored)
    assert np.array_equal(np.asarray(decode_stored(stored)), np.asarray(intake.image))


def test_a_jpeg_with_a_colour_profile_decodes_to_the_converted_pixels() -> None:
    upload = phone_jpeg(icc=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    intake = load_untrusted(upload)
    stored, _ = stored_upload(upload, intake)
    assert_no_metadata(stored)
    assert np.array_equal(np.asarray(decode_stored(stored)), np.asarray(intake.image))


def test_a_shrunk_or_non_jpeg_upload_is_stored_lossless() -> None:
    upload = phone_jpeg((1000, 800))
    intake = load_untrusted(upload, max_output_side=500)
    stored, _ = stored_upload(upload, intake)
    assert stored.startswith(JPEG_XL_CODESTREAM)
    assert np.array_equal(np.asarray(decode_stored(stored)), np.asarray(intake.image))
    png = encode_png(photo_like((320, 240)))
    stored, _ = stored_upload(png, load_untrusted(png))
    assert stored.startswith(JPEG_XL_CODESTREAM)


def test_the_jfif_header_keeps_no_thumbnail_and_an_mpo_keeps_only_its_first_picture() -> None:
    upload = phone_jpeg()
    assert upload[2:4] == b"\xff\xe0"  # Pillow's JFIF header, without a thumbnail: give it a 1x1 one
    length = int.from_bytes(upload[4:6], "big")
    jfif = bytearray(upload[6 : 4 + length])
    jfif[-2:] = b"\x01\x01"
    with_thumbnail = b"\xff\xd8\xff\xe0" + (length + 3).to_bytes(2, "big") + jfif + b"\x10\x20\x30" + upload[4 + length :]
    stripped = strip_jpeg_metadata(with_thumbnail)
    assert stripped == strip_jpeg_metadata(upload) and stripped[4:6] == (16).to_bytes(2, "big")
    second = phone_jpeg((320, 240))
    stripped = strip_jpeg_metadata(upload + second)  # bytes after the first picture's end are dropped
    assert stripped == strip_jpeg_metadata(upload)
    assert strip_jpeg_metadata(b"not a jpeg") is None
    assert strip_jpeg_metadata(upload[: len(upload) // 2]) is None  # cut short: no end of image


def test_the_storage_bench_reports_each_node_of_a_tree() -> None:
    from bot.storage_bench import CODECS, run_storage_benchmark

    figures = run_storage_benchmark(side=256)
    assert figures["root"]["format"] == "JPEG"
    assert figures["root"]["bytes"] < figures["upload_jpeg_with_exif"] < figures["root_if_reencoded"]
    for name in ("whole-picture edit", "regional edit"):
        assert figures[name]["bytes"] == figures[name]["codecs"]["JPEG XL effort 1 (stored)"]["bytes"]
        assert list(figures[name]["codecs"]) == list(CODECS)


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (7, 1), (8, 8), (16, 8), (248, 256), (257, 264), (513, 1),
                                  (1200, 1000), (1280, 960), (1500, 1000), (1920, 1080), (1250, 1000), (2000, 1000),
                                  (4032, 3024), (3024, 4032), (20000, 2500), (2500, 20000)])
def test_the_size_of_a_stored_picture_is_read_from_its_header(size) -> None:
    from core.stored_images import stored_size

    picture = Image.new("RGB", size, (10, 20, 30))
    assert stored_size(encode_stored(picture)) == size
    assert stored_size(encode_png(picture)) == size
