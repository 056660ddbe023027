"""Pictures that explain: before/after comparisons, the contact sheet of a history, labelled grids of candidates,
the region a mask picked out.

Text is drawn with the font that ships inside Pillow (ImageFont.load_default at a size), so every machine renders
the same. Sizes stay well inside the chat platforms' photo limits (Telegram: sides adding up to 10000 px, 10 MB).

Every picture is shown small, so each may be given as a `Picture`: a decoded image, or the stored bytes (or a
function fetching them) that are decoded one at a time, straight to the size shown. A contact sheet of 24 full-size
photos then holds one of them in memory at a time instead of all 24 (`editbot bench-images` measures it).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont, ImageOps

from core.stored_images import decode_thumbnail, stored_size

BACKGROUND = (250, 250, 250)
INK = (20, 20, 20)
MUTED = (110, 110, 110)
ACCENT = (33, 110, 230)
MAX_COMPARE_HEIGHT = 768
THUMB = 224
GRID_CELL = 320
MARGIN = 12

Picture = Image.Image | bytes | Callable[[], bytes]
"""A decoded image, the encoded bytes of a stored one, or a function returning them when the picture is drawn."""


@cache
def font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def line_height(size: int) -> int:
    """The height of one line of text at font `size`, spacing included."""
    return int(size * 1.35)


def fit_square(picture: Picture, box: int) -> Image.Image:
    """The picture in RGB, scaled to fit a `box` x `box` square (aspect kept)."""
    return _contain(picture, (box, box))


def _contain(picture: Picture, box: tuple[int, int]) -> Image.Image:
    """The picture in RGB, contained in box, decoded no bigger than needed when it is still encoded."""
    picture = _fetched(picture)
    if not isinstance(picture, Image.Image):
        picture = decode_thumbnail(picture, box)
    return ImageOps.contain(picture.convert("RGB"), box, Image.Resampling.LANCZOS)


def _fetched(picture: Picture) -> Image.Image | bytes:
    return picture() if callable(picture) else picture


def _height(picture: Image.Image | bytes) -> int:
    return picture.height if isinstance(picture, Image.Image) else stored_size(picture)[1]


def wrap_lines(text: str, width_px: int, size: int, lines: int) -> list[str]:
    """Wrap to at most `lines` lines that fit width_px, with an ellipsis when cut."""
    average = max(font(size).getlength("abcdefghijklmnopqrstuvwxyz") / 26, 1)
    wrapped = textwrap.wrap(text, max(int(width_px / average), 4)) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: max(len(wrapped[-1]) - 1, 1)] + "…"
    return wrapped


def compare(before: Picture, after: Picture, *, labels: tuple[str, str] = ("Before", "After"),
            caption: str | None = None) -> Image.Image:
    """Before and after side by side at one height, each labelled, with an optional caption underneath."""
    pictures = [_fetched(picture) for picture in (before, after)]
    height = min(max(_height(picture) for picture in pictures), MAX_COMPARE_HEIGHT)
    panels = [_contain(picture, (height * 4, height)) for picture in pictures]
    label_size = max(height // 24, 16)
    caption_lines = wrap_lines(caption, sum(panel.width for panel in panels), label_size, 2) if caption else []
    label_band = line_height(label_size) + MARGIN
    width = sum(panel.width for panel in panels) + 3 * MARGIN
    total = label_band + height + 2 * MARGIN + len(caption_lines) * line_height(label_size)
    sheet = Image.new("RGB", (width, total), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    x = MARGIN
    for panel, label in zip(panels, labels):
        sheet.paste(panel, (x, label_band + (height - panel.height) // 2))
        draw.text((x, MARGIN // 2), label, font=font(label_size), fill=INK)
        x += panel.width + MARGIN
    for number, line in enumerate(caption_lines):
        draw.text((MARGIN, label_band + height + MARGIN + number * line_height(label_size)), line,
                  font=font(label_size), fill=MUTED)
    return sheet


@dataclass(frozen=True)
class SheetEntry:
    """One thumbnail of a contact sheet: its number (as /goto expects), image, caption and marks."""

    number: int
    image: Picture
    caption: str
    current: bool = False
    branches: int = 0  # other branches leaving this node


def contact_sheet(entries: Sequence[SheetEntry], *, columns: int = 4, title: str | None = None) -> Image.Image:
    """Thumbnails in reading order, each numbered, its instruction underneath; the current one framed; a node with
    other branches marked."""
    columns = max(1, min(columns, len(entries)))
    rows = -(-len(entries) // columns)
    size = 16
    caption_band = 2 * line_height(size) + 6
    cell_w, cell_h = THUMB + MARGIN, THUMB + caption_band + MARGIN
    title_band = line_height(20) + MARGIN if title else 0
    sheet = Image.new("RGB", (columns * cell_w + MARGIN, title_band + rows * cell_h + MARGIN), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((MARGIN, MARGIN // 2), title, font=font(20), fill=INK)
    for index, entry in enumerate(entries):
        x = MARGIN + (index % columns) * cell_w
        y = title_band + MARGIN + (index // columns) * cell_h
        thumb = fit_square(entry.image, THUMB)
        left, top = x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2
        sheet.paste(thumb, (left, top))
        if entry.current:
            draw.rectangle((left - 4, top - 4, left + thumb.width + 3, top + thumb.height + 3), outline=ACCENT, width=4)
        draw_badge(draw, (left + 4, top + 4), str(entry.number))
        if entry.branches:
            mark = f"+{entry.branches} branch" + ("es" if entry.branches > 1 else "")
            width = int(font(14).getlength(mark)) + 10
            draw_badge(draw, (left + thumb.width - width - 4, top + 4), mark, size=14)
        for line_number, line in enumerate(wrap_lines(entry.caption, THUMB, size, 2)):
            draw.text((x, y + THUMB + 4 + line_number * line_height(size)), line, font=font(size), fill=INK)
    return sheet


def labelled_grid(cells: Sequence[Picture], *, columns: int, cell_labels: Sequence[str],
                  column_labels: Sequence[str] = (), row_labels: Sequence[str] = (),
                  title: str | None = None) -> Image.Image:
    """Candidates in a grid, each numbered 1..N (for /pick) with its own label, optional axis labels."""
    rows = -(-len(cells) // columns)
    size = 18
    label_h = line_height(size)
    row_label_w = int(max((font(size).getlength(label) for label in row_labels), default=0)) + MARGIN
    title_band = line_height(22) + MARGIN if title else 0
    header = label_h + MARGIN if column_labels else 0
    cell_w, cell_h = GRID_CELL + MARGIN, GRID_CELL + label_h + MARGIN
    sheet = Image.new("RGB", (row_label_w + columns * cell_w + MARGIN,
                              title_band + header + rows * cell_h + MARGIN), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((MARGIN, MARGIN // 2), title, font=font(22), fill=INK)
    for column, label in enumerate(column_labels):
        draw.text((row_label_w + MARGIN + column * cell_w, title_band + MARGIN // 2), label, font=font(size),
                  fill=MUTED)
    for row, label in enumerate(row_labels):
        draw.text((MARGIN, title_band + header + MARGIN + row * cell_h + GRID_CELL // 2), label, font=font(size),
                  fill=MUTED)
    for index, (cell, label) in enumerate(zip(cells, cell_labels)):
        x = row_label_w + MARGIN + (index % columns) * cell_w
        y = title_band + header + MARGIN + (index // columns) * cell_h
        thumb = fit_square(cell, GRID_CELL)
        sheet.paste(thumb, (x + (GRID_CELL - thumb.width) // 2, y + (GRID_CELL - thumb.height) // 2))
        draw_badge(draw, (x + 6, y + 6), str(index + 1), size=22)
        draw.text((x, y + GRID_CELL + 2), label, font=font(size - 2), fill=INK)
    return sheet


def draw_badge(draw: ImageDraw.ImageDraw, at: tuple[int, int], text: str, size: int = 18) -> None:
    """White text on a rounded black label, its top-left corner at `at`."""
    width = int(font(size).getlength(text)) + 10
    x, y = at
    draw.rounded_rectangle((x, y, x + width, y + line_height(size) + 2), radius=6, fill=(0, 0, 0))
    draw.text((x + 5, y + 1), text, font=font(size), fill=(255, 255, 255))


MASK_TINT = (255, 64, 160)
MASK_PREVIEW_SIDE = 768


def mask_preview(photo: Image.Image, mask: Image.Image, *, caption: str | None = None) -> Image.Image:
    """The photo (at most MASK_PREVIEW_SIDE px) with the region tinted and everything else dimmed, so a person can
    check what words picked out before any edit runs; an optional caption underneath."""
    shown = fit_square(photo, MASK_PREVIEW_SIDE)
    weight = mask.convert("L").resize(shown.size, Image.Resampling.BILINEAR)
    tinted = Image.blend(shown, Image.new("RGB", shown.size, MASK_TINT), 0.45)
    dimmed = Image.blend(shown, Image.new("RGB", shown.size, (0, 0, 0)), 0.55)
    picture = Image.composite(tinted, dimmed, weight)
    if not caption:
        return picture
    size = max(shown.width // 40, 16)
    lines = wrap_lines(caption, shown.width - 2 * MARGIN, size, 2)
    sheet = Image.new("RGB", (shown.width, shown.height + MARGIN + len(lines) * line_height(size)), BACKGROUND)
    sheet.paste(picture, (0, 0))
    draw = ImageDraw.Draw(sheet)
    for number, line in enumerate(lines):
        draw.text((MARGIN, shown.height + MARGIN // 2 + number * line_height(size)), line, font=font(size), fill=INK)
    return sheet
