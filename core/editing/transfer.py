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
       the box around the change and done on 8-bit pixels.

Why it is fast enough: all float work happens at the working size (3x512x384 planes in numpy, about 15 ms of CPU
here, split over two threads); torch's convolutions were measured slower for these blurs (a depthwise conv2d took
11 ms for three planes against numpy's 4-5). At full size a whole-picture change costs two upsamplings (the 8-bit
change, and the edit with its structure weight), a saturating add and a masked paste. The upsampling is torch's
antialiased bilinear and bicubic on uint8 pixels with four channels in channels-last memory (Pillow's own layout
of RGB, 4 bytes a pixel, and the layout those kernels work in, so their output is handed to Pillow without a
conversion): the same filters as Pillow's BILINEAR and BICUBIC (equal, or within 2 levels) at 0.8-1 ms for
1280x960 against Pillow's 8-12. The add and the paste stay Pillow's C (about 3.5 ms each at 1280x960); the parent
itself never goes through numpy. Each upsampled pixel is computed on its own, so results do not depend on the
number of threads torch may use. The work that does not depend on the rest runs on a second core at the same time:
the input's own detail while the change is analysed, and the edit's upsampling (the structure) while the low band
is added. Strips of rows were tried (with Pillow's resize) and left out: a strip's box rounds its sample positions
a little differently from one resize of the whole, so results would have depended on the number of cores.

The shrink (shrink_for) is torch's antialiased bicubic too, Pillow's BICUBIC within a level: 1.5-2 ms for a
1280x960 photo and about 17 ms at 12 MP, against 15 and 104 ms for Pillow's Lanczos, which the bot used before.
The model now sees a picture a little softer than Lanczos's (up to 3-4 levels apart, 0.3 on average): torch has no
Lanczos kernel, and a hand-made one (numpy taps, or torch's convolutions, slow here as said above) was not tried.

Why this method: measured on a 12 MP synthetic photo (smooth gradients, texture at several scales, sensor noise;
this machine, busy) against the full-size truth of three stand-in edits. PSNR, this method / plain upsampled delta
(parent + up(D)) / the edit upscaled (what the bot did before):
    re-encoding only (working image blurred by 0.8 px plus noise)    64.4 / 39.0 / 33.1 dB
    warm tint of the whole picture                                    49.5 / 53.1 / 35.4 dB
    a flat patch painted over texture                                 38.9 / 39.5 / 36.3 dB
(Measured with Pillow's upsampling, which torch's matches within 2 levels.)
The plain delta is slightly better on true edits but carries the model's re-encoding noise into every pixel, so
a chain of edits would drift; this method keeps untouched pixels exact. A fast guided filter (per-pixel affine map
fitted at working size) needs float arithmetic on all 36 M full-size values: over 1 s for 12 MP in numpy here
(before its upsampling), against 32-35 / 66-72 / 135-139 ms of CPU for this method's identity / rectangle /
whole-picture edits of a 12 MP photo (`editbot bench --transfer`, medians of 5 rounds, three runs, 2-core machine
shared with other work; mostly allocating and filling full-size images), and 1.2 / 21 / 22 ms at 1280x960.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

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
_HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transfer")
"""Runs the independent half of a transfer on a second core (numpy, Pillow and torch let go of the GIL).
A task of its own must never call transfer: its one worker would wait for itself."""


def shrink_for(editor: Editor, photo: Image.Image) -> Image.Image:
    """The photo shrunk once to the editor's working size: antialiased bicubic (Pillow's BICUBIC filter, done by
    torch's uint8 kernel in about a tenth of Pillow's time; module docstring)."""
    size = editor.working_size(photo.size)
    if size == photo.size:
        return photo
    return _rgb_image(_resize(_pixels(photo), size, "bicubic"))


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
    output = _pixels(working_output)
    low, structure = _split_change(_planes(_pixels(working_input)), _planes(output))
    changed = low.any(axis=0) | (structure > 0)
    if not changed.any():
        return parent.copy()
    source, full_box = _boxes(changed, working_input.size, parent.size)
    region = parent if full_box == (0, 0, *parent.size) else parent.crop(full_box)
    # The edit's own pixels and their weight are brought up to size on another core while the low band is added.
    structure_layers = (_HELPER.submit(_structure_layers, output, structure, source, region.size)
                        if structure.any() else None)
    # One add per pass: Pillow computes clip(region + up(low + 128) - 128) in integers; a constant 128 stays 128
    # through the bilinear upsample, so unchanged pixels stay exact. Changes beyond -128..127 take a second pass.
    low = np.rint(low)
    while low.any():
        step = np.clip(low, -128, 127)
        low = low - step
        offset = np.full((*step.shape[1:], 4), 128, np.uint8)
        np.add(step.transpose(1, 2, 0), 128, out=offset[..., :3], casting="unsafe")
        region = ImageChops.add(region, _rgb_image(_resize(offset, region.size, "bilinear", source)), offset=-128)
    if structure_layers is not None:
        edit, weight = structure_layers.result()
        region = region.copy() if region is parent else region
        region.paste(edit, (0, 0), weight)
    if region.size == parent.size:
        return region if region is not parent else parent.copy()
    result = parent.copy()
    result.paste(region, full_box[:2])
    return result


def _structure_layers(output: np.ndarray, structure: np.ndarray, source: tuple[int, int, int, int],
                      size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """The working output (_pixels) and the structure weight, their `source` box brought up to `size`: the edit
    and the mask to paste it with (RGBA images over the upsampled arrays; the mask's 4th channel is the weight)."""
    weight = np.repeat(np.rint(structure * 255).astype(np.uint8)[..., None], 4, axis=2)  # 4 channels: the fast kernel
    return _view(_resize(output, size, "bicubic", source)), _view(_resize(weight, size, "bilinear", source))


def _pixels(image: Image.Image) -> np.ndarray:
    """An image's RGB pixels as an HxWx4 uint8 array (Pillow's own layout: a 4th byte after each pixel), copied row
    by row into numpy's memory: np.asarray goes through tobytes(), 3-30 times slower here (0.15 against 0.5-5 ms at
    1280x960)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    rgb.load()
    pixels = np.empty((rgb.height, rgb.width, 4), np.uint8)
    # A Pillow image over the array's memory, filled by its core paste (Image.paste would copy a read-only image).
    Image.frombuffer("RGBX", rgb.size, pixels, "raw", "RGBX", 0, 1).im.paste(rgb.im, (0, 0, *rgb.size))
    return pixels


def _resize(pixels: np.ndarray, size: tuple[int, int], mode: str,
            source: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """HxWx4 uint8 pixels (their `source` box of whole pixels, if given) resized to `size` with torch's antialiased
    "bilinear" or "bicubic" filter: for upsampling the same filters as Pillow's BILINEAR and BICUBIC (results equal,
    or within 2 levels), in a third to a tenth of the time. Four channels in channels-last memory are the layout
    torch's uint8 kernels work in, so nothing is converted either way. Each output pixel is computed on its own,
    so the result does not depend on the number of threads."""
    import torch  # here, not at the top: processes that never edit (front-ends) import this module without torch

    if source is not None:
        left, top, right, bottom = source
        pixels = np.ascontiguousarray(pixels[top:bottom, left:right])
    batch = torch.from_numpy(pixels).unsqueeze(0).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(batch, size=(size[1], size[0]), mode=mode, antialias=True)
    return np.ascontiguousarray(resized.permute(0, 2, 3, 1)[0].numpy())


def _rgb_image(pixels: np.ndarray) -> Image.Image:
    """An RGB image of HxWx4 pixels (the 4th channel dropped)."""
    return Image.frombytes("RGB", (pixels.shape[1], pixels.shape[0]), pixels, "raw", "RGBX")


def _view(pixels: np.ndarray) -> Image.Image:
    """A read-only RGBA image over HxWx4 pixels, without a copy."""
    return Image.frombuffer("RGBA", (pixels.shape[1], pixels.shape[0]), pixels, "raw", "RGBA", 0, 1)


def _planes(pixels: np.ndarray) -> np.ndarray:
    """HxWx4 pixels as 3xHxW float32 planes."""
    return pixels[..., :3].transpose(2, 0, 1).astype(np.float32, order="C")


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
    structure *= structure >= 1 / 255  # multiplying by a mask: a tenth of the time of assigning through it
    low *= np.abs(low) >= DEAD_ZONE
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


def _boxes(changed: np.ndarray, working: tuple[int, int],
           full: tuple[int, int]) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The box of whole working pixels around the changed ones plus MARGIN, and the same box at full size. Its edges
    are moved out to working pixels that fall on whole full-size pixels (multiples of the denominator of the scale,
    full/working as a fraction: 2 for 1280/512), so that upsampling the box samples the picture exactly where
    upsampling the whole picture would; for a scale with a large denominator the box grows to the whole picture."""
    edges = []
    for axis, found in ((0, np.flatnonzero(changed.any(axis=0))), (1, np.flatnonzero(changed.any(axis=1)))):
        scale = Fraction(full[axis], working[axis])
        step = scale.denominator
        start = max(int(found[0]) - MARGIN, 0) // step * step
        end = min(-(-(int(found[-1]) + 1 + MARGIN) // step) * step, working[axis])
        edges.append((start, end, int(start * scale), int(end * scale)))
    (left, right, full_left, full_right), (top, bottom, full_top, full_bottom) = edges
    return (left, top, right, bottom), (full_left, full_top, full_right, full_bottom)
