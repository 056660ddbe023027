"""Hooks that let operations watch the core without the core knowing how: an edit observer the queue calls, and
the conversation a log line belongs to.

Nothing here imports a metrics or logging library; bot/ops_http.py turns the observer calls into Prometheus
metrics and bot/logging_setup.py puts `log_conversation` into every log record.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

log_conversation: ContextVar[str | None] = ContextVar("log_conversation", default=None)
"""The conversation being handled ("platform:chat:user"), set by the engine and the queue for the code they run;
log records carry it as their `conversation` field."""


class EditObserver(Protocol):
    """Told about every edit the queue runs. Called from the event loop; must be quick and never raise."""

    def edit_succeeded(self, seconds: float) -> None:
        """An edit finished and was recorded; seconds: wall time from start to recorded result."""

    def edit_failed(self, kind: str) -> None:
        """An edit ended without a result; kind: the error's class name (EditCancelled, UnsafeImage, ...) or
        "internal" for a bug or a device failure."""


class NoObserver:
    """The observer when nobody watches."""

    def edit_succeeded(self, seconds: float) -> None:
        pass

    def edit_failed(self, kind: str) -> None:
        pass
