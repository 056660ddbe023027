"""The explanatory pictures stay legible and inside the chat platforms' photo limits."""

from __future__ import annotations

from PIL import Image

from core import pictures

TELEGRAM_SIDES_SUM = 10_000


def within_chat_limits(image: Image.Image) -> bool:
    return image.width + image.height <= TELEGRAM_SIDES_SUM and max(image.size) / min(image.size) <= 20


def photo(size=(512, 384), colour=(40, 90, 160)) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_compare_caps_its_height_and_labels_both_sides():
    sheet = pictures.compare(photo((2048, 2048)), photo((2048, 2048), (200, 50, 50)), caption="make it night")
    assert within_chat_limits(sheet)
    assert pictures.MAX_COMPARE_HEIGHT < sheet.height < pictures.MAX_COMPARE_HEIGHT + 200
    label_band = sheet.crop((0, 0, sheet.width, 20)).convert("L")
    assert label_band.getextrema()[0] < 100  # dark text drawn on the light background


def test_a_full_contact_sheet_fits_and_marks_the_current_image():
    entries = [pictures.SheetEntry(n, photo(), f"edit number {n} with a long instruction to wrap", n == 5, n % 3)
               for n in range(24)]
    sheet = pictures.contact_sheet(entries)
    assert within_chat_limits(sheet)
    assert sheet.width == 4 * (pictures.THUMB + pictures.MARGIN) + pictures.MARGIN
    accent = sum(1 for pixel in sheet.getdata() if pixel == pictures.ACCENT)
    assert accent > 4 * pictures.THUMB  # a frame around one thumbnail


def test_a_sweep_grid_fits_with_its_labels():
    cells = [photo(colour=(25 * n, 0, 0)) for n in range(9)]
    grid = pictures.labelled_grid(cells, columns=3, cell_labels=[f"cell {n}" for n in range(9)],
                                  column_labels=["image 1.2", "image 1.5", "image 1.8"],
                                  row_labels=["text 5.5", "text 7.5", "text 9.5"], title="“make it night”")
    assert within_chat_limits(grid)
    assert grid.width > 3 * pictures.GRID_CELL and grid.height > 3 * pictures.GRID_CELL
