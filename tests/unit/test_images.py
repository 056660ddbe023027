"""Intake of untrusted image bytes: what is accepted and how it is normalised. What is refused and how:
test_image_refusals.py; encoding for storage and upload: test_image_encoding.py."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image, ImageCms

from core.images import ANIMATED_NOTICE, Intake, encode_png, load_untrusted
from tests.support.images_factory import (
    BLUE,
    RED,
    WHITE,
    animation,
    encoded,
    exif_turned,
)


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 6) -> None:
    """Colours equal within `tolerance` per channel (JPEG is lossy)."""
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (actual, expected)


def assert_clean_rgb(intake: Intake) -> None:
    assert intake.image.mode == "RGB"
    assert intake.image.info == {}
    assert len(intake.image.getexif()) == 0


# --- accepted formats ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "save_options"),
    [("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"lossless": True}), ("GIF", {})],
)
def test_each_accepted_format_round_trips_to_rgb(image_format: str, save_options: dict) -> None:
    original = Image.new("RGB", (80, 60), (200, 40, 40))
    original.paste(BLUE, (0, 0, 40, 60))

    intake = load_untrusted(encoded(original, image_format, **save_options))

    assert_clean_rgb(intake)
    assert intake.image.size == (80, 60)
    assert intake.original_format == image_format
    assert intake.notice is None
    assert_close(intake.image.getpixel((10, 30)), BLUE)
    assert_close(intake.image.getpixel((70, 30)), (200, 40, 40))


def test_a_multi_picture_jpeg_is_a_still_photo() -> None:
    """Phones write MPO (a JPEG with extra pictures appended); the first picture is the photo itself."""
    photo = Image.new("RGB", (64, 48), RED)
    data = encoded(photo, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), BLUE)])

    intake = load_untrusted(data)

    assert intake.original_format == "JPEG"
    assert intake.notice is None
    assert_close(intake.image.getpixel((32, 24)), RED)


@pytest.mark.parametrize(
    ("orientation", "red_corner"),
    [(6, (59, 0)), (8, (0, 79))],  # 6: turn clockwise to view; 8: turn anticlockwise
)
def test_exif_orientation_is_applied(orientation: int, red_corner: tuple[int, int]) -> None:
    stored = Image.new("RGB", (80, 60), WHITE)
    stored.paste(RED, (0, 0, 20, 20))  # marks the stored top-left corner
    intake = load_untrusted(encoded(stored, "JPEG", exif=exif_turned(orientation), quality=95))

    assert intake.image.size == (60, 80)
    assert_close(intake.image.getpixel(red_corner), RED, tolerance=20)
    assert_close(intake.image.getpixel((0, 0) if red_corner != (0, 0) else (59, 79)), WHITE, tolerance=20)
    assert_clean_rgb(intake)


def test_gps_and_other_exif_never_reach_the_png() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretPhoneMaker"
    exif[ExifTags.Base.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0)}
    sent = encoded(Image.new("RGB", (64, 48), RED), "JPEG", exif=exif)
    assert Image.open(io.BytesIO(sent)).getexif().get_ifd(ExifTags.IFD.GPSInfo), "the test photo must carry GPS"

    png = encode_png(load_untrusted(sent).image)

    reopened = Image.open(io.BytesIO(png))
    assert len(reopened.getexif()) == 0
    assert reopened.info == {}
    for chunk_type in (b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"iCCP"):
        assert chunk_type not in png
    assert b"SecretPhoneMaker" not in png


def test_cmyk_jpeg_becomes_rgb() -> None:
    intake = load_untrusted(encoded(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95))

    assert_clean_rgb(intake)
    assert_close(intake.image.getpixel((32, 24)), RED)


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    data = encoded(Image.new("I;16", (64, 48), 40_000), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I"), "the test image must really be 16-bit"

    intake = load_untrusted(data)

    assert_clean_rgb(intake)
    assert_close(intake.image.getpixel((5, 5)), (155, 155, 155), tolerance=1)  # 40000 / 257


@pytest.mark.parametrize("mode, value, shown", [("L", 155, 155), ("I;16", 40_000, 155)])
def test_a_grey_png_s_transparent_value_is_painted_white_at_8_and_16_bits(mode, value, shown) -> None:
    grey = Image.new(mode, (64, 48), value)
    grey.paste(Image.new(mode, (32, 48), 7), (0, 0))  # left half: the grey value tRNS declares transparent
    data = encoded(grey, "PNG", transparency=7)
    assert Image.open(io.BytesIO(data)).info["transparency"] == 7, "the test image must really carry tRNS"

    intake = load_untrusted(data)

    assert_clean_rgb(intake)
    assert intake.image.getpixel((10, 10)) == WHITE
    assert_close(intake.image.getpixel((50, 10)), (shown, shown, shown), tolerance=1)


def test_palette_png_transparency_is_painted_white() -> None:
    palette_image = Image.new("P", (64, 48), 1)
    palette_image.putpalette([0, 0, 0, *RED])
    palette_image.paste(0, (0, 0, 32, 48))  # left half: index 0, declared transparent

    intake = load_untrusted(encoded(palette_image, "PNG", transparency=0))

    assert_clean_rgb(intake)
    assert intake.image.getpixel((10, 10)) == WHITE
    assert intake.image.getpixel((50, 10)) == RED


def test_grey_with_alpha_is_composited() -> None:
    grey_alpha = Image.new("LA", (64, 48), (0, 0))  # black, fully transparent
    grey_alpha.paste((0, 255), (32, 0, 64, 48))  # right half: black, opaque

    intake = load_untrusted(encoded(grey_alpha, "PNG"))

    assert intake.image.getpixel((10, 10)) == WHITE
    assert intake.image.getpixel((50, 10)) == (0, 0, 0)


def test_rgba_is_composited_onto_the_chosen_background() -> None:
    rgba = Image.new("RGBA", (64, 48), (*RED, 0))
    rgba.paste((*BLUE, 255), (32, 0, 64, 48))
    rgba.paste((*RED, 128), (0, 0, 16, 48))
    data = encoded(rgba, "PNG")

    on_white = load_untrusted(data)
    on_black = load_untrusted(data, background=(0, 0, 0))

    assert on_white.image.getpixel((20, 10)) == WHITE
    assert on_white.image.getpixel((50, 10)) == BLUE
    assert_close(on_white.image.getpixel((5, 10)), (255, 127, 127), tolerance=2)
    assert on_black.image.getpixel((20, 10)) == (0, 0, 0)
    assert_close(on_black.image.getpixel((5, 10)), (128, 0, 0), tolerance=2)


def test_an_embedded_srgb_profile_is_applied_and_dropped() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(Image.new("RGB", (64, 48), (30, 120, 200)), "PNG", icc_profile=srgb)

    intake = load_untrusted(data)

    assert_clean_rgb(intake)
    assert_close(intake.image.getpixel((5, 5)), (30, 120, 200), tolerance=2)


def test_a_broken_colour_profile_is_ignored() -> None:
    data = encoded(Image.new("RGB", (64, 48), (30, 120, 200)), "PNG", icc_profile=b"not a profile at all" * 10)

    intake = load_untrusted(data)

    assert_clean_rgb(intake)
    assert intake.image.getpixel((5, 5)) == (30, 120, 200)


def test_unreadable_exif_is_ignored_not_fatal() -> None:
    data = encoded(Image.new("RGB", (64, 48), RED), "WEBP", lossless=True, exif=b"MM\x00i\x00\x00\x00\x08junk")

    intake = load_untrusted(data)

    assert_clean_rgb(intake)
    assert intake.image.size == (64, 48)


@pytest.mark.parametrize("image_format", ["GIF", "WEBP", "PNG"])
def test_animations_give_their_first_frame_and_say_so(image_format: str) -> None:
    intake = load_untrusted(animation(image_format, [RED, BLUE, BLUE]))

    assert intake.notice == ANIMATED_NOTICE
    assert intake.original_format == image_format
    assert_clean_rgb(intake)
    assert intake.image.getpixel((10, 10)) == RED
