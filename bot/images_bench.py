"""`editbot bench-images`: what hostile pictures cost, and the memory a /history contact sheet takes.

Two figures, each against its target:

- Hostile progressive JPEGs (one scan repeated thousands of times): seconds to open a plain JPEG, an ordinary
  progressive one, the costliest file still accepted (the most scans allowed), and how fast a file with thousands
  of scans is refused. Target: an accepted file costs at most 5 times the plain JPEG; a refused one under 1 s.
- /history over 24 full-size stored photos (4000x4000 PNGs, as the image store keeps them): the peak memory the
  contact sheet adds, drawn from pictures decoded one at a time straight to thumbnail size, beside the old way
  (every picture decoded whole first). Target: at most 400 MB added. Each way runs in a fresh process, so the peak
  is its own.

    editbot bench-images [--side 4000] [--scans 5000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from core.errors import BadImage
from core.images import MAX_JPEG_SCANS_PER_COMPONENT, load_untrusted
from core.stored_images import decode_stored

HISTORY_ENTRIES = 24
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--side", type=int, default=4000, help="square side of the test pictures (default 4000)")
    parser.add_argument("--scans", type=int, default=5000, help="scans in the hostile JPEG (default 5000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--storage", action="store_true",
                        help="instead: bytes per stored node of a 4032x3024 photo (root, whole-picture and regional edit)")


def photo_like(side: int) -> Image.Image:
    """Smooth gradients with a little grain: compresses and decodes like a photo, builds in a moment."""
    gradient = Image.linear_gradient("L").resize((side, side))
    grain = Image.effect_noise((side, side), 24)
    return Image.merge("RGB", (gradient, gradient.transpose(Image.Transpose.ROTATE_90), grain))


def hostile_progressive_jpeg(side: int, scans: int) -> bytes:
    """A small, valid progressive JPEG of side x side whose last scan is repeated `scans` extra times.

    A flat picture keeps every scan a few bytes long (runs of empty blocks), yet libjpeg walks every block of the
    picture once per scan: thousands of scans in well under 1 MB.
    """
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    segments = _segments(data)
    last_scan = max(index for index, (_, _, marker) in enumerate(segments) if marker == 0xDA)
    first = last_scan
    while segments[first - 1][2] == 0xC4:  # the Huffman tables the scan uses travel with it
        first -= 1
    repeated = data[segments[first][0] : segments[last_scan][1]]
    end = segments[-1][0]  # EOI
    return data[:end] + repeated * scans + data[end:]


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, marker) of each segment after SOI; a scan includes its entropy-coded data."""
    segments, position = [], 2
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xD9:
            segments.append((position, position + 2, marker))
            break
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:
            end = _NEXT_MARKER.search(data, end).start()
        segments.append((position, end, marker))
        position = end
    return segments


def _seconds_to_open(data: bytes, repeats: int = 3) -> tuple[float, bool]:
    """Fastest of `repeats` load_untrusted calls, and whether the file was accepted."""
    best, accepted = float("inf"), True
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            load_untrusted(data, max_pixels=10**9)
        except BadImage:
            accepted = False
        best = min(best, time.perf_counter() - started)
    return best, accepted


def hostile_figures(side: int, scans: int) -> dict:
    photo = photo_like(side)
    plain, progressive = io.BytesIO(), io.BytesIO()
    photo.save(plain, "JPEG", quality=90)
    photo.save(progressive, "JPEG", quality=90, progressive=True)
    libjpeg_scans = 10  # what Pillow's progressive colour JPEG carries
    most_accepted = hostile_progressive_jpeg(side, 3 * MAX_JPEG_SCANS_PER_COMPONENT - libjpeg_scans)
    hostile = hostile_progressive_jpeg(side, scans)
    plain_s, _ = _seconds_to_open(plain.getvalue())
    progressive_s, _ = _seconds_to_open(progressive.getvalue())
    worst_s, worst_accepted = _seconds_to_open(most_accepted)
    hostile_s, hostile_accepted = _seconds_to_open(hostile)
    return {
        "side": side,
        "plain_jpeg_s": round(plain_s, 3),
        "progressive_jpeg_s": round(progressive_s, 3),
        "most_scans_accepted": 3 * MAX_JPEG_SCANS_PER_COMPONENT,
        "most_scans_accepted_s": round(worst_s, 3),
        "most_scans_accepted_x_plain": round(worst_s / plain_s, 2),
        "most_scans_was_accepted": worst_accepted,
        "hostile_scans": scans + libjpeg_scans,
        "hostile_bytes": len(hostile),
        "hostile_refused": not hostile_accepted,
        "hostile_s": round(hostile_s, 3),
    }


