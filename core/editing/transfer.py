"""Detail transfer: a model's edit, made at its working size, applied to the full-size parent image.

Any editor works at a small working size (InstructPix2Pix: 512 px on the long side). Scaling its result up to the
photo's size gives a soft picture, and every edit of a chain would re-encode the whole photo. Instead, only the
*change* the model made (working output minus working input) is carried up to full size:

    1. D = output - input at the working size, split like a two-level Laplacian pyramid into a low band
       L = gauss(D) (colour, light, tone) and a high band D - L (edges and texture).
    2. New structure (high-band change beyond the detail the input already had: new edges, new texture, the sharp
       boundary of a change) takes the edit itself, brought up to size (the `structure` weight S).
    3. Elsewhere the low band is added to the parent, whose own fine detail stays: result = parent + up(L); where
       the tone changes a lot (a repainted area) the working-size high band goes with it. Low-band differences under
       `DEAD_ZONE` levels are dropped, and softened detail is not structure, so a model's re-encoding of the
       picture changes nothing.
    4. Where nothing is left to carry, the result *is* the parent, pixel for pixel. Full-size work is confined to
       the box around the change and done with Pillow's C operations on 8-bit images.

Why it is fast enough: all float work happens at the working size (3x512x384 planes, about 18 ms of CPU here); at
full size a whole-picture change costs an upsampling of the 8-bit change (half size, then doubled) and one
saturating add, each one pass of Pillow's C over the photo. Full-size pixels never go through numpy: converting a
12 MP picture either way is itself a copy (25-50 ms here). The work that does not depend on the rest runs on a
second core at the same time, with the same operations, so results are identical: the input's own detail while the
change is analysed, and the edit's upsampling (the structure) while the low band is added. Strips of rows were
tried and left out: Pillow's resize of a strip through a box rounds its sample positions a little differently from
one resize of the whole, so results would have depended on the number of cores (off by up to 11 levels on noise).

Why this method: measured on a 12 MP synthetic photo (smooth gradients, texture at several scales, sensor noise;
this machine, busy) against the full-size truth of three stand-in edits. PSNR, this method / plain upsampled delta
(parent + up(D)) / the edit upscaled (what the bot did before):
    re-encoding only (working image blurred by 0.8 px plus noise)    64.4 / 39.0 / 33.1 dB
    warm tint of the whole picture                                    49.5 / 53.1 / 35.4 dB
    a flat patch painted over texture                                 38.9 / 39.5 / 36.3 dB
(Measured with a full-size bilinear upsampling; the half-size one used now costs 0.02-0.1 dB, _upsample_change.)
The plain delta is slightly better on true edits but carries the model's re-encoding noise into every pixel, so
a chain of edits would drift; this method keeps untouched pixels exact. A fast guided filter (per-pixel affine map
fitted at working size) needs float arithmetic on all 36 M full-size values: over 1 s for 12 MP in numpy here
(before its upsampling), against 10 / 53 / 119 ms of CPU for this method's identity / rectangle / whole-picture
edits of a 12 MP photo (`editbot bench --transfer`, medians of 5 rounds, 2-core machine shared with other work).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageChops

from core.ports import Editor

LOW_BAND_SIGMA = 2.0
"""Gaussian sigma (working pixels) separating the low band (tone) from the high band (structure) of the change."""
DEAD_ZONE = 1.5
"""Low-band changes under this many levels (0..255) are noise of the model's re-encoding, not an edit."""
STRUCTURE_LEVELS = (6.0, 14.0)
"""Local high-band change (levels) where the edit's own pixels start to replace the parent's, and fully do."""
REPAINT_LEVELS = (16.0, 32.0)
"""Low-band change (levels) from which the whole change, texture included, is carried over, and fully is."""
MARGIN = 3
"""Working pixels added around the changed box so upsampling filters see their whole support."""
HALF_SIZE_FROM = 4
"""From this ratio of full to working size the change is upsampled to half size, then doubled (_upsample_change)."""
_HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transfer")
"""Runs the independent half of a transfer on a second core (numpy and Pillow let go of the GIL in their loops).
A task of its own must never call transfer: its one worker would wait for itself."""


def shrink_for(editor: Editor, photo: Image.Image) -> Image.Image:
    """The photo shrunk once to the editor's working size, as the editor itself would shrink it (Lanczos)."""
    size = editor.working_size(photo.size)
    return photo if size == photo.size else photo.resize(size, Image.Resampling.LANCZOS)


