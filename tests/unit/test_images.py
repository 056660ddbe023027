"""Intake of untrusted image bytes: what is accepted, how it is normalised, what is refused and how."""

from __future__ import annotations

import io
import random
import warnings
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile

import bot
from core.errors import BadImage
from core.images import (
    ANIMATED_NOTICE,
    Intake,
    encode_for_upload,
    encode_png,
    load_untrusted,
)
from tests.support.images_factory import (
    HTML,
    LINUX_EXECUTABLE,
    PDF,
    SVG,
    WINDOWS_EXECUTABLE,
    animation,
    encoded,
    noisy_rgb,
    one_bit_png,
)

WHITE = (255, 255, 255)
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 6) -> None:
    """Colours equal within `tolerance` per channel (JPEG is lossy)."""
    assert all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True)), (actual, expected)


def assert_clean_rgb(intake: Intake) -> None:
    assert intake.image.mode == "RGB"
    assert intake.image.info == {}
    assert len(intake.image.getexif()) == 0


def exif_turned(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif


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


# --- refusals -----------------------------------------------------------------------------------------------------


def _cut_in_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


REFUSED = {
    "empty": b"",
    "random bytes": random.Random(7).randbytes(4096),
    "html": HTML,
    "pdf": PDF,
    "svg": SVG,
    "windows executable": WINDOWS_EXECUTABLE,
    "linux executable": LINUX_EXECUTABLE,
    "bmp": encoded(Image.new("RGB", (64, 48), RED), "BMP"),
    "tiff": encoded(Image.new("RGB", (64, 48), RED), "TIFF"),
    "ico": encoded(Image.new("RGB", (64, 64), RED), "ICO"),
    "truncated jpeg": _cut_in_half(encoded(noisy_rgb((128, 96)), "JPEG")),
    "truncated png": _cut_in_half(encoded(noisy_rgb((128, 96)), "PNG")),
    "truncated gif": _cut_in_half(encoded(noisy_rgb((128, 96)).quantize(256), "GIF")),
    "truncated webp": _cut_in_half(encoded(noisy_rgb((128, 96)), "WEBP")),
    "png header only": encoded(noisy_rgb((128, 96)), "PNG")[:40],
    "strip 1000x10": encoded(Image.new("RGB", (1000, 10)), "PNG"),
    "tiny 10x10": encoded(Image.new("RGB", (10, 10)), "PNG"),
}


@pytest.mark.parametrize("data", REFUSED.values(), ids=REFUSED.keys())
def test_refusals_are_one_human_line(data: bytes) -> None:
    with pytest.raises(BadImage) as refusal:
        load_untrusted(data)

    message = str(refusal.value)
    assert message and "\n" not in message and len(message) < 160
    assert message[0].isupper() and message.endswith(".")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (HTML, "JPEG, PNG, WebP or GIF"),
        (REFUSED["bmp"], "JPEG, PNG, WebP or GIF"),
        (REFUSED["truncated jpeg"], "incomplete"),
        (REFUSED["truncated png"], "incomplete"),
        (REFUSED["png header only"], "damaged or incomplete"),
        (REFUSED["strip 1000x10"], "1000x10, too long and thin; the longer side may be at most 8 times"),
        (REFUSED["tiny 10x10"], "10x10; each side must be at least 32 pixels"),
    ],
)
def test_refusals_say_what_is_wrong(data: bytes, words: str) -> None:
    with pytest.raises(BadImage, match=words):
        load_untrusted(data)


def test_a_disguised_file_is_judged_by_content_not_name() -> None:
    """A GIF that someone called photo.jpg is still a GIF, and an executable called photo.jpg is refused."""
    assert load_untrusted(encoded(Image.new("RGB", (64, 48)), "GIF")).original_format == "GIF"
    with pytest.raises(BadImage, match="none of them"):
        load_untrusted(WINDOWS_EXECUTABLE)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG"])
def test_truncation_is_caught_even_when_pillow_is_told_to_hide_it(
    image_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    truncated = _cut_in_half(encoded(noisy_rgb((128, 96)), image_format))
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert Image.open(io.BytesIO(truncated)).load() is not None, "Pillow must really hide the truncation here"

    with pytest.raises(BadImage, match="incomplete"):
        load_untrusted(truncated)


def _mangled(data: bytes, rng: random.Random) -> bytes:
    """`data` with a few random bytes overwritten, sometimes also cut short."""
    mangled = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        mangled[rng.randrange(len(mangled))] = rng.randrange(256)
    return bytes(mangled[: rng.randrange(len(mangled))] if rng.random() < 0.2 else mangled)


@pytest.mark.parametrize(
    "valid",
    [
        encoded(noisy_rgb((64, 48)), "JPEG", exif=exif_turned(6)),
        encoded(noisy_rgb((64, 48)).quantize(16), "PNG", transparency=0),
        encoded(noisy_rgb((64, 48)), "WEBP", exif=exif_turned(8)),
        animation("GIF", [RED, BLUE]),
        animation("PNG", [RED, BLUE]),
        animation("WEBP", [RED, BLUE]),
    ],
    ids=["jpeg", "png", "webp", "gif", "apng", "animated webp"],
)
@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # Pillow notes the corrupt EXIF it skips
def test_mangled_files_give_an_image_or_a_refusal_never_a_crash(valid: bytes) -> None:
    """A small deterministic fuzz: whatever Pillow's parsers raise inside must come out as BadImage."""
    rng = random.Random(len(valid))
    for _ in range(60):
        try:
            intake = load_untrusted(_mangled(valid, rng))
        except BadImage as refusal:
            assert "\n" not in str(refusal)
        else:
            assert intake.image.mode == "RGB"


@pytest.fixture
def decoding_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel data is decoded: header refusals must come before the pixels exist."""

    def refuse_to_decode(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"decoded the pixels of a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_to_decode)


@pytest.mark.parametrize(
    ("size", "words"),
    [
        ((20_000, 20_000), "That image is 400 MP; the limit is 40 MP."),  # Pillow's own bomb limit trips first
        ((10_000, 9_000), "That image is 90 MP; the limit is 40 MP."),  # Pillow's bomb warning, made an error
        ((8_000, 6_000), "That image is 8000x6000 (48 MP); the limit is 40 MP."),
        ((1000, 10), "too long and thin"),
        ((10, 10), "at least 32 pixels"),
    ],
)
@pytest.mark.usefixtures("decoding_forbidden")
def test_oversized_and_odd_shapes_are_refused_from_the_header(size: tuple[int, int], words: str) -> None:
    bomb = one_bit_png(*size)
    assert len(bomb) < 100_000

    with pytest.raises(BadImage) as refusal:
        load_untrusted(bomb)

    assert words in str(refusal.value)


@pytest.mark.usefixtures("decoding_forbidden")
def test_the_pixel_limit_is_a_parameter() -> None:
    with pytest.raises(BadImage, match=r"^That image is 1000x1000 \(1 MP\); the limit is 0.5 MP\.$"):
        load_untrusted(one_bit_png(1000, 1000), max_pixels=500_000)


def test_warning_filters_are_left_as_they_were() -> None:
    before = list(warnings.filters)

    with pytest.raises(BadImage):
        load_untrusted(one_bit_png(10_000, 9_000))
    load_untrusted(encoded(Image.new("RGB", (64, 48)), "PNG"))

    assert warnings.filters == before


# --- encoding -----------------------------------------------------------------------------------------------------


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
