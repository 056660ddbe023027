"""Outages of the services a distributed deployment leans on (Redis, the database, the image store): which errors
mean one, how long to wait before trying again, and one log line per change of state ("lost Redis", "Redis back
after 12 s") instead of a traceback per try.

A process keeps one `Outages`; every place that talks to a service reports each failure (`failed`, which says how
long to wait) and each success (`fine`). Errors that are not outages (a bug, a bad job) are not handled here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions
import sqlalchemy.exc

from core.errors import StorageUnavailable

log = logging.getLogger(__name__)

REDIS, DATABASE, IMAGE_STORE = "Redis", "the database", "the image store"
FIRST_WAIT_SECONDS = 0.1
LONGEST_WAIT_SECONDS = 5.0
T = TypeVar("T")


def outage_of(error: BaseException) -> str | None:
    """The service `error` (or an error it was raised from) says cannot be reached, or None."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
            return REDIS
        if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)) or (
                isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated):
            return DATABASE
        if _is_image_store_outage(error):
            return IMAGE_STORE
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def _is_image_store_outage(error: BaseException) -> bool:
    if isinstance(error, StorageUnavailable):
        return True
    try:
        from storage.s3 import unreachable  # S3's own errors, e.g. from a sweep
    except ImportError:  # no S3 support installed: no S3 outage either
        return False
    return unreachable(error)


class Outages:
    """What one process knows of its services: which are down since when, and the next wait for each (doubling
    from FIRST_WAIT_SECONDS to LONGEST_WAIT_SECONDS). Thread-safe: workers call it from their edit threads."""

    def __init__(self, first_wait: float = FIRST_WAIT_SECONDS, longest_wait: float = LONGEST_WAIT_SECONDS) -> None:
        self.first_wait, self.longest_wait = first_wait, longest_wait
        self._failing_since: dict[str, float] = {}
        self._reported: set[str] = set()
        self._next_wait: dict[str, float] = {}
        self._lock = threading.Lock()

    def down(self, service: str) -> bool:
        return service in self._failing_since

    def failed(self, error: BaseException) -> float | None:
        """Note a failure; the seconds to wait before trying again, or None when `error` is not an outage. The
        first failure alone is not logged: a connection left stale by a restart fails once, then works."""
        service = outage_of(error)
        if service is None:
            return None
        with self._lock:
            if service not in self._failing_since:
                self._failing_since[service] = time.monotonic()
            elif service not in self._reported:
                self._reported.add(service)
                log.warning("lost %s: %s", service, _one_line(error))
            wait = self._next_wait.get(service, self.first_wait)
            self._next_wait[service] = min(wait * 2, self.longest_wait)
        return wait

    def fine(self, *services: str) -> None:
        """Note that these services answered (all of them when none is named)."""
        if not self._failing_since:
            return
        with self._lock:
            for service in services or list(self._failing_since):
                since = self._failing_since.pop(service, None)
                self._next_wait.pop(service, None)
                if since is not None and service in self._reported:
                    self._reported.discard(service)
                    log.warning("%s back after %.0f s", service, time.monotonic() - since)

    def retry(self, call: Callable[[], T], *services: str, give_up_after: float | None = None,
              on_wait: Callable[[], None] | None = None) -> T:
        """Call until it works, waiting between tries while its services are out; other errors are raised at once,
        and so is the outage's error once `give_up_after` seconds have passed. on_wait: called before the first wait
        (to tell whoever waits for the result)."""
        started = time.monotonic()
        while True:
            try:
                result = call()
            except Exception as error:
                wait = _wait_within(self.failed(error), started, give_up_after)
                if wait is None:
                    raise
                if on_wait is not None:
                    on_wait()
                    on_wait = None
                time.sleep(wait)
            else:
                self.fine(*services)
                return result

    async def retry_async(self, call: Callable[[], Awaitable[T]], *services: str,
                          give_up_after: float | None = None) -> T:
        """`retry` for a coroutine function."""
        started = time.monotonic()
        while True:
            try:
                result = await call()
            except Exception as error:
                wait = _wait_within(self.failed(error), started, give_up_after)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
            else:
                self.fine(*services)
                return result

    def attempt(self, call: Callable[[], T], service: str, default: T) -> T:
        """One try that must not stop the work around it (progress, a cancel check): `default` during an outage."""
        try:
            result = call()
        except Exception as error:
            if self.failed(error) is None:
                raise
            return default
        self.fine(service)
        return result


def _wait_within(wait: float | None, started: float, give_up_after: float | None) -> float | None:
    """The wait before the next try, cut to the time left before giving up (None: give up now). The backoff is
    shared by every call to a service, so after a long outage it can exceed a caller's whole allowance: a call that
    met one stale connection right after the service came back must still get its second try."""
    if wait is None or give_up_after is None:
        return wait
    left = give_up_after - (time.monotonic() - started)
    return min(wait, left) if left > 0 else None


def log_unless_outage(logger: logging.Logger, error: BaseException, message: str, *args) -> None:
    """Log a failure with its traceback, unless it is an outage (`Outages` logs those, once)."""
    if outage_of(error) is None:
        logger.error(message, *args, exc_info=error)


def _one_line(error: BaseException) -> str:
    if isinstance(error, StorageUnavailable) and error.__cause__ is not None:
        error = error.__cause__  # the store's own error, for the operator; not the line the person gets
    return (str(error).splitlines() or [type(error).__name__])[0][:200]
