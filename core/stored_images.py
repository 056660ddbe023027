"""What the image store keeps (an uploaded photo, an edit) and how it is read back, and the picture a chat shows
for a result.

An uploaded JPEG is kept as its own bytes with every metadata segment cut out (EXIF and its GPS position, XMP,
IPTC, ICC profiles, comments, embedded thumbnails, the extra pictures of an MPO), not re-encoded: the root of a
tree costs about what its upload did instead of the ~4x of a lossless re-encode. That is done only when those bytes
decode to exactly the pixels intake produced: a photo that had to be turned upright (EXIF orientation), converted
from its colour profile or brought down to EDITBOT_MAX_OUTPUT_SIDE is stored like every edit, as lossless JPEG XL
(`encode_stored`). Either way the stored bytes decode to the same pixels, and carry no metadata.

A result is shown as a JPEG (`encode_preview`): Telegram recompresses photos anyway and Discord caps uploads; the
lossless file stays one /file away. On a 1280x960 photo a JPEG takes 4 ms where PNG took ~90 ms (`editbot bench
--pipeline`).
"""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
from PIL import Image

from core.images import _MARKER_AFTER_SCAN_DATA, Intake

PREVIEW_QUALITY = 92
"""JPEG quality of the pictures chats show: artefacts are not visible at 92, and a 12 MP result stays well under
Telegram's 10 MB photo limit."""

_SOI, _EOI, _SOS, _APP0, _APP14, _COM = 0xD8, 0xD9, 0xDA, 0xE0, 0xEE, 0xFE
_APP_MARKERS = range(0xE0, 0xF0)
# JFIF header: identifier, version (2), density units (1), densities (2 + 2), thumbnail width and height (1 + 1).
_JFIF_FIELDS = 5 + 2 + 1 + 4 + 2


# Stored edits: lossless JPEG XL, fastest effort (uploads: stored_upload below). 1280x960 photo, CPU ms of one
# thread: it encodes in 4 (1.48 MB) and decodes in 29; lossless WebP method 0, stored before, took 31 (1.44 MB) and 18.
# Each edit encodes once while its person waits and decodes only on a miss of core/picture_cache.py.
_JPEG_XL_SIGNATURES = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")


def encode_stored(image: Image.Image) -> bytes:
    """How the image store keeps pictures: lossless JPEG XL of the RGB pixels, no metadata (no EXIF/GPS, no ICC);
    one thread, leaving the other cores to other people's edits."""
    return imagecodecs.jpegxl_encode(np.asarray(image.convert("RGB")), lossless=True, effort=1, numthreads=1)


def decode_stored(data: bytes) -> Image.Image:
    """An image we stored ourselves (trusted: encode_stored's JPEG XL, an upload's JPEG without metadata, or the
    WebP and PNG of older nodes), loaded, in RGB, without metadata."""
    if data.startswith(_JPEG_XL_SIGNATURES):
        return Image.fromarray(imagecodecs.jpegxl_decode(data, numthreads=1), "RGB")
    with Image.open(io.BytesIO(data)) as stored:
        image = stored.convert("RGB")
    image.info.clear()
    return image


