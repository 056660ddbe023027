"""Chat commands: a tiny registry where each command's docstring is its /help text.

The engine marks its handlers with `@command("undo")`; adapters read `engine.commands` to build menus
(Telegram's setMyCommands, Discord's slash command descriptions) so every platform says the same thing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import BadParams, UserError


@dataclass(frozen=True)
class CommandInfo:
    name: str
    args: str
    summary: str
    help: str
    hidden: bool = False
    """Left out of /help and the platforms' command menus (admin commands)."""

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


def command(name: str, args: str = "", *, hidden: bool = False) -> Callable[[Callable], Callable]:
    """Mark a coroutine method as the handler of `/name`. Its docstring's first line is the summary."""

    def mark(handler: Callable) -> Callable:
        doc = inspect.cleandoc(handler.__doc__ or "")
        summary = doc.splitlines()[0] if doc else name
        handler.__command__ = CommandInfo(name, args, summary, doc, hidden)
        return handler

    return mark


def collect(*owners: object) -> dict[str, tuple[CommandInfo, Callable]]:
    """The marked handlers of the given objects, bound, in definition order (the first owner's first)."""
    found: dict[str, tuple[CommandInfo, Callable]] = {}
    for owner in owners:
        for cls in reversed(type(owner).__mro__):
            for attr in vars(cls).values():
                info = getattr(attr, "__command__", None)
                if info is not None:
                    if info.name in found:
                        raise ValueError(f"two handlers for /{info.name}")
                    found[info.name] = (info, getattr(owner, attr.__name__))
    return found


def unknown_command(name: str) -> UserError:
    """The answer to a command we do not have (or that this person may not use: they get the same answer)."""
    return UserError(f"I don't know /{name}. Send /help for the list of commands.")


def split_command(text: str) -> tuple[str, str] | None:
    """'/text 9' -> ('text', '9'); '/goto@MyBot 3' -> ('goto', '3'); not a command -> None."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    return (name, rest.strip()) if name else None


def parse_number(raw: str, what: str, allowed: str) -> float:
    """A float from a person's text, or BadParams naming what is allowed."""
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        raise BadParams(f"{what} needs a number: {allowed}.") from None
    return value


def parse_whole(raw: str, what: str, allowed: str) -> int:
    if not raw.strip().isdigit():
        raise BadParams(f"{what} needs a whole number: {allowed}.")
    return int(raw)
