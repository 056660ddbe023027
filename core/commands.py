"""Chat commands and buttons: one table that every front-end reads.

A handler is marked once with what it answers:

    @command("goto", Arg.whole("n", 0, GOTO_MAX, "The step number, as listed by /history"))
    async def goto(self, conversation, send, n: int) -> None:
        \"\"\"Jump to step N of /history.\"\"\"

The docstring's first line is the summary (/help, Telegram's menu, Discord's descriptions); the Args say what the
command takes. The engine parses and checks the text once (`parse_args`) and calls the handler with typed values;
Discord builds its slash options from the same Args. Buttons are marked the same way with `@button`.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from core.domain import readable_number
from core.errors import BadParams, UserError

WHOLE = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() also takes '²' and other scripts' digits
DECIMAL = re.compile(r"[0-9]{1,9}(?:[.,][0-9]{1,9})?|[.,][0-9]{1,9}")
COMMAND_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_ARG_CHARS = 64
"""A longer argument is refused before any parsing: no command takes one."""

REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    """One argument of a command: how to read it from text, and how a platform should ask for it.

    kind: int, float or str (one of `choices`; with no choices, free text of at most `high` characters, e.g. the
    English /meant takes). low/high: the allowed range (inclusive), also Discord's limits.
    default: the value when the argument is left out; REQUIRED when it may not be. words: extra words that stand
    for a value (e.g. "random" -> None for /seed). usage: how /help writes it, e.g. "N" or "90|180|270".
    """

    name: str
    kind: type
    help: str
    usage: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    default: object = REQUIRED
    words: tuple[tuple[str, object], ...] = ()
    pattern: re.Pattern | None = None
    """For a free-text argument (kind str without choices): what it must look like, e.g. a /goto label."""
    upper: str | None = None
    """The name of an async method of the command's group that gives the highest value for one conversation
    (e.g. the last step of /history); `high` stays the most any conversation allows (Discord's limit)."""

    @classmethod
    def whole(cls, name: str, low: int, high: int, help: str, *, default: object = REQUIRED, usage: str = "N",
              words: tuple[tuple[str, object], ...] = (), upper: str | None = None) -> Arg:
        return cls(name, int, help, usage, low, high, default=default, words=words, upper=upper)

    @classmethod
    def number(cls, name: str, low: float, high: float, help: str, *, usage: str = "X") -> Arg:
        return cls(name, float, help, usage, low, high)

    @classmethod
    def choice(cls, name: str, choices: tuple[str, ...], help: str, labels: tuple[str, ...] = ()) -> Arg:
        """labels: what each choice means, in the same order (Discord shows them; refusals name them)."""
        return cls(name, str, help, "|".join(choices), choices=choices, labels=labels)

    @classmethod
    def text(cls, name: str, help: str, *, usage: str, max_chars: int) -> Arg:
        """Free text, kept as typed (case too): the last argument of its command, as it takes the rest of the line.
        help reads on after "needs", e.g. "The English you meant, e.g. make the photo snowy"."""
        return cls(name, str, help, usage, 1, max_chars)

    @classmethod
    def word(cls, name: str, pattern: re.Pattern, help: str, *, usage: str, default: object = REQUIRED) -> Arg:
        """A short word matching `pattern` (e.g. a step label like 2b); `help` says what is allowed."""
        return cls(name, str, help, usage, pattern=pattern, default=default)

    @property
    def free_text(self) -> bool:
        return self.kind is str and not self.choices and self.pattern is None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def allowed(self) -> str:
        """What a person may give, in words: 'from 1 to 20', 'h or v'."""
        if self.free_text:
            return f"at most {readable_number(self.high)} characters"
        if self.pattern is not None:
            return self.help[:1].lower() + self.help[1:]
        if self.kind is str:
            named = [f"{choice} ({label})" for choice, label in zip(self.choices, self.labels)] or list(self.choices)
            return " or ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
        text = f"from {readable_number(self.low)} to {readable_number(self.high)}"
        return text + "".join(f", or '{word}'" for word, _ in self.words)

    def parse(self, raw: str, command: str) -> object:
        """The typed value of `raw`, or BadParams with one line saying what is allowed."""
        if self.free_text:
            return self._parse_free_text(raw.strip(), command)
        text = raw.strip().lower()
        if not text:
            if self.required:
                raise BadParams(f"/{command} needs {self.allowed}." if self.pattern is not None
                                else f"/{command} needs {self._what}: {self.allowed}.")
            return self.default
        for word, value in self.words:
            if text == word:
                return value
        if len(text) > MAX_ARG_CHARS:
            raise BadParams(f"/{command} needs {self._what}: {self.allowed}.")
        if self.pattern is not None:
            if not self.pattern.fullmatch(text):
                raise BadParams(f"/{command} needs {self.allowed}.")
            return text
        if self.kind is str:
            if text not in self.choices:
                raise BadParams(f"/{command} needs {self._what}: {self.allowed}.")
            return text
        pattern = WHOLE if self.kind is int else DECIMAL
        if not pattern.fullmatch(text):
            raise BadParams(f"/{command} needs {self._what}: {self.allowed}.")
        value = int(text) if self.kind is int else float(text.replace(",", "."))
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise BadParams(f"/{command} needs {self._what}: {self.allowed}.")
        return value

    def _parse_free_text(self, text: str, command: str) -> str:
        if not text:
            if self.required:
                raise BadParams(f"/{command} needs {self.help[:1].lower()}{self.help[1:]}.")
            return self.default
        if len(text) > self.high:
            raise BadParams(f"/{command} takes {self.allowed}: please shorten it.")
        return text

    @property
    def _what(self) -> str:
        if self.kind is str and not self.choices:
            return "words"
        return {int: "a whole number", float: "a number", str: "one of"}[self.kind]


@dataclass(frozen=True)
class CommandInfo:
    name: str
    args: tuple[Arg, ...]
    summary: str
    help: str
    hidden: bool = False
    """Left out of /help and the platforms' command menus (admin commands)."""
    on_image: bool = False
    """The handler also takes `node`: the result the person replied to (Telegram), else the current image."""

    @property
    def usage(self) -> str:
        parts = [arg.usage if arg.required else f"[{arg.usage}]" for arg in self.args]
        return " ".join([f"/{self.name}", *parts])

    async def narrowed(self, group: object, conversation: object) -> CommandInfo:
        """This command with each `upper` bound asked of its group for this conversation."""
        args = []
        for arg in self.args:
            if arg.upper is not None:
                arg = replace(arg, high=min(arg.high, await getattr(group, arg.upper)(conversation)))
            args.append(arg)
        return replace(self, args=tuple(args))

    def parse_args(self, text: str) -> dict[str, object]:
        """The handler's keyword arguments from the text after the command name. A command without arguments
        ignores any text; the last argument takes the rest of the line."""
        if not self.args:
            return {}
        words = text.split(maxsplit=len(self.args) - 1) if text.strip() else []
        words += [""] * (len(self.args) - len(words))
        return {arg.name: arg.parse(word, self.name) for arg, word in zip(self.args, words)}


@dataclass(frozen=True)
class ButtonInfo:
    action: str
    label: str


def command(name: str, *args: Arg, hidden: bool = False, on_image: bool = False) -> Callable[[Callable], Callable]:
    """Mark a coroutine method as the handler of `/name`, called as handler(conversation, send, **typed args).
    on_image: it acts on one image, passed as `node`: sent as a reply to an older result, that result."""
    if not COMMAND_NAME.fullmatch(name):
        raise ValueError(f"bad command name {name!r}")

    def mark(handler: Callable) -> Callable:
        doc = inspect.cleandoc(handler.__doc__ or "")
        summary = doc.splitlines()[0] if doc else name
        handler.__command__ = CommandInfo(name, args, summary, doc, hidden, on_image)
        return handler

    return mark


def button(action: str, label: str) -> Callable[[Callable], Callable]:
    """Mark a coroutine method as what the `action` button does, called as handler(conversation, node, send)."""

    def mark(handler: Callable) -> Callable:
        handler.__button__ = ButtonInfo(action, label)
        return handler

    return mark


def collect(*owners: object) -> tuple[dict[str, tuple[CommandInfo, Callable]], dict[str, tuple[ButtonInfo, Callable]]]:
    """The marked commands and buttons of the given objects, bound, in definition order (the first owner's first)."""
    commands: dict[str, tuple[CommandInfo, Callable]] = {}
    buttons: dict[str, tuple[ButtonInfo, Callable]] = {}
    for owner in owners:
        for cls in reversed(type(owner).__mro__):
            for attr in vars(cls).values():
                for table, info, key in ((commands, getattr(attr, "__command__", None), "name"),
                                         (buttons, getattr(attr, "__button__", None), "action")):
                    if info is None:
                        continue
                    if getattr(info, key) in table:
                        raise ValueError(f"two handlers for {getattr(info, key)}")
                    table[getattr(info, key)] = (info, getattr(owner, attr.__name__))
    return commands, buttons


def unknown_command(name: str) -> UserError:
    """The answer to a command we do not have (or that this person may not use: they get the same answer)."""
    shown = name if COMMAND_NAME.fullmatch(name) else name[:32].encode("ascii", "replace").decode()
    return UserError(f"I don't know /{shown}. Send /help for the list of commands.")


NO_COMMAND = "A command goes right after the slash, like /undo. Send /help for the list of commands."


def split_command(text: str) -> tuple[str, str] | None:
    """'/text 9' -> ('text', '9'); '/goto@MyBot 3' -> ('goto', '3'); not a command -> None.

    Anything that starts with '/' is a command, even '/' alone or '/ undo' (name ''): never an instruction."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    return name, rest.strip()
