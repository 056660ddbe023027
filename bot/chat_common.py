"""What every chat front-end does alike, written once, so a new front-end starts from it: who is admitted (the
allowlist), refusing an upload from its declared size before fetching it, how often a progress message is redrawn,
the line for a failure on our side, and the sample photo to try.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Hashable, Sequence
from pathlib import Path

from bot.sizes import MEGABYTE, size_and_limit
from core.errors import (
    SOMETHING_WENT_WRONG as SOMETHING_WENT_WRONG,  # the line every front-end shows for a bug
)
from core.errors import BadImage
from core.messages import Incoming, Send

SAMPLE_PHOTO = Path(__file__).parent / "samples" / "sample.jpg"
"""The bundled photo to try the bot on without one at hand: the terminal chat's tip, the web page's greeting."""
PROGRESS_INTERVAL_S = 1.0
"""At most one progress redraw per second: chat platforms rate-limit message edits, and a person reads no faster."""


def admitted(allowed_ids: Collection, *ids: object) -> bool:
    """An empty allowlist admits everyone; otherwise one of the ids (the person, their chat, their server) must be on
    it."""
    return not allowed_ids or any(found in allowed_ids for found in ids)


def refuse_declared_size(size: int | None, limit: int, what: str = "image") -> None:
    """BadImage before fetching anything, when the platform declares a size over the limit (None: not declared; the
    download then stops at the limit, see over_limit)."""
    if size is not None and size > limit:
        shown, most = size_and_limit(size, limit)
        raise BadImage(f"That {what} is {shown}; the most I accept is {most}.")


def over_limit(limit: int, what: str = "file") -> str:
    """The line for an upload found too big while it was being read (its size was not declared)."""
    return f"That {what} is over {limit / MEGABYTE:g} MB, the most I can take."


class ProgressThrottle:
    """When a progress message may be redrawn: at most once per interval per key (a chat, a job)."""

    def __init__(self, interval: float = PROGRESS_INTERVAL_S) -> None:
        self.interval = interval
        self._drawn_at: dict[Hashable, float] = {}

    def due(self, key: Hashable) -> bool:
        return time.monotonic() - self._drawn_at.get(key, float("-inf")) >= self.interval

    def drawn(self, key: Hashable) -> None:
        now = time.monotonic()
        self._drawn_at[key] = now
        # Forget keys whose last redraw is long past, so the table stays as small as the set of busy chats.
        if len(self._drawn_at) > 1000:
            self._drawn_at = {key: at for key, at in self._drawn_at.items() if now - at < self.interval}


async def hand_over_in_order(engine, incomings: Sequence[Incoming], send: Send) -> None:
    """Hand the engine several messages of one person one after the other (a photo, its reference pictures, then
    the instruction), stopping after one it refused: an instruction must never land on an earlier picture because
    the photo or a reference was turned down."""
    for incoming in incomings:
        refused = False

        async def watching(reply) -> None:
            nonlocal refused
            refused = refused or getattr(reply, "error", False)
            await send(reply)

        await engine.handle(incoming, watching)
        if refused:
            return
