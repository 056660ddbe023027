"""What the image store keeps for an uploaded photo, and the picture a chat shows for a result.

An uploaded JPEG is kept as its own bytes with every metadata segment cut out (EXIF and its GPS position, XMP,
IPTC, ICC profiles, comments, embedded thumbnails, the extra pictures of an MPO), not re-encoded: the root of a
tree costs about what its upload did instead of the ~4x of a lossless re-encode. That is done only when those bytes
decode to exactly the pixels intake produced: a photo that had to be turned upright (EXIF orientation), converted
from its colour profile or brought down to EDITBOT_MAX_OUTPUT_SIDE is stored like every edit, as lossless WebP
(core.images.encode_stored). Either way the stored bytes decode to the same pixels, and carry no metadata.

A result is shown as a JPEG (`encode_preview`): Telegram recompresses photos anyway and Discord caps uploads; the
lossless file stays one /file away. On a 1280x960 photo a JPEG takes 4 ms where PNG took ~90 ms (`editbot bench
--pipeline`).
"""

from __future__ import annotations

import io

from PIL import Image

from core.images import _MARKER_AFTER_SCAN_DATA, Intake, decode_stored, encode_stored

PREVIEW_QUALITY = 92
"""JPEG quality of the pictures chats show: artefacts are not visible at 92, and a 12 MP result stays well under
Telegram's 10 MB photo limit."""

_SOI, _EOI, _SOS, _APP0, _APP14, _COM = 0xD8, 0xD9, 0xDA, 0xE0, 0xEE, 0xFE
_APP_MARKERS = range(0xE0, 0xF0)
# JFIF header: identifier, version (2), density units (1), densities (2 + 2), thumbnail width and height (1 + 1).
_JFIF_FIELDS = 5 + 2 + 1 + 4 + 2


def stored_upload(data: bytes, intake: Intake) -> tuple[bytes, Image.Image]:
    """What the image store keeps for an accepted upload (`data`, as `intake` read it), and the picture those bytes
    decode to: the JPEG itself without its metadata when it decodes to intake's pixels exactly, else lossless WebP."""
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
    "image/webp" for a stored edit, else "image/png"."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    return "image/webp" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "image/png"
