"""The one place that wires settings to parts: editor, storage, queue, engine. Adapters and the CLI start here."""

from __future__ import annotations

import logging

from core.config import Settings
from core.engine import ConversationEngine
from core.jobs import EditRunner
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


def build_engine(settings: Settings, *, editor: Editor | None = None) -> ConversationEngine:
    """Everything the adapters need. Pass `editor` to skip loading the model (tests, demos)."""
    history, images = build_storage(settings)
    limits = settings.limits
    queue = EditQueue(
        EditRunner(editor or build_editor(settings), history, images),
        max_waiting_per_person=limits.max_waiting_per_person,
        max_waiting_total=limits.max_waiting_total,
    )
    intake = {"max_pixels": limits.max_pixels, "min_side": limits.min_side, "max_aspect": limits.max_aspect}
    return ConversationEngine(history, images, queue, intake_limits=intake)
