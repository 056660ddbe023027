"""Pictures built to exhaust the machine are refused before they cost much, and pictures shown small are decoded
small: progressive JPEGs with thousands of scans, PNG metadata that inflates, and contact sheets of full-size
photos."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, ImageFile

from bot.images_bench import hostile_progressive_jpeg, photo_like
from core import pictures
from core.errors import BadImage
from core.images import MAX_JPEG_SCANS_PER_COMPONENT, encode_png, load_untrusted
from core.stored_images import decode_thumbnail


def test_a_progressive_jpeg_with_thousands_of_scans_is_refused_before_decoding(monkeypatch):
    hostile = hostile_progressive_jpeg(2000, scans=3000)
    assert len(hostile) < 1_000_000
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda image: decoded.append(image.size))

    with pytest.raises(BadImage, match="progressive passes"):
        load_untrusted(hostile)
    assert decoded == []  # refused from the bytes alone, not after libjpeg walked the scans


def test_ordinary_progressive_jpegs_are_accepted():
    for mode in ("RGB", "L", "CMYK"):
        buffer = io.BytesIO()
        photo_like(256).convert(mode).save(buffer, "JPEG", progressive=True)
        assert load_untrusted(buffer.getvalue()).image.size == (256, 256)


def test_the_most_scans_allowed_are_accepted_and_one_more_is_refused():
    ordinary_scans = 10  # Pillow's progressive colour JPEG
    most = 3 * MAX_JPEG_SCANS_PER_COMPONENT
    assert load_untrusted(hostile_progressive_jpeg(64, scans=most - ordinary_scans)).image.size == (64, 64)
    with pytest.raises(BadImage):
        load_untrusted(hostile_progressive_jpeg(64, scans=most - ordinary_scans + 1))


def test_jpeg_bytes_that_merely_contain_scan_markers_in_metadata_are_accepted():
    buffer = io.BytesIO()
    photo_like(128).save(buffer, "JPEG", exif=b"Exif\x00\x00" + b"\xff\xda\x00\x02" * 300)
    assert load_untrusted(buffer.getvalue()).image.size == (128, 128)


def loaded_sizes(monkeypatch) -> list[tuple[int, int]]:
    """The size of every picture Pillow decodes from now on."""
    sizes: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def recording_load(image):
        sizes.append(image.size)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    return sizes


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


INFLATING = zlib.compress(bytes(2 * 1024 * 1024), 9)  # 2 KB that inflate to 2 MB, past Pillow's 1 MB per chunk


@pytest.mark.parametrize("chunks, where", [
    ([png_chunk(b"zTXt", b"comment\0\0" + INFLATING)], "before the pixels"),
    ([png_chunk(b"iCCP", b"profile\0\0" + INFLATING)], "before the pixels"),
    ([png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\1\0\0\0" + INFLATING)], "after the pixels"),
    # 70 chunks inflating to 1 MB each: past the 64 MB Pillow allows for all text together, in 70 KB.
    ([png_chunk(b"zTXt", b"k%d\0\0" % n + zlib.compress(bytes(1024 * 1024), 9)) for n in range(70)], "after the pixels"),
], ids=["zTXt", "iCCP", "iTXt", "many zTXt"])
def test_png_metadata_that_inflates_past_pillows_limits_is_refused_as_such(chunks, where):
    """Not called damaged with a request to send it again, which could never help: the picture itself is fine."""
    png = encode_png(Image.new("RGB", (64, 64), (200, 100, 50)))
    cut = png.index(b"IDAT") - 4 if where == "before the pixels" else png.index(b"IEND") - 4
    hostile = png[:cut] + b"".join(chunks) + png[cut:]
    assert len(hostile) < 100_000
    with pytest.raises(BadImage) as refusal:
        load_untrusted(hostile)
    assert str(refusal.value) == ("That PNG carries too much hidden metadata (text, colour profile); please save it as "
                                  "a JPEG.")


def test_a_stored_jpeg_is_decoded_at_a_reduced_scale(monkeypatch):
    buffer = io.BytesIO()
    photo_like(2048).save(buffer, "JPEG")
    sizes = loaded_sizes(monkeypatch)

    thumbnail = decode_thumbnail(buffer.getvalue(), 224)

    assert thumbnail.size == (224, 224) and thumbnail.mode == "RGB"
    assert max(max(size) for size in sizes) <= 512  # libjpeg scaled it by 1/4 while decoding


def test_a_contact_sheet_fetches_and_decodes_its_pictures_one_at_a_time(monkeypatch):
    stored = encode_png(photo_like(600))
    events: list[str] = []
    sizes = loaded_sizes(monkeypatch)
    resize = Image.Image.resize

    def shrinking(image, *args, **kwargs):
        events.append("shrunk")
        return resize(image, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", shrinking)

    def fetch(number: int):
        def stored_bytes() -> bytes:
            events.append(f"fetched {number}")
            return stored
        return stored_bytes

    entries = [pictures.SheetEntry(number, fetch(number), f"edit {number}") for number in range(3)]
    assert events == []  # nothing is fetched before the sheet is drawn
    sheet = pictures.contact_sheet(entries)

    fetched = [index for index, event in enumerate(events) if event.startswith("fetched")]
    assert [events[index] for index in fetched] == ["fetched 0", "fetched 1", "fetched 2"]
    # Each picture is shrunk before the next one is fetched: one full-size picture in memory at a time.
    assert all("shrunk" in events[start:end] for start, end in zip(fetched, fetched[1:]))
    assert sizes and sheet.width > 3 * pictures.THUMB


def test_compare_takes_stored_bytes_and_matches_the_decoded_layout():
    before, after = photo_like(1600), photo_like(1600).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    from_images = pictures.compare(before, after, caption="make it night")
    from_bytes = pictures.compare(encode_png(before), lambda: encode_png(after), caption="make it night")
    assert from_bytes.size == from_images.size
