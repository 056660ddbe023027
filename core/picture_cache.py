"""Decoded pictures kept per process, so the next edit of a picture just stored or just edited does not decode it
from the image store again (a lossless 12 MP node takes about half a second to decode; 1280x960: 20-30 ms).

Keyed by the image store's digest, the SHA-256 of the stored bytes: a digest names one content for ever, so an
entry can never go stale; an entry is only ever put by the code that encoded those bytes from that very picture
(or decoded it from them). Callers get a copy, so nothing they draw on can change what the next caller gets.
Bounded by bytes of pixels, least recently used first out. Under `working_key` it also keeps such a picture shrunk
to an editor's working size (core/runner.py makes it for the next edit of a result).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from PIL import Image

from core.ports import ImageStore
from core.stored_images import decode_stored

DEFAULT_MAX_BYTES = 256 * 2**20
"""About seven 12 MP pictures (36 MB each as RGB), or two hundred 1280x960 ones."""


class PictureCache:
    """A thread-safe LRU of decoded RGB pictures by digest."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pictures: OrderedDict[str, Image.Image] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, digest: str, picture: Image.Image) -> None:
        """Keep `picture` as the decoded form of the stored bytes named `digest`; the cache owns it from now on
        (the caller must not change it afterwards). A picture larger than the whole cache is not kept."""
        size = _footprint(picture)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._pictures.pop(digest, None)
            if old is not None:
                self._bytes -= _footprint(old)
            self._pictures[digest] = picture
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._pictures.popitem(last=False)
                self._bytes -= _footprint(evicted)

    def get(self, digest: str) -> Image.Image | None:
        """A copy of the picture kept for `digest`, or None."""
        with self._lock:
            picture = self._pictures.get(digest)
            if picture is None:
                return None
            self._pictures.move_to_end(digest)
        return picture.copy()

    def load(self, digest: str, images: ImageStore) -> Image.Image:
        """The stored picture `digest`, decoded: from the cache while its file is still in `images`, else decoded
        from `images` and kept for next time. KeyError when the file is gone (even if the cache still has it: a
        purge has deleted it, and the edit must not go on)."""
        if digest in self and images.exists(digest):
            cached = self.get(digest)
            if cached is not None:  # None: evicted since the check
                return cached
        picture = decode_stored(images.get(digest))
        self.put(digest, picture.copy())
        return picture

    def __contains__(self, digest: str) -> bool:
        with self._lock:
            return digest in self._pictures


def working_key(digest: str, size: tuple[int, int]) -> str:
    """Where the picture `digest`, shrunk to an editor's working `size`, is kept (core/runner.py makes it ahead of
    the next edit)."""
    return f"{digest}@{size[0]}x{size[1]}"


def _footprint(picture: Image.Image) -> int:
    return picture.width * picture.height * len(picture.getbands())


decoded_pictures = PictureCache()
"""The process's cache, shared by the engine (exact edits, replies) and the edit runner."""