def full_size(photo: Image.Image, small: Image.Image, edited: Image.Image) -> Image.Image:
    """An editor's result for `small` (shrink_for's photo) as a full-size result for `photo`; a result of another
    size (an editor that scales its own output) as it is."""
    return transfer(photo, small, edited) if edited.size == small.size else edited


def transfer(parent: Image.Image, working_input: Image.Image, working_output: Image.Image) -> Image.Image:
    """The parent at full size with the change `working_input` -> `working_output` applied (all RGB; the two
    working images of one size, the parent any size of the same aspect ratio, usually larger).

    Outside the (slightly widened) box where the edit changed anything, the parent's pixels are returned exactly.
    """
    if working_input.size != working_output.size:
        raise ValueError("the editor's input and output must have one size")
    low, structure = _split_change(_planes(working_input), _planes(working_output))
    changed = low.any(axis=0) | (structure > 0)
    if not changed.any():
        return parent.copy()
    full_box = _full_box(changed, working_input.size, parent.size)
    source = _source_box(full_box, working_input.size, parent.size)
    region = parent if full_box == (0, 0, *parent.size) else parent.crop(full_box)
    # The edit's own pixels and their weight are brought up to size on another core while the low band is added.
    structure_layers = (_HELPER.submit(_structure_layers, working_output, structure, source, region.size)
                        if structure.any() else None)
    # One add per pass: Pillow computes clip(region + up(low + 128) - 128) in integers; a constant 128 stays 128
    # through the bilinear upsample, so unchanged pixels stay exact. Changes beyond -128..127 take a second pass.
    low = np.rint(low)
    while low.any():
        step = np.clip(low, -128, 127)
        low = low - step
        offset = Image.fromarray(np.ascontiguousarray((step + 128).astype(np.uint8).transpose(1, 2, 0)))
        region = ImageChops.add(region, _upsample_change(offset, source, region.size), offset=-128)
    if structure_layers is not None:
        edit, weight = structure_layers.result()
        region = Image.composite(edit, region, weight)
    if region.size == parent.size:
        return region if region is not parent else parent.copy()
    result = parent.copy()
    result.paste(region, full_box[:2])
    return result


