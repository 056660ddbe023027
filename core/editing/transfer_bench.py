"""Benchmark: what full-resolution results cost per edit of a 12 MP photo (no model needed).

    editbot bench --transfer [--repeats 5] [--json]

On a photo-like synthetic picture of 4032x3024 it times `core.editing.transfer.transfer` for stand-in edits (an
identity, a change in a rectangle, a tint of the whole picture) and the storage of a full-size node against a
working-size one (lossless JPEG XL encode and decode). The machine is shared, so every case runs once per round, the
rounds interleaved in alternating order (core.benchstats.round_order), and each case reports the median of its
rounds with their interquartile range: CPU time of this process (what the code costs) beside wall time (what it cost
with the machine's other load). It prints the peak memory one transfer adds over holding the photo, and what one
full-size edit's storage path (decode the parent, transfer, encode the node) adds over the working-size path the bot
had before; the bytes per node (upload JPEG, stored JPEG XL, PNG); the PSNR of an identity edit next to the
downscale-upscale the bot did before; and the share of the CPU other processes took meanwhile.
"""

from __future__ import annotations

import io
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core.benchstats import MachineLoad, round_order, spread
from core.editing.pix2pix_parts import working_size
from core.editing.transfer import transfer
from core.images import encode_png
from core.stored_images import decode_stored, encode_stored

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def photo_like(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: smooth gradients, texture at several scales on its right half, sensor noise."""
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([120 + 60 * np.sin(x / (width / 10)), 110 + 50 * np.cos(y / (height / 10)),
                     100 + 40 * np.sin((x + y) / (width / 8))], axis=-1)
    texture = np.zeros((height, width), np.float32)
    for scale, amplitude in ((64, 20), (16, 14), (4, 8)):
        coarse = rng.normal(0, 1, (height // scale + 2, width // scale + 2)).astype(np.float32)
        levels = Image.fromarray(np.clip((coarse + 4) * 32, 0, 255).astype(np.uint8))
        texture += amplitude * (np.asarray(levels.resize(size, Image.Resampling.BICUBIC), np.float32) / 32 - 4)
    texture *= x > width / 2
    noise = rng.normal(0, 2, (height, width))
    return Image.fromarray(np.clip(base + (texture + noise)[..., None], 0, 255).astype(np.uint8))


def run_transfer_benchmark(*, side: int = 4032, repeats: int = 5, as_json: bool = False) -> dict:
    """Time and measure as the module says; print a table (or one JSON object) and return the figures."""
    full = (side, side * 3 // 4)
    jpeg = io.BytesIO()
    photo_like(full).save(jpeg, format="JPEG", quality=90)
    upload = jpeg.getvalue()
    with Image.open(io.BytesIO(upload)) as opened:
        photo = opened.convert("RGB")
    small = photo.resize(working_size(*photo.size, 512), Image.Resampling.LANCZOS)
    edits = {"identity": small, "rectangle +40 red": _shifted(small, (0.3, 0.3, 0.55, 0.6), (40, 0, 0)),
             "whole-picture tint": _shifted(small, (0, 0, 1, 1), (25, 0, -25))}
    stored = encode_stored(photo)
    cases: dict[str, Callable[[], object]] = {
        f"transfer: {name}": (lambda edited=edited: transfer(photo, small, edited)) for name, edited in edits.items()}
    cases |= {"encode node, full size (JPEG XL)": lambda: encode_stored(photo),
              "encode node, working size (before)": lambda: encode_png(small),
              "decode node, full size": lambda: decode_stored(stored)}
    figures: dict = {"size": f"{full[0]}x{full[1]}", "working": f"{small.width}x{small.height}", "rounds": repeats}
    with MachineLoad() as load:
        figures["cases"] = _rounds(cases, repeats)
    figures["machine"] = load.figures()
    figures["peak_added_mib"] = _peak_added(lambda: transfer(photo, small, edits["whole-picture tint"]))
    tint, working_node = edits["whole-picture tint"], encode_png(small)
    before = _peak_added(lambda: (decode_stored(working_node), encode_png(tint)))
    after = _peak_added(lambda: _full_size_node(stored, tint))
    figures["edit_peak_mib"] = {"working_size_before": before, "full_size": after, "added": after - before}
    figures["bytes_per_node"] = {"upload_jpeg_q90": len(upload), "stored_lossless": len(stored),
                                 "png": len(encode_png(photo))}
    upscaled = small.resize(photo.size, Image.Resampling.LANCZOS)
    figures["identity_psnr_db"] = _psnr(transfer(photo, small, small), photo)
    figures["downscale_upscale_psnr_db"] = _psnr(upscaled, photo)
    if as_json:
        print(json.dumps(figures))
    else:
        _print_table(figures)
    return figures


def _rounds(cases: dict[str, Callable[[], object]], repeats: int) -> list[dict]:
    """Each case once per round, in alternating order; per case the median wall and CPU ms and the CPU IQR (%)."""
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for name, run in cases.items():  # a first, untimed run: imports, allocator and caches warm
        run()
    for round_index in range(max(1, repeats)):
        for name in round_order(list(cases), round_index):
            wall, cpu = time.perf_counter(), time.process_time()
            cases[name]()
            walls[name].append((time.perf_counter() - wall) * 1000)
            cpus[name].append((time.process_time() - cpu) * 1000)
    return [{"case": name, "wall_ms": round(statistics.median(walls[name])),
             "cpu_ms": round(statistics.median(cpus[name])), "cpu_iqr_pct": spread(cpus[name])["iqr_pct"]}
            for name in cases]


def _full_size_node(stored: bytes, edited: Image.Image) -> bytes:
    """What the runner does around the editor for a full-size node: decode the parent, shrink it to the working size
    for the editor, bring the edit onto it, encode the result."""
    parent = decode_stored(stored)
    small = parent.resize(edited.size, Image.Resampling.LANCZOS)
    return encode_stored(transfer(parent, small, edited))


def _peak_added(run: Callable[[], object]) -> int:
    """Peak RSS (MiB) while `run` runs, over the RSS before it."""
    before = _reset_peak()
    run()
    return round(_peak_mib() - before)


def _shifted(image: Image.Image, box: tuple[float, float, float, float], shift: tuple[int, int, int]) -> Image.Image:
    pixels = np.asarray(image, np.int16).copy()
    left, top, right, bottom = (round(edge * length) for edge, length in zip(box, image.size * 2))
    pixels[top:bottom, left:right] += np.array(shift, np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _reset_peak() -> float:
    """Reset the process's peak RSS where Linux allows it; returns the RSS now (MiB)."""
    if _CLEAR_REFS.exists():
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:
            pass
    return _status_mib("VmRSS")


def _peak_mib() -> float:
    return _status_mib("VmHWM")


def _status_mib(field: str) -> float:
    match = re.search(rf"{field}:\s+(\d+) kB", _STATUS.read_text()) if _STATUS.exists() else None
    return int(match.group(1)) / 1024 if match else float("nan")


def _psnr(first: Image.Image, second: Image.Image) -> float:
    difference = np.asarray(first, np.float32) - np.asarray(second, np.float32)
    mean_square = float((difference ** 2).mean())
    return float("inf") if mean_square == 0 else round(10 * float(np.log10(255 ** 2 / mean_square)), 1)


def _print_table(figures: dict) -> None:
    print(f"photo {figures['size']} · working size {figures['working']} · median of {figures['rounds']} "
          "interleaved rounds")
    print(f"{'case':<40}{'wall ms':>9}{'CPU ms':>9}{'CPU IQR':>9}")
    for case in figures["cases"]:
        print(f"{case['case']:<40}{case['wall_ms']:>9}{case['cpu_ms']:>9}{case['cpu_iqr_pct']:>8}%")
    edit = figures["edit_peak_mib"]
    print(f"peak memory added by one transfer: {figures['peak_added_mib']} MiB · by one edit's storage path "
          f"(decode, transfer, encode): {edit['full_size']} MiB full size against {edit['working_size_before']} MiB "
          f"at the working size, +{edit['added']} MiB")
    sizes = figures["bytes_per_node"]
    print(f"bytes per node: upload JPEG q90 {sizes['upload_jpeg_q90']:,} · stored lossless JPEG XL "
          f"{sizes['stored_lossless']:,} · PNG {sizes['png']:,}")
    print(f"identity edit PSNR {figures['identity_psnr_db']} dB · downscale-upscale (before) "
          f"{figures['downscale_upscale_psnr_db']} dB")
    share = figures["machine"]["others_cpu_share"]
    if share is not None:
        print(f"other processes used {share:.0%} of the machine's CPU meanwhile (load average "
              f"{figures['machine']['load_average_before']} before): wall times inflated by it, CPU times less")
