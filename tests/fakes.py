"""Fakes for engine tests: an editor that is fast and deterministic, with the same contract as the real one."""

from __future__ import annotations

import hashlib
import random
import threading
import time

from PIL import Image, ImageChops

from core.domain import EditParams
from core.errors import BadParams, EditCancelled
from core.ports import EditResult


class FakeEditor:
    """Tints the image with a colour derived from (instruction, params, seed): same inputs, same pixels.

    `gate`, when given, makes every edit wait for it after the first step: tests use it to hold an edit
    "running" while they queue or cancel others. Records every edit in `calls`, the size of every edit_batch in
    `batches` and the instructions of every edit_many in `many`.
    """

    def __init__(self, *, step_seconds: float = 0.0, gate: threading.Event | None = None) -> None:
        self.step_seconds = step_seconds
        self.gate = gate
        self.calls: list[tuple[str, EditParams]] = []
        self.batches: list[int] = []
        self.many: list[tuple[str, ...]] = []
        self.started = threading.Event()

    def edit(self, image, instruction, params, *, on_step=None, cancel=None) -> EditResult:
        params = params.validated()
        if params.seed is None:
            params = params.with_seed(random.randrange(2**32))
        self.calls.append((instruction, params))
        self.started.set()
        start = time.perf_counter()
        for step in range(1, params.steps + 1):
            if step == 2 and self.gate is not None:
                while not self.gate.wait(0.01):
                    if cancel is not None and cancel.is_set():
                        break
            if cancel is not None and cancel.is_set():
                raise EditCancelled("Edit cancelled.")
            time.sleep(self.step_seconds)
            if on_step is not None:
                on_step(step, params.steps)
        return self._render(image, instruction, params, start)

    def edit_batch(self, image, instruction, variants, *, on_step=None, cancel=None) -> list[EditResult]:
        """Like the real editor: one pass over the steps for all variants."""
        self.batches.append(len(variants))
        return [self.edit(image, instruction, params, on_step=on_step if n == 0 else None, cancel=cancel)
                for n, params in enumerate(variants)]

    def edit_many(self, requests, *, on_step=None, cancel=None) -> list[EditResult]:
        """Like the real editor: the edits must share batch_key; one pass over the steps for all of them."""
        if len({self.batch_key(image, params) for image, _, params in requests}) > 1:
            raise BadParams("Edits run together must share their working size, steps and scheduler.")
        self.many.append(tuple(instruction for _, instruction, _ in requests))
        return [self.edit(image, instruction, params, on_step=on_step if n == 0 else None, cancel=cancel)
                for n, (image, instruction, params) in enumerate(requests)]

    def batch_key(self, image, params) -> tuple:
        """The fake edits at the input's size."""
        return image.size, params.steps, params.scheduler

    def working_size(self, size) -> tuple[int, int]:
        """The fake edits at the input's size."""
        return size

    def _render(self, image, instruction, params, start) -> EditResult:
        key = f"{instruction}|{params.text_guidance}|{params.image_guidance}|{params.steps}|{params.seed}"
        colour = tuple(hashlib.sha256(key.encode()).digest()[:3])
        tinted = ImageChops.blend(image.convert("RGB"), Image.new("RGB", image.size, colour), 0.5)
        return EditResult(tinted, params, time.perf_counter() - start)
