"""`editbot bench-images --storage`: the bytes each node of a 12 MP photo's tree takes in the image store.

A photo-like synthetic 4032x3024 picture (core.editing.transfer_bench.photo_like) is saved as a phone would: a q90
JPEG with EXIF (maker, GPS position, orientation). It goes through intake and `stored_upload` as the engine does
(the root), then two stand-in edits are stored as the runner stores results: a tint of the whole picture and a tint of
its left half (a regional edit: outside the region the parent's pixels exactly). For the edited node lossless
codecs are compared (bytes, CPU ms to encode and decode): what chose JPEG XL effort 1 (stored) over WebP.
"""

from __future__ import annotations

import io
import time

import imagecodecs
import numpy as np
from PIL import Image

from core.images import encode_png, load_untrusted
from core.stored_images import decode_stored, encode_stored, stored_upload


def _webp(method: int):
    def encode(picture: Image.Image) -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, format="WEBP", lossless=True, method=method, quality=0)
        return buffer.getvalue()
    return encode


def _jpeg_xl(effort: int):
    return lambda picture: imagecodecs.jpegxl_encode(np.asarray(picture), lossless=True, effort=effort, numthreads=1)


CODECS = {"JPEG XL effort 1 (stored)": _jpeg_xl(1), "JPEG XL effort 2": _jpeg_xl(2),
          "WebP method 0 (stored before)": _webp(0), "WebP method 1": _webp(1), "WebP method 4": _webp(4)}


def phone_upload(size: tuple[int, int]) -> bytes:
    from core.editing.transfer_bench import photo_like

    exif = Image.Exif()
    exif[0x010F], exif[0x0112], exif[0x8825] = "PhoneMaker", 1, {1: "N", 2: (48.0, 51.0, 30.0)}
    buffer = io.BytesIO()
    photo_like(size).save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def tinted(picture: Image.Image, right_edge: float) -> Image.Image:
    pixels = np.asarray(picture, np.int16).copy()
    pixels[:, : round(picture.width * right_edge)] += np.array((25, 0, -25), np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def run_storage_benchmark(side: int = 4032) -> dict:
    """Measure as the module says; the figures as a dict (bytes, and CPU ms on this machine)."""
    upload = phone_upload((side, side * 3 // 4))
    intake = load_untrusted(upload)
    started = time.process_time()
    root, photo = stored_upload(upload, intake)
    root_ms = (time.process_time() - started) * 1000
    figures = {"size": f"{photo.width}x{photo.height}", "upload_jpeg_with_exif": len(upload),
               "root": {"format": "JPEG" if root.startswith(b"\xff\xd8") else "JPEG XL", "bytes": len(root),
                        "cpu_ms": round(root_ms)},
               "root_if_reencoded": len(encode_stored(photo)), "root_as_png": len(encode_png(photo))}
    for name, edited in (("whole-picture edit", tinted(photo, 1.0)), ("regional edit", tinted(photo, 0.5))):
        figures[name] = {"bytes": len(encode_stored(edited)), "codecs": {}}
        for codec, encode in CODECS.items():
            started = time.process_time()
            data = encode(edited)
            encode_ms = (time.process_time() - started) * 1000
            started = time.process_time()
            decode_stored(data)
            figures[name]["codecs"][codec] = {
                "bytes": len(data), "encode_cpu_ms": round(encode_ms),
                "decode_cpu_ms": round((time.process_time() - started) * 1000)}
    return figures


def print_storage(figures: dict) -> None:
    upload = figures["upload_jpeg_with_exif"]
    print(f"bytes per node, {figures['size']} photo-like picture (upload: q90 JPEG with EXIF/GPS, {upload:,} B)")
    root = figures["root"]
    print(f"  root, stored as {root['format']}: {root['bytes']:,} B ({root['bytes'] / upload:.2f}x the upload, "
          f"{root['cpu_ms']} CPU ms); re-encoded it would be {figures['root_if_reencoded']:,} B (JPEG XL "
          f"lossless), {figures['root_as_png']:,} B (PNG)")
    for name in ("whole-picture edit", "regional edit"):
        print(f"  {name}: {figures[name]['bytes']:,} B ({figures[name]['bytes'] / upload:.2f}x the upload)")
        for codec, row in figures[name]["codecs"].items():
            print(f"    lossless {codec}: {row['bytes']:,} B, encode {row['encode_cpu_ms']} CPU ms, "
                  f"decode {row['decode_cpu_ms']} CPU ms")
