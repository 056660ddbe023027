"""What crosses the seam between a chat adapter and the engine: one Incoming in, Replies out.

An adapter turns a platform update into an Incoming, calls `engine.handle(incoming, send)`, and renders every
Reply passed to `send` as a platform message. Nothing else crosses.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.domain import ChatKey

ASCII_WORD = re.compile(r"[a-z]{1,32}")
ASCII_NUMBER = re.compile(r"[0-9]{1,18}")  # str.isdigit() also takes '²', which int() refuses


@dataclass(frozen=True)
class Incoming:
    """A message from a person: text (a command, an instruction, or None), and optionally image bytes.

    A button press arrives as `action` with the node it carries, e.g. Incoming(key, action=Press("undo", 42)).
    reply_to: the node of an earlier result the person replied to; text then edits that result, not the head (in
        English, to a translated result, it corrects that translation: core/conversation/language.py), and a
        command that acts on one image (/file, /info, /compare: `on_image`) acts on it.
    corrects: the node of a translated result whose Fix translation box the person filled in: text is the English
        they meant, never a command nor a new instruction.
    """

    key: ChatKey
    text: str | None = None
    image: bytes | None = None
    action: Press | None = None
    reply_to: int | None = None
    corrects: int | None = None


@dataclass(frozen=True)
class Press:
    """A button pressed under a result: which action, on which node (as the button was built)."""

    action: str
    node_id: int

    @property
    def data(self) -> str:
        """Compact string form for platforms' callback data / custom ids, e.g. 'undo:42'."""
        return f"{self.action}:{self.node_id}"

    @classmethod
    def parse(cls, data: str) -> Press | None:
        """Inverse of `data`; None for anything malformed (a forged or foreign payload)."""
        action, sep, node = data.partition(":")
        if not sep or not ASCII_WORD.fullmatch(action) or not ASCII_NUMBER.fullmatch(node):
            return None
        return cls(action, int(node))


@dataclass(frozen=True)
class Button:
    label: str
    press: Press


@dataclass(frozen=True)
class TextReply:
    """Plain text. error=True marks a refusal or failure (one line, never a traceback)."""

    text: str
    error: bool = False


@dataclass(frozen=True)
class ImageReply:
    """A result: PNG bytes, a caption saying what was done, and buttons acting on the node shown.

    kind: "node" for an image of the tree; "compare", "history", "tree", "photos" or "grid" for a picture that
    explains one (its node_id is the node it is about).
    label: the node's label in its tree, as /goto takes it (e.g. "2b"); front-ends may name files after it.
    """

    image: bytes
    caption: str
    node_id: int
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    kind: str = "node"
    label: str = ""


@dataclass(frozen=True)
class ProgressReply:
    """Progress of the job this handle() call started. Adapters edit one message in place per job.

    position: places ahead in the queue (0: running). step/total: denoising progress while running. notice: a line
    to read, not a counter: the edit is held up (no worker runs, storage is out), so it is shown even where progress
    cannot be updated in place (the terminal chat writing to a file or a pipe).
    """

    job_id: int | str  # the in-process queue numbers jobs; the distributed one uses the job row's id
    text: str
    position: int = 0
    step: int = 0
    total: int = 0
    notice: bool = False


Reply = TextReply | ImageReply | ProgressReply

Send = Callable[[Reply], Awaitable[None]]
"""How the engine answers: awaited once per Reply, in order."""
