"""Logging for the bot process: plain text or JSON lines, every record tagged with its conversation, secrets redacted.

    configure_logging("json", logging.INFO, secrets=[telegram_token, discord_token])

The redaction runs on the handler, so it covers every library's records too (an HTTP client logging a Bot API URL
carries the token in it), their arguments and their tracebacks. Bytes are never printed, only their length, so an
image can't end up in a log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from core.metrics import log_conversation

REDACTED = "[REDACTED]"


class RedactSecrets(logging.Filter):
    """Replaces each secret wherever it appears in a record's message, arguments or traceback; bytes become
    "<N bytes>". Also sets `record.conversation` from core.metrics.log_conversation (None outside one)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "conversation"):
            record.conversation = log_conversation.get()
        if isinstance(record.args, tuple):
            record.args = tuple(_no_bytes(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _no_bytes(value) for key, value in record.args.items()}
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _no_bytes(value: object) -> object:
    return f"<{len(value)} bytes>" if isinstance(value, (bytes, bytearray, memoryview)) else value


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, conversation, and the traceback
    as `error` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "conversation": getattr(record, "conversation", None),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["error"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainText(logging.Formatter):
    """The classic line, with the conversation in brackets when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(where)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        conversation = getattr(record, "conversation", None)
        record.where = f" [{conversation}]" if conversation else ""
        return super().format(record)


class _EditbotHandler(logging.StreamHandler):
    """The handler configure_logging installs, told apart from anyone else's."""


def configure_logging(log_format: Literal["text", "json"], level: int, *,
                      secrets: Iterable[str | None] = (), stream=None) -> logging.Handler:
    """Send every record at `level` and above to stderr (or `stream`) in the chosen format, secrets redacted.
    Calling it again replaces the handler it added before (others, e.g. a test runner's, stay). Returns it."""
    handler = _EditbotHandler(stream)
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(JsonLines() if log_format == "json" else PlainText())
    root = logging.getLogger()
    for old in [old for old in root.handlers if isinstance(old, _EditbotHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
