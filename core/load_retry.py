"""Models loaded on first use (the translator, the segmentation model) that could not be had: the failure is kept for
a while, so the people who write in the meantime are answered at once rather than each waiting out the same failure
again (without a connection, the hub's client retries for about 45 seconds before giving up).

    retry = LoadRetry()
    model = retry.load(lambda: from_pretrained(...))   # ModelUnavailable at once while a failure is recent
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from core.errors import ModelUnavailable

RETRY_AFTER_SECONDS = 300.0
"""How long a failed load is answered from memory: long enough to spare people the wait, short enough that a
connection (or a model folder) the operator restores is used within minutes."""

Loaded = TypeVar("Loaded")


class LoadRetry:
    """Not thread-safe: the loaders call it under their own lock."""

    def __init__(self, retry_after: float = RETRY_AFTER_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self._clock = clock
        self._failure: tuple[float, str] | None = None

    def load(self, load: Callable[[], Loaded]) -> Loaded:
        """load(), or ModelUnavailable with the last failure's line while that failure is recent."""
        if self._failure is not None and self._clock() - self._failure[0] < self.retry_after:
            raise ModelUnavailable(self._failure[1])
        try:
            loaded = load()
        except ModelUnavailable as error:
            self._failure = (self._clock(), str(error))
            raise
        self._failure = None
        return loaded
