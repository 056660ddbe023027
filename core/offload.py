"""Where blocking work runs, so the event loop never waits on a disk, a database or Pillow.

Two doors, one per kind of work, each with its own bounded pool of threads: database calls (`in_thread`) and image
decode/encode/draw/store (`in_image_thread`). They never share threads, so a person waiting for a database answer
(/settings, /undo) never waits behind someone else's photo being decoded, however many photos arrive at once; and
the image pool stays small, so a burst of photos cannot take every CPU (or all the memory) at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

T = TypeVar("T")

DATABASE_THREADS = 8
"""Database calls are short and mostly wait on the database: a few more threads than cores."""
IMAGE_THREADS = max(2, min(4, os.cpu_count() or 2))
"""Image work is CPU and memory heavy: at most one thread per core, and never more than four."""

_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(name: str, workers: int) -> ThreadPoolExecutor:
    """The pool for one kind of work, made on first use."""
    with _pools_lock:
        if name not in _pools:
            _pools[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"editbot-{name}")
        return _pools[name]


async def _run_in(pool: ThreadPoolExecutor, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    # Like asyncio.to_thread: the call sees this task's context variables (the conversation its log lines name).
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, partial(context.run, fn, *args, **kwargs))


async def in_thread(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run a blocking repository (database) call in a database thread and return its result."""
    return await _run_in(_pool("database", DATABASE_THREADS), fn, args, kwargs)


async def in_image_thread(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run blocking image work (decode, encode, draw, store) in an image thread and return its result."""
    return await _run_in(_pool("image", IMAGE_THREADS), fn, args, kwargs)



async def together(*steps: Awaitable) -> list:
    """Await independent steps at once (e.g. a database read beside image work: they use different threads, and
    image work mostly runs outside the GIL); their results in order. Errors are raised as running the steps one
    after the other would have: the first step's error, else the second's..., once all have ended."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
