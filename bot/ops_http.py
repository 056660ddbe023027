"""The operations endpoint: `/healthz` (is the bot ready?) and `/metrics` (Prometheus), as an aiohttp app.

    metrics = EditMetrics()                      # pass it to EditQueue or DistributedQueue(observer=metrics)
    health = Health()                            # attach history and queue as they come up; mark_model_ready()
    app = make_app(health, metrics)

/healthz answers 200 when the model is loaded (warm-up done), the database answers and the queue is up, else 503;
both with a JSON body saying which part is which.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from core.ports import HistoryRepository, JobQueue

log = logging.getLogger(__name__)

DATABASE_CHECK_SECONDS = 5.0
# Edit time on a GPU is seconds, on a CPU minutes: buckets cover both.
LATENCY_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 600)


class EditMetrics:
    """Prometheus metrics in a registry of their own; an EditObserver (core.metrics) for the queue."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.edits = Counter("editbot_edits", "Edits finished and recorded.", registry=self.registry)
        self.failures = Counter("editbot_edit_failures", "Edits that ended without a result, by error kind.",
                                ["kind"], registry=self.registry)
        self.latency = Histogram("editbot_edit_seconds", "Time from an edit's start to its recorded result.",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("editbot_queue_depth", "Edits waiting plus the one running.", registry=self.registry)
        self.queue_paused = Gauge("editbot_queue_paused", "1 while an admin has paused the queue.",
                                  registry=self.registry)
        self.model_ready = Gauge("editbot_model_ready", "1 once the model is loaded and warmed up.",
                                 registry=self.registry)

    def edit_succeeded(self, seconds: float) -> None:
        self.edits.inc()
        self.latency.observe(seconds)

    def edit_failed(self, kind: str) -> None:
        self.failures.labels(kind=kind).inc()

    def watch_queue(self, queue: JobQueue) -> None:
        """Read the queue's depth and pause state at each scrape."""
        self.queue_depth.set_function(lambda: queue.depth)
        self.queue_paused.set_function(lambda: float(queue.status.paused))

    def watch_gpu(self) -> bool:
        """Report CUDA memory (allocated and reserved by torch, bytes) at each scrape, if there is a GPU."""
        try:
            import torch
        except ImportError:
            return False
        if not torch.cuda.is_available():
            return False
        memory = Gauge("editbot_gpu_memory_bytes", "GPU memory held by torch.", ["kind"], registry=self.registry)
        memory.labels(kind="allocated").set_function(torch.cuda.memory_allocated)
        memory.labels(kind="reserved").set_function(torch.cuda.memory_reserved)
        return True

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Health:
    """What /healthz reports. Parts are attached as start-up reaches them; safe to read from another thread."""

    def __init__(self) -> None:
        self._model_ready = threading.Event()
        self.history: HistoryRepository | None = None
        self.queue: JobQueue | None = None

    def mark_model_ready(self) -> None:
        self._model_ready.set()

    @property
    def model_ready(self) -> bool:
        return self._model_ready.is_set()

    def database_ok(self) -> bool:
        """Blocking: one small read."""
        if self.history is None:
            return False
        try:
            self.history.conversation_by_id(0)
        except Exception as error:  # any failure means not ready; the reason goes to the log, not the response
            log.warning("health check: database unreachable: %s", error)
            return False
        return True

    async def report(self) -> tuple[bool, dict]:
        try:
            database = await asyncio.wait_for(asyncio.to_thread(self.database_ok), DATABASE_CHECK_SECONDS)
        except TimeoutError:
            database = False
        queue = self.queue
        body = {
            "model_loaded": self.model_ready,
            "database": database,
            "queue_depth": None if queue is None else queue.depth,
            "queue_paused": None if queue is None else queue.status.paused,
        }
        ready = self.model_ready and database and queue is not None
        body["status"] = "ok" if ready else "unavailable"
        return ready, body


def make_app(health: Health, metrics: EditMetrics) -> web.Application:
    """The aiohttp application serving /healthz and /metrics."""

    async def healthz(request: web.Request) -> web.Response:
        ready, body = await health.report()
        return web.json_response(body, status=200 if ready else 503)

    async def prometheus(request: web.Request) -> web.Response:
        metrics.model_ready.set(float(health.model_ready))
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app
