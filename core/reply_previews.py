"""The JPEG a result's reply shows (core.stored_images.encode_preview), made by the edit runner on another thread while
the node is encoded, stored and recorded, and taken by the reply (core/conversation/edits.py): its 4-5 ms of encoding
is then off the person's wait. A reply finding none (any picture but a result just made in this process) encodes
its own.

Keyed by the image store's digest, like core/picture_cache.py: a digest names one picture, so whichever engine of
the process takes a preview gets the JPEG of exactly that picture.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future

KEPT = 4
"""Previews waiting to be taken. Each is taken within milliseconds of being made; one is left over only by an edit
whose node was not recorded after all (e.g. a purge took its tree), so a few is plenty."""


class ReplyPreviews:
    """Thread-safe: digest -> the Future of its preview's bytes, each taken once; at most KEPT, the oldest dropped."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._previews: OrderedDict[str, Future[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def offer(self, digest: str, preview: Future[bytes]) -> None:
        """Keep the preview being made of the stored picture `digest`, for the reply that shows it."""
        with self._lock:
            self._previews[digest] = preview
            while len(self._previews) > self.kept:
                self._previews.popitem(last=False)

    def take(self, digest: str) -> Future[bytes] | None:
        """The preview made of `digest` (done or still being made), or None; either way none is kept afterwards."""
        with self._lock:
            return self._previews.pop(digest, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._previews)


reply_previews = ReplyPreviews()
"""The process's previews, shared by the edit runner that makes them and the engine that shows them."""
