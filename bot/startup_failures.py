"""What a failed start says: one line naming the setting to check, secrets and passwords masked, and an exit status.

    editbot: Telegram refused the bot token, or TELEGRAM_BASE_URL is not a Bot API server (Not Found) (exit 2)
    editbot: cannot reach the database at postgresql://editbot:***@db/editbot: connection refused   (exit 2)

Settings a person must fix (a token the platform refuses, a database URL that is malformed or leads nowhere) exit
with status 2, like every other bad input; anything else with 1. The traceback is logged (redacted like every
record) only with `editbot -v`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

log = logging.getLogger("editbot")

BAD_SETTING, FAILED = 2, 1
_PASSWORD_IN_URL = re.compile(r"(?P<head>//[^/:@\s]*:)[^@\s]*(?=@)")


def mask_database_url(url: str) -> str:
    """The URL with its password (if any) shown as ***, whether or not SQLAlchemy can parse it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _PASSWORD_IN_URL.sub(r"\g<head>***", url)


def database_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        found = _PASSWORD_IN_URL.search(url)
        return found.group(0)[len(found["head"]):] if found else None


def explain(error: BaseException, *, database_url: str, secrets: Iterable[str | None],
            verbose: bool = False) -> tuple[str, int]:
    """One redacted line saying why the start failed, and the exit status."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:  # a task group's failure: its first cause
        error = error.exceptions[0]
    line, status = _describe(error, mask_database_url(database_url))
    hidden = sorted({secret for secret in (*secrets, database_password(database_url)) if secret}, key=len,
                    reverse=True)
    for secret in hidden:
        line = line.replace(secret, "***")
    if verbose:
        log.error("start-up failed", exc_info=error)
    return " ".join(line.split()), status


def _describe(error: BaseException, database: str) -> tuple[str, int]:
    detail = _first_line(error)
    database_line = _database_failure(error, database, detail)
    if database_line is not None:
        return database_line
    telegram_line = _telegram_failure(error, detail)
    if telegram_line is not None:
        return telegram_line
    discord_line = _discord_failure(error, detail)
    if discord_line is not None:
        return discord_line
    if isinstance(error, OSError):
        return f"could not start: {detail}", FAILED
    return f"could not start: {type(error).__name__}: {detail}", FAILED


def _database_failure(error: BaseException, database: str, detail: str) -> tuple[str, int] | None:
    try:
        from sqlalchemy import exc
    except ImportError:
        return None
    if isinstance(error, (exc.ArgumentError, exc.NoSuchModuleError)):
        return f"the database URL (EDITBOT_DATABASE_URL) is not valid: {database}", BAD_SETTING
    if isinstance(error, exc.DBAPIError):
        reason = _first_line(error.orig) if error.orig is not None else detail
        return f"cannot reach the database at {database} (EDITBOT_DATABASE_URL): {reason}", BAD_SETTING
    if isinstance(error, exc.SQLAlchemyError):
        return f"the database at {database} failed: {detail}", FAILED
    return None


def _telegram_failure(error: BaseException, detail: str) -> tuple[str, int] | None:
    try:
        from telegram import error as telegram_errors
    except ImportError:
        return None
    if isinstance(error, telegram_errors.InvalidToken):
        return (f"Telegram refused the bot token (TELEGRAM_BOT_TOKEN), or TELEGRAM_BASE_URL is not a Bot API "
                f"server ({detail})"), BAD_SETTING
    if isinstance(error, telegram_errors.TelegramError):
        return f"cannot start the Telegram bot: {detail}", FAILED
    return None


def _discord_failure(error: BaseException, detail: str) -> tuple[str, int] | None:
    try:
        import discord
    except ImportError:
        return None
    if isinstance(error, discord.LoginFailure):
        return "Discord refused the bot token: check DISCORD_BOT_TOKEN.", BAD_SETTING
    if isinstance(error, discord.DiscordException):
        return f"cannot start the Discord bot: {detail}", FAILED
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
