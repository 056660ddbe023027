"""Craft image bytes in code, friendly and hostile, for the intake tests. Nothing here touches the disk."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import ExifTags, Image

WHITE = (255, 255, 255)
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def encoded(image: Image.Image, image_format: str, **save_options: object) -> bytes:
    """`image` saved in `image_format` with Pillow's save options."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **save_options)
    return buffer.getvalue()


def exif_turned(orientation: int) -> Image.Exif:
    """EXIF that tells a viewer to turn the picture (6: clockwise, 8: anticlockwise)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif


def noisy_rgb(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Random pixels: they compress badly, so a cut through the file lands in the pixel data."""
    width, height = size
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(width * height * 3))


def animation(image_format: str, colours: list[tuple[int, int, int]], size: tuple[int, int] = (64, 48)) -> bytes:
    """An animation with one solid frame per colour."""
    frames = [Image.new("RGB", size, colour) for colour in colours]
    options: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": 100, "loop": 0}
    if image_format == "WEBP":
        options["lossless"] = True
    return encoded(frames[0], image_format, **options)


def _png_chunk(chunk_type: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + chunk_type + body + struct.pack(">I", zlib.crc32(chunk_type + body))


def one_bit_png(width: int, height: int) -> bytes:
    """A complete, valid black 1-bit PNG of any size, built row by row so the pixels never exist in memory.

    Zero rows deflate about 1000:1, so 20000x20000 (400 megapixels) takes a few tens of kilobytes.
    """
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale, no interlace
    row = b"\x00" * (1 + (width + 7) // 8)  # filter type 0, then packed pixels
    compressor = zlib.compressobj(9)
    pixel_data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixel_data)
        + _png_chunk(b"IEND", b"")
    )


HTML = b"<!DOCTYPE html><html><head><title>photo.jpg</title></head><body><img src=x onerror=alert(1)></body></html>"
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
    b'<rect width="640" height="480" fill="red"/></svg>'
)
# The start of a Windows and a Linux executable, as someone might send them renamed to photo.jpg.
WINDOWS_EXECUTABLE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
LINUX_EXECUTABLE = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 40