def history_figures(side: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        stored = Path(folder) / "stored.png"
        photo_like(side).save(stored, "PNG")
        figures = {"entries": HISTORY_ENTRIES, "side": side, "stored_png_bytes": stored.stat().st_size}
        for way in ("decoded_first", "one_at_a_time", "engine"):
            child = subprocess.run([sys.executable, "-m", "bot.images_bench", "--history-child", way, str(stored)],
                                   capture_output=True, text=True, check=True)
            figures[f"{way}_added_mb"] = float(child.stdout.strip())
    return figures


def _history_child(way: str, stored: Path) -> None:
    """In a fresh process: draw the contact sheet one way; print the peak memory it added, in MB."""
    from core import pictures

    def fetch() -> bytes:
        return stored.read_bytes()

    if way == "engine":
        asyncio.run(_engine_history(stored))
        return
    before = _peak_rss_mb()
    if way == "decoded_first":
        images = [decode_stored(fetch()) for _ in range(HISTORY_ENTRIES)]
        entries = [pictures.SheetEntry(number, image, "edit") for number, image in enumerate(images)]
    else:
        entries = [pictures.SheetEntry(number, fetch, "edit") for number in range(HISTORY_ENTRIES)]
    pictures.contact_sheet(entries)
    print(round(_peak_rss_mb() - before, 1))


async def _engine_history(stored: Path) -> None:
    """/history through the conversation engine over a file image store holding 24 full-size nodes: the peak memory
    the answer added, in MB (the pictures are stored once each, slightly different, as edits would be)."""
    from core.conversation.engine import ConversationEngine
    from core.domain import ChatKey, NewNode
    from core.messages import Incoming
    from core.queue import EditQueue
    from core.runner import EditRunner
    from storage.blobs import FileImageStore
    from storage.memory import InMemoryHistoryRepository

    with tempfile.TemporaryDirectory() as folder:
        history, images = InMemoryHistoryRepository(), FileImageStore(Path(folder))
        key = ChatKey("bench", "chat", "person")
        conversation = history.conversation(key)
        parent_id = None
        for number in range(HISTORY_ENTRIES):
            digest = images.put(stored.read_bytes() + number.to_bytes(4, "big"))  # PNG readers ignore the tail
            instruction = None if parent_id is None else f"edit {number}"
            parent_id = history.add_node(NewNode(conversation.id, parent_id, digest, instruction)).id
        engine = ConversationEngine(history, images, EditQueue(EditRunner(None, history, images)))
        replies = []

        async def send(reply) -> None:
            replies.append(reply)

        before = _peak_rss_mb()
        await engine.handle(Incoming(key, text="/history"), send)
        added = _peak_rss_mb() - before
        assert any(getattr(reply, "kind", None) == "history" for reply in replies), replies
        print(round(added, 1))


def _peak_rss_mb() -> float:
    """This process's peak resident memory (Linux). Not getrusage: its peak survives exec, so a child started by
    a big parent would report the parent's."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def run_benchmark(side: int, scans: int, as_json: bool) -> None:
    figures = {"hostile_jpeg": hostile_figures(side, scans), "history_sheet": history_figures(side)}
    if as_json:
        print(json.dumps(figures))
        return
    hostile, history = figures["hostile_jpeg"], figures["history_sheet"]
    print(f"JPEG intake at {side}x{side} (fastest of 3):")
    print(f"  plain                 {hostile['plain_jpeg_s']:.3f} s")
    print(f"  progressive (10 scans) {hostile['progressive_jpeg_s']:.3f} s")
    print(f"  {hostile['most_scans_accepted']} scans (most accepted) {hostile['most_scans_accepted_s']:.3f} s = "
          f"{hostile['most_scans_accepted_x_plain']:.2f}x plain (target <= 5x)")
    verdict = "refused" if hostile["hostile_refused"] else "ACCEPTED"
    print(f"  {hostile['hostile_scans']} scans, {hostile['hostile_bytes'] / 1e6:.2f} MB: {verdict} in "
          f"{hostile['hostile_s']:.3f} s (target < 1 s)")
    print(f"/history contact sheet of {HISTORY_ENTRIES} stored {side}x{side} PNGs, peak memory added:")
    print(f"  every picture decoded first  {history['decoded_first_added_mb']:.0f} MB")
    print(f"  one at a time, to thumbnail  {history['one_at_a_time_added_mb']:.0f} MB (target <= 400 MB)")
    print(f"  /history through the engine {history['engine_added_mb']:.0f} MB (target <= 400 MB)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--history-child"]:
        _history_child(sys.argv[2], Path(sys.argv[3]))