def _structure_layers(working_output: Image.Image, structure: np.ndarray, source: tuple[float, float, float, float],
                      size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """The working output and the structure weight, their `source` area brought up to `size`."""
    edit = working_output.convert("RGB").resize(size, Image.Resampling.BICUBIC, box=source)
    return edit, _upsample(np.rint(structure * 255).astype(np.uint8), source, size)


def _planes(image: Image.Image) -> np.ndarray:
    """An image as 3xHxW float32 planes."""
    return np.asarray(image.convert("RGB")).transpose(2, 0, 1).astype(np.float32, order="C")


def _split_change(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low band of the change with the dead zone applied, 3xHxW float; structure weight in 0..1, HxW float), from
    the working images as 3xHxW float planes (channel first, so that per-pixel maxima over channels and the blurs
    run over whole contiguous planes)."""
    change = after - before
    if not change.any():
        return change, np.zeros(change.shape[1:], np.float32)
    # Detail the input already had may be softened by the model's re-encoding without that being an edit: only
    # high-band change beyond the input's own detail counts as new structure. (Measured meanwhile on another core:
    # numpy lets go of the GIL in its loops.)
    detail = _HELPER.submit(lambda: _gauss(_channel_max(np.abs(before - _gauss(before, LOW_BAND_SIGMA))), 1.0))
    low = _gauss(change, LOW_BAND_SIGMA)
    high = _gauss(_channel_max(np.abs(change - low)), 1.0)
    start, full = STRUCTURE_LEVELS
    structure = np.clip((high - detail.result() - start) / (full - start), 0.0, 1.0)
    # Feather the structure mask outwards a little, so the edit's own edge is not cut at its threshold.
    structure = np.clip(_gauss(structure, 1.0) * 1.5, 0.0, 1.0)
    structure[structure < 1 / 255] = 0.0
    low[np.abs(low) < DEAD_ZONE] = 0.0
    # Where the tone changes a lot the area is being repainted: its old working-size texture goes too.
    start, full = REPAINT_LEVELS
    repaint = np.clip((_gauss(_channel_max(np.abs(low)), 1.0) - start) / (full - start), 0.0, 1.0)
    if repaint.any():
        low += repaint * (change - low)
    if structure.any():
        low *= 1.0 - structure
    return low, structure


def _channel_max(planes: np.ndarray) -> np.ndarray:
    """The per-pixel maximum over the channels of 3xHxW planes (HxW)."""
    return np.maximum(np.maximum(planes[0], planes[1]), planes[2])


def _gauss(planes: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of float32 planes (HxW or CxHxW, blurred over H and W), edges repeated.

    One plane at a time, so that each pass's arrays stay in the CPU's cache (a third faster than blurring six planes
    at once), and symmetric taps are summed in pairs before one multiply, in place: a working-size plane takes 2 ms.
    """
    if planes.ndim == 3:
        blurred = np.empty_like(planes)
        for index, plane in enumerate(planes):
            blurred[index] = _gauss(plane, sigma)
        return blurred
    radius = max(1, round(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(radius + 1) / sigma) ** 2)
    taps = (taps / (2 * taps.sum() - taps[0])).astype(np.float32)
    for axis in (0, 1):
        length = planes.shape[axis]
        padded = np.pad(planes, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        blurred = _window(padded, axis, radius, length) * taps[0]
        pair = np.empty_like(blurred)
        for offset in range(1, radius + 1):
            np.add(_window(padded, axis, radius - offset, length), _window(padded, axis, radius + offset, length),
                   out=pair)
            pair *= taps[offset]
            blurred += pair
        planes = blurred
    return planes


def _window(padded: np.ndarray, axis: int, start: int, length: int) -> np.ndarray:
    """`length` rows (axis 0) or columns (axis 1) of a padded plane from `start`: one tap's view of it."""
    return padded[start:start + length] if axis == 0 else padded[:, start:start + length]


def _full_box(changed: np.ndarray, working: tuple[int, int], full: tuple[int, int]) -> tuple[int, int, int, int]:
    """The full-size box covering the changed working pixels plus MARGIN (whole pixels, inside the image)."""
    rows, columns = np.nonzero(changed)
    left = max(int(columns.min()) - MARGIN, 0)
    top = max(int(rows.min()) - MARGIN, 0)
    right = min(int(columns.max()) + 1 + MARGIN, working[0])
    bottom = min(int(rows.max()) + 1 + MARGIN, working[1])
    scale_x, scale_y = full[0] / working[0], full[1] / working[1]
    return (int(left * scale_x), int(top * scale_y),
            min(-int(-right * scale_x // 1), full[0]), min(-int(-bottom * scale_y // 1), full[1]))


def _source_box(full_box: tuple[int, int, int, int], working: tuple[int, int],
                full: tuple[int, int]) -> tuple[float, float, float, float]:
    """The working-size area (fractional) that `full_box` covers: resizing it with Image.resize(box=...) gives the
    same pixels as resizing the whole working image to full size and cropping."""
    scale_x, scale_y = working[0] / full[0], working[1] / full[1]
    return (full_box[0] * scale_x, full_box[1] * scale_y, full_box[2] * scale_x, full_box[3] * scale_y)


def _upsample_change(offset: Image.Image, source: tuple[float, float, float, float],
                     size: tuple[int, int]) -> Image.Image:
    """The working-size change (offset by 128, RGB), its `source` area brought up to `size`: bilinearly, and for a
    photo at least HALF_SIZE_FROM times the working size, bilinearly to half of `size` then doubled by repeating
    pixels. The change is smooth there (a Gaussian's low band, or a repaint's edge spread over 8 full-size pixels or
    more), so the full-size bilinear pass, the costliest step of a whole-picture edit, buys little: on a 12 MP photo
    the doubling took 0.02-0.1 dB of PSNR against the edit's full-size truth (a tint, a painted patch, a painted
    gradient) for a third of the upsampling's CPU time (about 25 of 65 ms). A constant 128 stays 128 either way."""
    if size[0] < HALF_SIZE_FROM * (source[2] - source[0]):
        return offset.resize(size, Image.Resampling.BILINEAR, box=source)
    half = ((size[0] + 1) // 2, (size[1] + 1) // 2)
    return offset.resize(half, Image.Resampling.BILINEAR, box=source).resize(size, Image.Resampling.NEAREST)


def _upsample(plane: np.ndarray, source: tuple[float, float, float, float], size: tuple[int, int]) -> Image.Image:
    """A working-size uint8 array (HxW or HxWx3), its `source` area brought up bilinearly to `size`."""
    return Image.fromarray(plane).resize(size, Image.Resampling.BILINEAR, box=source)
