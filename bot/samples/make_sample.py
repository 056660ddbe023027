"""Draw the bundled demo photo, sample.jpg: a small house among hills under a sunny sky.

It gives smoke runs and demos a real-looking picture with clear objects to edit ("make it winter", "paint the house
blue", "add a moon") without shipping anyone's photograph. Deterministic: rerunning rewrites the same picture.

    python bot/samples/make_sample.py
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageOps

SIZE = (512, 384)
SUPERSAMPLE = 2  # drawn at twice the size, then reduced: smooth edges without an anti-aliasing library
HORIZON = 0.62  # where the sky meets the far hills, as a fraction of the height
OUTPUT = Path(__file__).with_name("sample.jpg")


def draw_sample() -> Image.Image:
    """The landscape as an RGB image of SIZE."""
    width, height = SIZE[0] * SUPERSAMPLE, SIZE[1] * SUPERSAMPLE
    scene = _sky((width, height))
    _sun(scene, centre=(0.78 * width, 0.22 * height), radius=0.07 * width)
    _clouds(scene, random.Random(3))
    draw = ImageDraw.Draw(scene)
    _hill(draw, (width, height), base=HORIZON, amplitude=0.06, waves=1.7, phase=0.4, colour=(96, 138, 120))
    _hill(draw, (width, height), base=HORIZON + 0.08, amplitude=0.05, waves=1.1, phase=2.2, colour=(86, 152, 70))
    _grass_texture(draw, (width, height), random.Random(5))
    _house(draw, left=0.22 * width, ground=0.80 * height, unit=0.06 * width)
    _tree(draw, trunk_x=0.62 * width, ground=0.83 * height, unit=0.05 * width)
    scene = scene.resize(SIZE, Image.Resampling.LANCZOS)
    return scene.filter(ImageFilter.GaussianBlur(0.4))


def _sky(size: tuple[int, int]) -> Image.Image:
    """Deep blue overhead fading to a pale horizon."""
    gradient = Image.linear_gradient("L").resize(size)
    return ImageOps.colorize(gradient, black=(46, 96, 176), white=(214, 232, 244), mid=(140, 186, 228), midpoint=110)


def _sun(scene: Image.Image, centre: tuple[float, float], radius: float) -> None:
    """A yellow disc with a soft glow around it."""
    x, y = centre
    glow = Image.new("L", scene.size, 0)
    ImageDraw.Draw(glow).ellipse((x - 2 * radius, y - 2 * radius, x + 2 * radius, y + 2 * radius), fill=110)
    scene.paste((255, 236, 170), mask=glow.filter(ImageFilter.GaussianBlur(radius * 0.8)))
    ImageDraw.Draw(scene).ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 222, 92))


def _clouds(scene: Image.Image, rng: random.Random) -> None:
    """Three soft clouds, each a blurred bunch of ellipses."""
    width, height = scene.size
    mask = Image.new("L", scene.size, 0)
    draw = ImageDraw.Draw(mask)
    for cloud_x, cloud_y in ((0.15, 0.16), (0.45, 0.1), (0.6, 0.3)):
        for _ in range(6):
            x = (cloud_x + rng.uniform(-0.06, 0.06)) * width
            y = (cloud_y + rng.uniform(-0.015, 0.015)) * height
            half_width, half_height = rng.uniform(0.03, 0.06) * width, rng.uniform(0.02, 0.035) * height
            draw.ellipse((x - half_width, y - half_height, x + half_width, y + half_height), fill=230)
    scene.paste((250, 250, 252), mask=mask.filter(ImageFilter.GaussianBlur(width * 0.008)))


def _hill(
    draw: ImageDraw.ImageDraw,
    size: tuple[int, int],
    *,
    base: float,
    amplitude: float,
    waves: float,
    phase: float,
    colour: tuple[int, int, int],
) -> None:
    """A rolling ridge: a sine curve around `base` (fractions of the height), filled down to the bottom."""
    width, height = size
    ridge = [
        (x, height * (base - amplitude * math.sin(phase + waves * 2 * math.pi * x / width)))
        for x in range(0, width + 1, 4)
    ]
    draw.polygon([*ridge, (width, height), (0, height)], fill=colour)


def _grass_texture(draw: ImageDraw.ImageDraw, size: tuple[int, int], rng: random.Random) -> None:
    """Short strokes of lighter and darker green on the near hill, so the grass is not a flat colour."""
    width, height = size
    for _ in range(2500):
        x = rng.uniform(0, width)
        y = rng.uniform(HORIZON + 0.1, 1.0) * height
        shade = rng.choice([(74, 136, 58), (104, 170, 84), (66, 124, 52)])
        draw.line((x, y, x + rng.uniform(-2, 2), y - rng.uniform(3, 8)), fill=shade, width=2)


def _house(draw: ImageDraw.ImageDraw, *, left: float, ground: float, unit: float) -> None:
    """A cottage: walls, a red roof with a chimney, a door, two windows and a path."""
    wall_width, wall_height = 4 * unit, 2.6 * unit
    top = ground - wall_height
    right = left + wall_width
    door_left = left + 1.6 * unit
    door_right = door_left + 0.8 * unit
    draw.polygon(
        [(door_left, ground), (door_right, ground), (door_right + 1.5 * unit, ground + 4 * unit),
         (door_left - 1.5 * unit, ground + 4 * unit)],
        fill=(206, 184, 136),
    )
    draw.rectangle((right - 1.1 * unit, top - 1.7 * unit, right - 0.6 * unit, top), fill=(120, 70, 60))
    draw.rectangle((left, top, right, ground), fill=(232, 214, 172), outline=(150, 130, 100), width=3)
    draw.polygon(
        [(left - 0.4 * unit, top), (right + 0.4 * unit, top), (left + wall_width / 2, top - 1.9 * unit)],
        fill=(172, 54, 44),
    )
    draw.rectangle((door_left, ground - 1.5 * unit, door_right, ground), fill=(110, 66, 36))
    for window_left in (left + 0.4 * unit, right - 1.2 * unit):
        window = (window_left, top + 0.5 * unit, window_left + 0.8 * unit, top + 1.3 * unit)
        draw.rectangle(window, fill=(176, 214, 240), outline=(255, 255, 255), width=4)
        middle_x, middle_y = (window[0] + window[2]) / 2, (window[1] + window[3]) / 2
        draw.line((middle_x, window[1], middle_x, window[3]), fill=(255, 255, 255), width=3)
        draw.line((window[0], middle_y, window[2], middle_y), fill=(255, 255, 255), width=3)


def _tree(draw: ImageDraw.ImageDraw, *, trunk_x: float, ground: float, unit: float) -> None:
    """A round-crowned tree beside the house."""
    draw.rectangle((trunk_x - 0.25 * unit, ground - 3 * unit, trunk_x + 0.25 * unit, ground), fill=(104, 72, 44))
    for dx, dy, radius, colour in (
        (-0.8, -3.4, 1.2, (48, 112, 48)),
        (0.8, -3.5, 1.2, (52, 120, 50)),
        (0.0, -4.4, 1.4, (60, 132, 56)),
        (0.0, -3.2, 1.1, (56, 126, 52)),
    ):
        x, y, r = trunk_x + dx * unit, ground + dy * unit, radius * unit
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


if __name__ == "__main__":
    draw_sample().save(OUTPUT, format="JPEG", quality=88, optimize=True)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size // 1024} KB)")
