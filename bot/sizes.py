"""File sizes for people: two sizes shown with just enough decimals to tell them apart."""

from __future__ import annotations

MEGABYTE = 1024 * 1024


def size_and_limit(size: int, limit: int) -> tuple[str, str]:
    """("20.01 MB", "20.00 MB") rather than ("20.0 MB", "20.0 MB"): a refusal must show the real difference."""
    for decimals in (1, 2, 3):
        shown = (f"{size / MEGABYTE:.{decimals}f} MB", f"{limit / MEGABYTE:.{decimals}f} MB")
        if shown[0] != shown[1]:
            return shown
    return f"{size:,} bytes", f"{limit:,} bytes"
