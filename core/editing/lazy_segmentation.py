"""The segmentation model loaded on first use: a bot or worker whose people never name a region never imports torch's
CLIPSeg code or loads its weights (importing transformers' CLIPSeg alone takes seconds at start-up)."""

from __future__ import annotations

import threading

from PIL import Image

from core.load_retry import LoadRetry
from core.ports import Segmenter

DEFAULT_SEGMENTATION_MODEL = "CIDAS/clipseg-rd64-refined"


class LazySegmenter:
    """Loads the segmentation model on the first `mask` call (from any thread, once), like the editor's model; a
    failed load is answered from memory for a few minutes (`retry`, core/load_retry.py)."""

    def __init__(self, source: str = DEFAULT_SEGMENTATION_MODEL, *, device: str = "auto",
                 offline: bool = False, retry: LoadRetry | None = None) -> None:
        self.source = source
        self.device = device
        self.offline = offline
        self._loaded: Segmenter | None = None
        self._lock = threading.Lock()
        self._retry = retry or LoadRetry()

    def mask(self, image: Image.Image, words: str) -> Image.Image:
        with self._lock:
            if self._loaded is None:
                from core.editing.segmentation import load_segmenter  # torch and transformers: seconds to import

                self._loaded = self._retry.load(
                    lambda: load_segmenter(self.source, device=self.device, offline=self.offline))
        return self._loaded.mask(image, words)
