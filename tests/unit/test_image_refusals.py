"""Intake of untrusted image bytes: what is refused and how, always one human line and never a crash, from the
header where the header is enough."""

from __future__ import annotations

import io
import random
import warnings

import pytest
from PIL import Image, ImageFile

from core.errors import BadImage
from core.images import load_untrusted
from tests.support.images_factory import (
    BLUE,
    HTML,
    LINUX_EXECUTABLE,
    PDF,
    RED,
    SVG,
    WINDOWS_EXECUTABLE,
    animation,
    encoded,
    exif_turned,
    noisy_rgb,
    one_bit_png,
)


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
