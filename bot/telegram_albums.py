"""Albums: several photos sent together reach the bot as one update each, sharing a media_group_id, in no promised
order and handled concurrently. The first part's handler gathers them (until no part has come for
QUIET_SECONDS, and every part's download is done) and hands the engine one sequence: the first photo starts the
tree, the others become references for the next edit ("/ref"), then the album's caption is the instruction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

QUIET_SECONDS = 1.0
"""Telegram sends an album's parts within a fraction of a second; a part later than this starts a new album."""


@dataclass
class AlbumPart:
    message_id: int
    text: str | None
    """What the part says to the bot: its caption ("" for none), or None when it is not for the bot (a group)."""
    image: asyncio.Task[bytes]


@dataclass
class Album:
    parts: list[AlbumPart] = field(default_factory=list)
    last_arrival: float = field(default_factory=time.monotonic)

    @property
    def for_the_bot(self) -> bool:
        """Whether any part addressed the bot (in a group, the caption that mentions it)."""
        return any(part.text is not None for part in self.parts)

    @property
    def caption(self) -> str:
        return next((part.text for part in self.ordered() if part.text), "")

    def ordered(self) -> list[AlbumPart]:
        """The parts in the order they were sent."""
        return sorted(self.parts, key=lambda part: part.message_id)


class Albums:
    """The albums being gathered, one per (chat, sender, media_group_id)."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.quiet_seconds = quiet_seconds
        self._open: dict[tuple, Album] = {}

    async def gather(self, key: tuple, message_id: int, text: str | None, image: Awaitable[bytes]) -> Album | None:
        """Add one part (its download already under way); the whole album, once gathered, to the first part's
        handler, and None to the others'."""
        task = asyncio.ensure_future(image)
        part = AlbumPart(message_id, text, task)
        album = self._open.get(key)
        if album is not None:
            album.parts.append(part)
            album.last_arrival = time.monotonic()
            return None
        album = self._open[key] = Album([part])
        try:
            while (wait := album.last_arrival + self.quiet_seconds - time.monotonic()) > 0:
                await asyncio.sleep(wait)
        finally:
            del self._open[key]
        await asyncio.gather(*(part.image for part in album.parts), return_exceptions=True)
        return album
