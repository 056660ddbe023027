"""The one place that wires settings to parts: editor, storage, queue, engine. Adapters and the CLI start here."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from collections.abc import Callable, Iterator
from functools import partial

from PIL import Image

from core.admin import AdminCommands
from core.config import Settings
from core.domain import EditParams
from core.engine import ConversationEngine
from core.errors import UserError
from core.jobs import EditRunner
from core.metrics import EditObserver
from core.ports import Editor, HistoryRepository, ImageStore
from core.queue import EditQueue

log = logging.getLogger(__name__)


def build_editor(settings: Settings) -> Editor:
    """Load the model once (this is the slow part of start-up) and wrap it in our editor."""
    from core.editing.pix2pix import Pix2PixEditor
    from core.editing.sources import load_pipeline

    options = settings.editor
    log.info("loading model %s", options.model)
    pipeline = load_pipeline(
        options.model,
        device=options.device,
        dtype=options.dtype,
        offline=options.offline,
        safety_checker=options.safety_checker,
    )
    return Pix2PixEditor(
        pipeline,
        max_side=options.max_side,
        keep_original_size=options.keep_original_size,
        scheduler=options.scheduler,
        fast=options.fast,
        safety_checker=options.safety_checker,
    )


def build_storage(settings: Settings) -> tuple[HistoryRepository, ImageStore]:
    """Open the database (migrating it to the latest schema) and the image folder."""
    from storage.blobs import FileImageStore
    from storage.database import make_engine
    from storage.migrate import upgrade
    from storage.repository import SqlHistoryRepository

    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.storage.url)
    return SqlHistoryRepository(make_engine(settings.storage.url)), FileImageStore(settings.storage.image_dir)


def warm_up(editor: Editor) -> None:
    """One tiny edit right after loading, so lazy initialisation (CUDA context, kernels, allocator) happens now and
    not during the first person's edit."""
    try:
        editor.edit(Image.new("RGB", (64, 64), (128, 128, 128)), "warm up", EditParams(steps=2, seed=0))
    except UserError as error:  # e.g. the safety checker flagging noise: the model is loaded all the same
        log.warning("warm-up edit refused: %s", error)


def build_engine(
    settings: Settings,
    *,
    editor: Editor | None = None,
    storage: tuple[HistoryRepository, ImageStore] | None = None,
    observer: EditObserver | None = None,
    on_queue: Callable[[EditQueue], None] | None = None,
) -> ConversationEngine:
    """Everything the adapters need. Pass `editor` to skip loading the model (tests, demos), `storage` to reuse an
    open one, `observer` to watch the edits and `on_queue` to be handed the queue (health, metrics). A model loaded
    here gets its warm-up edit."""
    history, images = storage or build_storage(settings)
    if editor is None:
        editor = build_editor(settings)
        if settings.ops.warmup:
            warm_up(editor)
    limits = settings.limits
    queue = EditQueue(
        EditRunner(editor, history, images),
        max_waiting_per_person=limits.max_waiting_per_person,
        max_waiting_total=limits.max_waiting_total,
        observer=observer,
    )
    if on_queue is not None:
        on_queue(queue)
    intake = {"max_pixels": limits.max_pixels, "min_side": limits.min_side, "max_aspect": limits.max_aspect}
    admin = AdminCommands(queue, history, settings.ops.admin_ids)
    return ConversationEngine(history, images, queue, intake_limits=intake, command_groups=[admin])


@contextmanager
def bot_service(settings: Settings, *, editor: Editor | None = None) -> Iterator[ConversationEngine]:
    """A bot's engine with operations around it, for as long as the block runs. The health and metrics endpoint
    starts before the model loads (answering "not ready" until the warm-up is done); the retention purge runs
    daily when EDITBOT_RETENTION_DAYS is set."""
    from bot.ops import OpsService, purge_history
    from bot.ops_http import EditMetrics, Health

    history, images = build_storage(settings)
    health, metrics = Health(), EditMetrics()
    health.history = history
    days = settings.ops.retention_days
    purge = partial(purge_history, history, images, days) if days else None
    service = OpsService(settings.ops, health, metrics, purge=purge)
    service.start()
    try:
        def watch(queue: EditQueue) -> None:
            metrics.watch_queue(queue)
            health.queue = queue

        engine = build_engine(settings, editor=editor, storage=(history, images), observer=metrics, on_queue=watch)
        metrics.watch_gpu()
        health.mark_model_ready()
        yield engine
    finally:
        service.stop()
