"""Fakes of ports that have no in-memory twin in storage.memory: an editor that is fast and deterministic, and the
distributed mode's job table, each with the same contract as the real one."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PIL import Image, ImageChops

from bot.distributed.jobs import CANCELLED, CANCELLED_KIND, JobRecord, claimable
from core.domain import EditJob, EditParams, NewNode, Node, Rendered
from core.errors import BadParams, EditCancelled
from core.ports import EditResult, HistoryRepository


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


@pytest.fixture
def gated_editor(gate) -> FakeEditor:
    """A FakeEditor held by conftest's `gate`; a test module takes it as its editor with `editor = gated_editor`
    (overriding conftest's)."""
    return FakeEditor(gate=gate)


class InMemoryJobRepository:
    """JobRepository (bot.distributed.jobs) over an in-memory history (storage.memory); one lock stands for the
    transaction."""

    def __init__(self, history: HistoryRepository) -> None:
        self._history = history
        self._lock = threading.Lock()
        self._jobs: dict[str, JobRecord] = {}

    def create(self, job_id: str, job: EditJob, frontend: str) -> JobRecord:
        with self._lock:
            if job_id not in self._jobs:
                self._jobs[job_id] = JobRecord(job_id, job, frontend, "queued", None, 0, 0, 0, (), None, None,
                                               False, datetime.now(UTC), None)
            return self._jobs[job_id]

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._jobs.get(job_id)

    def claim(self, job_id: str, worker: str, stale_after: float) -> tuple[JobRecord | None, bool]:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or not claimable(record.state, record.heartbeat_at, stale_after):
                return record, False
            record = self._jobs[job_id] = replace(record, state="running", worker=worker,
                                                  attempts=record.attempts + 1, heartbeat_at=datetime.now(UTC))
            return record, True

    def progress(self, job_id: str, step: int, total: int) -> None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is not None and record.state == "running":
                self._jobs[job_id] = replace(record, step=step, total=total, heartbeat_at=datetime.now(UTC))

    def complete(self, job_id: str, results: Sequence[Rendered]) -> list[Node]:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                raise ValueError(f"no job {job_id}")
            if record.state == "done":
                return [self._history.node(node_id) for node_id in record.node_ids]
            if record.finished:
                raise ValueError(f"job {job_id} is {record.state}")
            job = record.job
            nodes = [
                self._history.add_node(NewNode(job.conversation_id, job.parent_id, result.digest, job.instruction,
                                               result.params, result.seconds, make_head=not job.variants,
                                               stored_bytes=result.stored_bytes,
                                               translation=job.translation, region=job.region,
                                               source=result.source, inputs=job.references))
                for result in results
            ]
            self._jobs[job_id] = replace(record, state="done", node_ids=tuple(node.id for node in nodes))
            return nodes

    def fail(self, job_id: str, error: str, kind: str, *, cancelled: bool = False) -> JobRecord | None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is not None and not record.finished:
                record = self._jobs[job_id] = replace(record, state="cancelled" if cancelled else "failed",
                                                      error=error, failure_kind=kind)
            return record

    def cancel(self, job_id: str) -> JobRecord | None:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is not None and record.state == "queued":
                record = self._jobs[job_id] = replace(record, state="cancelled", error=CANCELLED,
                                                      failure_kind=CANCELLED_KIND)
            return record

    def mark_delivered(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id] = replace(self._jobs[job_id], delivered=True)

    def undelivered(self, frontend: str) -> list[JobRecord]:
        with self._lock:
            return [record for record in self._jobs.values() if record.frontend == frontend and not record.delivered]

    def adopt(self, frontends, to: str) -> list[JobRecord]:
        with self._lock:
            moved = [replace(record, frontend=to) for record in self._jobs.values()
                     if record.frontend in frontends and not record.delivered]
            self._jobs.update((record.id, record) for record in moved)
            return moved
