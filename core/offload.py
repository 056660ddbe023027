"""Where blocking work runs, so the event loop never waits on a disk, a database or Pillow.

Two doors, one per kind of work: database calls and image decode/encode. Both use asyncio's default thread pool
today; they are separate so that each can get its own pool (and its own limit) without touching the callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run a blocking repository (database) call in a worker thread and return its result."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def in_image_thread(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run blocking image work (decode, encode, draw, store) in a worker thread and return its result."""
    return await asyncio.to_thread(fn, *args, **kwargs)