def stored_as_png(data: bytes) -> bytes:
    """Stored bytes as the PNG that replies carry: older PNG nodes as they are, others re-encoded (fastest zlib
    level: a 12 MP picture takes about a second instead of six)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    buffer = io.BytesIO()
    decode_stored(data).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_thumbnail(data: bytes, box: int | tuple[int, int]) -> Image.Image:
    """An image we stored ourselves, in RGB, fitting `box` (a side, or width and height), decoded no bigger than
    needed; never enlarged.

    JPEG is decoded at a reduced scale (libjpeg's DCT scaling, 1/2 to 1/8); other formats are decoded whole and
    shrunk at once, so a caller looping over pictures holds at most one full-size picture at a time.
    """
    if data.startswith(_JPEG_XL_SIGNATURES):  # Pillow does not read it
        picture = decode_stored(data)
        picture.thumbnail((box, box) if isinstance(box, int) else box, Image.Resampling.LANCZOS)
        return picture
    with Image.open(io.BytesIO(data)) as stored:
        stored.thumbnail((box, box) if isinstance(box, int) else box, Image.Resampling.LANCZOS)
        return stored.convert("RGB")


def stored_size(data: bytes) -> tuple[int, int]:
    """Width and height of stored bytes, from their header only."""
    if data.startswith(b"\xff\x0a"):
        return _jpeg_xl_size(data)
    if data.startswith(_JPEG_XL_SIGNATURES):  # the container form: libjxl writes it only past 262,144 px a side
        return decode_stored(data).size
    with Image.open(io.BytesIO(data)) as header:
        return header.size


# JPEG XL's size header (ISO/IEC 18181-1, SizeHeader): fixed aspect ratios, and the four bit lengths of a size.
_JPEG_XL_RATIOS = {1: (1, 1), 2: (12, 10), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}
_JPEG_XL_SIZE_BITS = (9, 13, 18, 30)


def _jpeg_xl_size(data: bytes) -> tuple[int, int]:
    """The size a bare JPEG XL codestream (encode_stored's) declares after its signature; bits are read least
    significant first."""
    bits = int.from_bytes(data[2:14], "little")
    position = 0

    def read(count: int) -> int:
        nonlocal position
        value = (bits >> position) & ((1 << count) - 1)
        position += count
        return value

    def side(small: bool) -> int:
        return 8 * (1 + read(5)) if small else 1 + read(_JPEG_XL_SIZE_BITS[read(2)])

    small = bool(read(1))
    height = side(small)
    ratio = read(3)
    if ratio == 0:
        return side(small), height
    numerator, denominator = _JPEG_XL_RATIOS[ratio]
    return height * numerator // denominator, height


def stored_upload(data: bytes, intake: Intake) -> tuple[bytes, Image.Image]:
    """What the image store keeps for an accepted upload (`data`, as `intake` read it), and the picture those bytes
    decode to: the JPEG itself without its metadata when it decodes to intake's pixels exactly, else lossless JPEG XL."""
    if intake.original_format == "JPEG":
        stripped = strip_jpeg_metadata(data)
        if stripped is not None:
            decoded = decode_stored(stripped)
            if decoded.size == intake.image.size and decoded.tobytes() == intake.image.tobytes():
                return stripped, decoded
    return encode_stored(intake.image), intake.image


def strip_jpeg_metadata(data: bytes) -> bytes | None:
    """The first picture of JPEG `data` with only the segments a decoder needs (quantisation and Huffman tables,
    frame and scan headers, restart interval, the JFIF and Adobe colour headers), not re-encoded; None for
    structure this walk does not understand (the caller then re-encodes)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    kept, position = [b"\xff\xd8"], 2
    while position + 2 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _EOI:
            kept.append(b"\xff\xd9")
            return b"".join(kept)
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, _SOI):
            return None  # outside a scan these are damage, not structure
        if position + 4 > len(data):
            return None
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if end > len(data):
            return None
        segment = data[position:end]
        if marker == _SOS:  # the header, then the entropy-coded data up to the next marker
            following = _MARKER_AFTER_SCAN_DATA.search(data, end)
            if following is None:
                return None
            end = following.start()
            kept.append(data[position:end])
        elif marker == _APP0 and segment[4:9] == b"JFIF\x00" and len(segment) >= 4 + _JFIF_FIELDS:
            kept.append(_jfif_without_thumbnail(segment))
        elif marker == _APP14 and segment[4:9] == b"Adobe":
            kept.append(segment)  # its colour transform flag says how to read the components
        elif marker not in _APP_MARKERS and marker != _COM:
            kept.append(segment)
        position = end
    return None  # no end of image


def _jfif_without_thumbnail(segment: bytes) -> bytes:
    fields = bytearray(segment[4 : 4 + _JFIF_FIELDS])
    fields[-2:] = b"\x00\x00"  # thumbnail width and height: none
    return b"\xff\xe0" + (2 + len(fields)).to_bytes(2, "big") + bytes(fields)


def encode_preview(image: Image.Image) -> bytes:
    """The JPEG a chat shows for a result (full size, no metadata); the lossless file is what /file sends."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=PREVIEW_QUALITY, exif=b"", icc_profile=None)
    return buffer.getvalue()


def picture_mime(data: bytes) -> str:
    """The MIME type of a picture the engine sends or stores: "image/jpeg" for a preview or a kept upload,
    "image/jxl" for a stored edit, "image/webp" for an older one, else "image/png"."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(_JPEG_XL_SIGNATURES):
        return "image/jxl"
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "image/png"
