"""Safe intake of untrusted image bytes, and encoding of results for sending back.

Strangers send bytes from Telegram, Discord and the terminal. `load_untrusted` accepts only JPEG, PNG, WebP and
GIF (judged by Pillow's detection of the content, never by a file name), refuses anything hostile or broken with
one human line (`BadImage`) before the pixels are decoded where the header already tells, and hands back a clean
RGB image: EXIF orientation applied, alpha composited onto a background, every bit of metadata dropped.

Progressive JPEGs are decoded scan by scan over the whole picture, so a small file repeating a scan thousands of
times takes minutes to open: the scans are counted in the bytes first, and a file with more than real encoders
write (`MAX_JPEG_SCANS_PER_COMPONENT` per colour component) is refused in milliseconds.

Colour profiles: an embedded RGB or CMYK ICC profile is converted to sRGB (phone photos in Display P3 and print
CMYK files keep their colours), then dropped like all other metadata; a profile that littleCMS cannot use is
ignored and the pixels are taken as they are.

Two process-wide Pillow settings are respected without being changed: `ImageFile.LOAD_TRUNCATED_IMAGES` (truncation
is detected by watching the byte stream instead, so a library that switches the flag on cannot make us accept a
cut-off file) and `Image.MAX_IMAGE_PIXELS` (Pillow's own bomb limit still applies on top of `max_pixels`).
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from core.errors import BadImage

# Pillow format names we open; nothing else is even tried (other decoders are attack surface we do not need).
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
ANIMATED_NOTICE = "Animated image: I used its first frame."
MAX_JPEG_SCANS_PER_COMPONENT = 8
"""libjpeg's progressive script writes 6 scans for greyscale, 10 for colour, 24 for CMYK; at 8 per component the
costliest accepted file decodes in under 5 times a plain JPEG of its size (`editbot bench-images` prints it)."""

_ACCEPTED_HUMAN = "JPEG, PNG, WebP or GIF"
_DAMAGED = "That image is damaged or incomplete; please send it again."
_TRUNCATED = "That image is incomplete (the file was cut short); please send it again."
_TOO_MUCH_METADATA = "That PNG carries too much hidden metadata (text, colour profile); please save it as a JPEG."
# Leading bytes of the accepted formats: a file that starts like one but will not open is damaged, not foreign.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
# Modes holding 16- or 32-bit greyscale; only 16-bit PNGs produce them among the accepted formats.
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
# What Pillow's parsers raise on hostile or damaged bytes (it does not wrap them all in one type).
_PARSE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error, zlib.error)
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class Intake:
    """An accepted image.

    image: RGB, fully loaded, upright, no metadata (`info` is empty, no EXIF, no ICC profile).
    notice: one line worth telling the person (e.g. that only the first frame of an animation was used), or None.
    original_format: Pillow's name for what was sent: "JPEG", "PNG", "WEBP" or "GIF".
    """

    image: Image.Image
    notice: str | None
    original_format: str


def load_untrusted(
    data: bytes,
    *,
    max_pixels: int = 40_000_000,
    min_side: int = 32,
    max_aspect: float = 8.0,
    background: tuple[int, int, int] = (255, 255, 255),
    max_output_side: int | None = None,
) -> Intake:
    """Decode bytes from a stranger into a clean RGB image, or raise `BadImage` with one human line.

    Refused before any pixel is decoded: empty input, formats other than JPEG/PNG/WebP/GIF, more than `max_pixels`
    pixels, a shorter side under `min_side`, longer/shorter side over `max_aspect`. Refused while decoding:
    truncated or corrupt data. Animations give their first frame and a notice. Transparent areas are painted
    `background`. max_output_side: a larger photo is brought down to this longer side, once, here.
    """
    if not data:
        raise BadImage(f"That file is empty; please send a photo ({_ACCEPTED_HUMAN}).")
    stream = _EndWatchingStream(data)
    opened, animated = _open_first_frame(stream, data, max_pixels)
    with opened:
        # Checked after probing the animation: a GIF frame reaching past the canvas enlarges it.
        _check_declared_size(opened.size, max_pixels=max_pixels, min_side=min_side, max_aspect=max_aspect)
        if opened.format in ("JPEG", "MPO"):
            _check_scan_count(data, components=opened.layers)
        _decode_pixels(opened, stream)
        image = _to_clean_rgb(opened, background)
        if max_output_side is not None:
            image = shrink_to_side(image, max_output_side)
        original_format = _format_name(opened)
    return Intake(image=image, notice=ANIMATED_NOTICE if animated else None, original_format=original_format)


PNG_COMPRESS_LEVEL = 1
"""zlib level for stored and sent PNGs. Photos are noisy, so higher levels barely shrink them: on the 1280x960 test
photo of `editbot bench --pipeline`, level 1 took a fifth of the time of level 6 (Pillow's default) for the same
size (busy 2-core machine, 3 runs each)."""


def shrink_to_side(image: Image.Image, max_side: int) -> Image.Image:
    """The image with its longer side brought down to `max_side` (aspect kept), or the image itself if it fits."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def encode_png(image: Image.Image) -> bytes:
    """Lossless PNG of `image` with no metadata (no EXIF, text chunks or ICC profile)."""
    buffer = io.BytesIO()
    # PNG's writer copies only the ICC profile from `image.info`; EXIF and text are written only when passed.
    image.save(buffer, format="PNG", icc_profile=None, compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


# JPEG qualities tried, best first, before shrinking; below ~60 artefacts show more than a smaller image would.
_JPEG_QUALITIES = (92, 85, 75, 60)
_SHRUNK_JPEG_QUALITY = 85
_SMALLEST_SIDE = 16


def encode_for_upload(image: Image.Image, max_bytes: int) -> tuple[bytes, str]:
    """Encode `image` in at most `max_bytes` bytes for a chat upload; return (bytes, MIME type).

    Lossless PNG when it fits; otherwise JPEG at decreasing quality; otherwise a JPEG of a downscaled copy.
    Raises ValueError when even a tiny thumbnail cannot fit (a configuration mistake, not a person's).
    """
    png = encode_png(image)
    if len(png) <= max_bytes:
        return png, "image/png"
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    for quality in _JPEG_QUALITIES:
        jpeg = _encode_jpeg(rgb, quality)
        if len(jpeg) <= max_bytes:
            return jpeg, "image/jpeg"
    # Bytes grow roughly with the pixel count: shrink by the square root of the overshoot, with a margin.
    scaled = rgb
    while True:
        shrink = min(0.9, 0.95 * (max_bytes / len(jpeg)) ** 0.5)
        size = (round(scaled.width * shrink), round(scaled.height * shrink))
        if min(size) < _SMALLEST_SIDE:
            raise ValueError(f"cannot encode a {image.width}x{image.height} image in {max_bytes} bytes")
        scaled = rgb.resize(size, Image.Resampling.LANCZOS)
        jpeg = _encode_jpeg(scaled, _SHRUNK_JPEG_QUALITY)
        if len(jpeg) <= max_bytes:
            return jpeg, "image/jpeg"


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _open_first_frame(stream: _EndWatchingStream, data: bytes, max_pixels: int) -> tuple[ImageFile.ImageFile, bool]:
    """Parse the header (no pixels yet), positioned on the first frame; also say whether there are more frames."""
    # Pillow warns (rather than raises) for images between MAX_IMAGE_PIXELS and twice that; make it an error here
    # only, leaving the warning filters of the rest of the process as they were. (Before Python 3.14 the filter list
    # is shared by all threads, so for these milliseconds another thread's bomb warning would be an error too.)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(stream, formats=ACCEPTED_FORMATS)
        except UnidentifiedImageError:
            if _looks_like_accepted_format(data):
                raise BadImage(_DAMAGED) from None
            raise BadImage(f"I can only read {_ACCEPTED_HUMAN} images, and that file is none of them.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as bomb:
            raise BadImage(_too_many_pixels_from_pillow(str(bomb), max_pixels)) from None
        except _PARSE_ERRORS as error:
            raise BadImage(_unreadable(error)) from None
        try:
            # Pillow opens on frame 0 and probing for a second frame seeks back. MPO (a phone's JPEG with depth or
            # stereo pictures appended): frame 0 is the photo itself, the rest are auxiliary, so not an animation.
            animated = opened.format != "MPO" and bool(getattr(opened, "is_animated", False))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as bomb:
            opened.close()
            raise BadImage(_too_many_pixels_from_pillow(str(bomb), max_pixels)) from None
        except _PARSE_ERRORS as error:
            opened.close()
            raise BadImage(_unreadable(error)) from None
    return opened, animated


# A marker ending a scan's entropy-coded data: 0xFF, then neither a stuffed 0x00, a fill 0xFF nor a restart marker.
_MARKER_AFTER_SCAN_DATA = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")
_SOS, _EOI = 0xDA, 0xD9


def _check_scan_count(data: bytes, *, components: int) -> None:
    """Refuse a JPEG with more scans than any encoder writes, before libjpeg spends minutes on them."""
    limit = MAX_JPEG_SCANS_PER_COMPONENT * max(components, 1)
    if _count_jpeg_scans(data, stop_after=limit) > limit:
        raise BadImage(
            f"That JPEG is saved in over {limit} progressive passes, which takes far too long to open; "
            "please save it again as an ordinary JPEG or PNG."
        )


def _count_jpeg_scans(data: bytes, *, stop_after: int) -> int:
    """Scans (SOS segments) of the first picture in JPEG `data`, counted up to stop_after + 1.

    Walks segment headers only; a scan's entropy-coded data is skipped by searching for the next marker. Damaged
    structure ends the count early: the decoder reports the damage itself.
    """
    position, scans = 2, 0  # after SOI
    while position + 4 <= len(data) and scans <= stop_after:
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == _EOI:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == _SOS:
            scans += 1
            following = _MARKER_AFTER_SCAN_DATA.search(data, position)
            if following is None:
                break
            position = following.start()
    return scans


def _format_name(image: ImageFile.ImageFile) -> str:
    return "JPEG" if image.format == "MPO" else str(image.format)


class _EndWatchingStream(io.BytesIO):
    """A byte stream that remembers whether a reader asked for data after the end.

    A decoder that still wants bytes when none are left has been given a truncated file. Pillow notices this too,
    unless `ImageFile.LOAD_TRUNCATED_IMAGES` is on, in which case it pads the picture with grey; watching the
    stream makes the check independent of that process-wide flag.
    """

    ran_dry = False

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if not chunk and size != 0:
            self.ran_dry = True
        return chunk


def _looks_like_accepted_format(data: bytes) -> bool:
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return is_webp or data.startswith(_SIGNATURES)


def _check_declared_size(size: tuple[int, int], *, max_pixels: int, min_side: int, max_aspect: float) -> None:
    """Refuse by the size the header declares, before any pixel memory is allocated."""
    width, height = size
    pixels = width * height
    if pixels > max_pixels:
        raise BadImage(
            f"That image is {width}x{height} ({_megapixels(pixels)} MP); the limit is {_megapixels(max_pixels)} MP."
        )
    # Shape before smallness: a 1000x10 strip is better described as a strip than as small.
    if max(size) > max_aspect * min(size):
        raise BadImage(
            f"That image is {width}x{height}, too long and thin; the longer side may be at most "
            f"{max_aspect:g} times the shorter."
        )
    if min(size) < min_side:
        raise BadImage(f"That image is {width}x{height}; each side must be at least {min_side} pixels.")


def _too_many_pixels_from_pillow(pillow_message: str, max_pixels: int) -> str:
    """Our message for Pillow's own bomb refusal, which knows the pixel count but not the sides."""
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    count = re.search(r"\((\d+) pixels\)", pillow_message)
    if count is None:
        return f"That image has too many pixels; the limit is {_megapixels(limit)} MP."
    return f"That image is {_megapixels(int(count.group(1)))} MP; the limit is {_megapixels(limit)} MP."


def _megapixels(pixels: int) -> str:
    """12,000,000 -> "12", 108,000,000 -> "108", 2,500,000 -> "2.5", 1,000 -> "0.001": a decimal only where it
    matters, and never a small limit rounded down to "0"."""
    megapixels = pixels / 1_000_000
    if megapixels >= 10:
        return f"{megapixels:,.0f}"
    if megapixels >= 0.1:
        return f"{megapixels:.1f}".removesuffix(".0")
    return f"{megapixels:.2g}" if pixels else "0"


def _decode_pixels(image: ImageFile.ImageFile, stream: _EndWatchingStream) -> None:
    stream.ran_dry = False
    try:
        image.load()
    except _PARSE_ERRORS as error:
        if stream.ran_dry or "truncated" in str(error):
            raise BadImage(_TRUNCATED) from None
        raise BadImage(_unreadable(error)) from error
    if stream.ran_dry:
        raise BadImage(_TRUNCATED)


def _unreadable(error: Exception) -> str:
    """Damaged, unless Pillow stopped at its limits on PNG text and profile chunks (MAX_TEXT_CHUNK, MAX_TEXT_MEMORY)."""
    return _TOO_MUCH_METADATA if "MAX_TEXT_" in str(error) else _DAMAGED


def _to_clean_rgb(loaded: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Upright RGB pixels in sRGB with alpha composited onto `background`, as a new image with no metadata."""
    icc_profile = loaded.info.get("icc_profile")
    try:
        ImageOps.exif_transpose(loaded, in_place=True)
    except _PARSE_ERRORS:
        pass  # Unreadable EXIF: the orientation is unknown, the picture itself is fine and EXIF is dropped anyway.
    if loaded.mode in _WIDE_GREY_MODES:
        rgb = _wide_grey_to_rgb(loaded, background)
    elif loaded.has_transparency_data:
        rgba = loaded.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, background)
        rgb.paste(rgba, mask=rgba.getchannel("A"))
        rgb = _to_srgb(rgb, icc_profile)
    elif loaded.mode in ("RGB", "CMYK"):
        rgb = _to_srgb(loaded, icc_profile)
    else:
        rgb = loaded.convert("RGB")
    if rgb is loaded:
        rgb = loaded.copy()  # A plain Image, detached from the file object and its format-specific metadata.
    rgb.info.clear()
    return rgb


def _wide_grey_to_rgb(loaded: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """16-bit grey as RGB: Pillow clips values to 255 when converting, so 0..65535 is scaled onto 0..255; the grey
    value a tRNS chunk declares transparent shows `background`, as the 8-bit case does (Pillow's own conversion to
    RGBA ignores it at 16 bits)."""
    wide = loaded.convert("I")
    rgb = wide.point(lambda value: value / 257).convert("L").convert("RGB")
    transparent = loaded.info.get("transparency")
    if not isinstance(transparent, int):
        return rgb
    opaque = Image.fromarray((np.asarray(wide) != transparent).astype(np.uint8) * 255)
    flattened = Image.new("RGB", rgb.size, background)
    flattened.paste(rgb, mask=opaque)
    return flattened


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert RGB or CMYK pixels from their embedded profile to sRGB; without a usable profile, convert plainly."""
    expected_space = {"RGB": "RGB ", "CMYK": "CMYK"}.get(image.mode)
    if icc_profile and expected_space:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            if profile.profile.xcolor_space == expected_space:
                converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode="RGB")
                if converted is not None:
                    return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # A broken or exotic profile: the plain pixels are still a fair picture.
    return image if image.mode == "RGB" else image.convert("RGB")
