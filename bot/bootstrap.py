"""The one place that wires settings to parts: editor, storage, queue, engine. Adapters and the CLI start here."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial

from PIL import Image

from core.config import Settings
from core.conversation.admin import AdminCommands
from core.conversation.engine import ConversationEngine
from core.editing.families import family_named
from core.editing.registry import ModelRegistry, ModelSpec
from core.errors import ModelUnavailable, UserError
from core.metrics import EditObserver
from core.ports import Editor, HistoryRepository, ImageStore, JobQueue, Segmenter, Translator
from core.queue import EditQueue
from core.reply_previews import reply_previews
from core.runner import EditRunner

log = logging.getLogger(__name__)


def build_editor(settings: Settings, spec: ModelSpec | None = None) -> Editor:
    """Load a model (this is the slow part of start-up) and wrap it in our editor: `spec`, one of the enabled models
    (EDITBOT_MODELS), or the default one."""
    spec = spec or settings.editor.model_specs[0]
    if spec.family != "pix2pix":
        return _build_family_editor(settings, spec)
    from core.editing.pix2pix import Pix2PixEditor
    from core.editing.sources import load_pipeline

    options = settings.editor
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    log.info("loading model %s", spec.source)
    pipeline = load_pipeline(
        spec.source,
        device=options.device,
        dtype=options.dtype,
        offline=options.offline,
        safety_checker=options.safety_checker,
        config=options.single_file_config,
    )
    return Pix2PixEditor(
        pipeline,
        max_side=options.max_side,
        keep_original_size=options.keep_original_size,
        scheduler=options.scheduler,
        fast=options.fast,
        safety_checker=options.safety_checker,
        compile=options.compile,
    )


def _build_family_editor(settings: Settings, spec: ModelSpec) -> Editor:
    """The editor of a model of the newer families (core.editing.loading), with the memory options set."""
    from core.editing.loading import MemoryOptions, load_family_pipeline
    from core.editing.loading import build_editor as build_family_editor

    options = settings.editor
    log.info("loading model %s (%s from %s)", spec.name, spec.family, spec.source)
    pipeline = load_family_pipeline(
        spec.family, spec.source, device=options.device, dtype=options.dtype, offline=options.offline,
        safety_checker=options.safety_checker, config=options.single_file_config,
        memory=MemoryOptions(cpu_offload=options.cpu_offload, vae_tiling=options.vae_tiling),
    )
    return build_family_editor(spec.family, pipeline, keep_original_size=options.keep_original_size)


def build_models(settings: Settings, editor: Editor | None = None, *, here: bool = True) -> ModelRegistry:
    """The enabled models (EDITBOT_MODELS; unset: the one of EDITBOT_MODEL), loaded lazily, EDITBOT_MODELS_LOADED
    of them kept at once. `editor`: serves every model (tests, demos). here=False: a catalogue only, for a
    distributed front-end whose workers run the models."""
    specs = settings.editor.model_specs
    if not here:
        load = None
    elif editor is not None:
        def load(spec: ModelSpec) -> Editor:  # one editor stands for every model
            return editor
    else:
        load = partial(build_editor, settings)
    return ModelRegistry(specs, load, keep_loaded=settings.editor.models_loaded)


def build_translator(settings: Settings) -> Translator | None:
    """The translator of instructions in other languages, or None (EDITBOT_TRANSLATION_MODEL=none). Nothing loads
    here: the model loads on the first instruction that needs it.

    In distributed mode this runs on the front-end, not the workers: an instruction is held back or shown in
    English before it is queued, the job row carries the English so a redelivered job never translates again
    (differently), and the workers' GPU memory stays the editor's."""
    from core.editing.sources import resolve_device
    from core.translation import NO_TRANSLATION, TransformersTranslator

    options = settings.translation
    model = _with_the_tiny_editor(options, "translation_model", settings)
    if model.strip().lower() == NO_TRANSLATION:
        return None
    device = "cpu"
    if options.translation_device == "editor":
        try:
            device = str(resolve_device(settings.editor.device))
        except ModelUnavailable:  # e.g. a distributed front-end without the workers' GPU
            log.warning("EDITBOT_DEVICE=%s is not available here: translating on the CPU", settings.editor.device)
    return TransformersTranslator(model, device=device,
                                  idle_seconds=options.translation_idle_seconds, offline=settings.editor.offline,
                                  int8=options.translation_int8)


def build_segmenter(settings: Settings) -> Segmenter:
    """The segmentation model (CLIPSeg) that finds regions named in words; it loads on its first use, so a bot whose
    people never name a region never loads it. One is shared by the engine (/mask, checks) and the runner."""
    from core.editing.lazy_segmentation import LazySegmenter

    options = settings.editor
    model = _with_the_tiny_editor(options, "segmentation_model", settings)
    return LazySegmenter(model, device=options.device, offline=options.offline)


def _with_the_tiny_editor(options, field: str, settings: Settings) -> str:
    """A feature's model: the built-in tiny one too when the editor is the tiny model and the feature's model was not
    set, so the set-up README offers for trying the bot without a download runs every feature (regions,
    translation) without one, instead of each waiting for a hub it cannot reach."""
    if settings.editor.model.strip().lower() == "tiny" and field not in options.model_fields_set:
        return "tiny"
    return getattr(options, field)


def build_storage(settings: Settings) -> tuple[HistoryRepository, ImageStore]:
    """Open the database (migrating it to the latest schema) and the image folder."""
    from storage.database import make_engine
    from storage.migrate import upgrade
    from storage.repository import SqlHistoryRepository

    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.storage.url)
    return SqlHistoryRepository(make_engine(settings.storage.url)), build_image_store(settings)


def build_image_store(settings: Settings) -> ImageStore:
    """The image folder under DATA_DIR (a shared folder when workers run elsewhere), or an S3 bucket."""
    options = settings.distributed
    if options.image_store == "local":
        from storage.blobs import FileImageStore

        return FileImageStore(settings.storage.image_dir)
    try:
        import boto3
    except ImportError:
        raise UserError("EDITBOT_IMAGE_STORE=s3 needs boto3: pip install 'editbot[distributed]'.") from None
    from botocore.config import Config

    from storage.s3 import S3ImageStore

    # Few retries inside boto3, and a short connect timeout (boto3's is 60 s a try): a longer outage soon reaches the
    # worker's and the front-end's own retries, which tell the people waiting (storage.s3, core.storage_wait).
    client = boto3.client("s3", endpoint_url=options.s3_endpoint_url, region_name=options.s3_region,
                          aws_access_key_id=options.s3_access_key, aws_secret_access_key=options.s3_secret_key,
                          config=Config(connect_timeout=5, retries={"mode": "standard", "max_attempts": 3}))
    store = S3ImageStore(client, options.s3_bucket)
    store.ensure_bucket()
    return store


def build_distributed_queue(settings: Settings, history: HistoryRepository, frontend: str,
                            observer: EditObserver | None = None) -> JobQueue:
    """The queue of a front-end in distributed mode: jobs to `editbot worker` processes through Redis; `observer`
    hears how each of this front-end's jobs ended (metrics), as with the in-process queue."""
    try:
        from redis.asyncio import Redis

        from bot.distributed.broker import make_broker
        from bot.distributed.frontend import DistributedQueue
    except ImportError:
        raise UserError("EDITBOT_MODE=distributed needs taskiq-redis: pip install 'editbot[distributed]'.") from None
    from bot.distributed.identity import default_frontend_id
    from bot.distributed.jobs import SqlJobRepository
    from storage.database import make_engine

    options, limits = settings.distributed, settings.limits
    models = [spec.name for spec in settings.editor.model_specs]
    return DistributedQueue(
        make_broker(options.redis_url, options.queue_name, redeliver_seconds=options.redeliver_seconds,
                    models=models),
        Redis.from_url(options.redis_url),
        SqlJobRepository(make_engine(settings.storage.url)),
        history,
        frontend=options.frontend_id or default_frontend_id(frontend, settings.storage.data_dir),
        exact_frontend=options.frontend_id is not None,
        queue_name=options.queue_name,
        max_waiting_per_person=limits.max_waiting_per_person,
        max_waiting_total=limits.max_waiting_total,
        observer=observer,
        default_model=models[0],
    )


def warm_up(editor: Editor, family: str = "pix2pix") -> None:
    """One tiny edit right after loading, so lazy initialisation (CUDA context, kernels, allocator) happens now and
    not during the first person's edit."""
    params = replace(family_named(family).defaults(), steps=2, seed=0)
    try:
        editor.edit(Image.new("RGB", (64, 64), (128, 128, 128)), "warm up", params)
    except UserError as error:  # e.g. the safety checker flagging noise: the model is loaded all the same
        log.warning("warm-up edit refused: %s", error)


def build_engine(
    settings: Settings,
    *,
    editor: Editor | None = None,
    storage: tuple[HistoryRepository, ImageStore] | None = None,
    observer: EditObserver | None = None,
    on_queue: Callable[[JobQueue], None] | None = None,
    frontend: str = "editbot",
    segmenter: Segmenter | None = None,
    jpeg_previews: bool = True,
) -> ConversationEngine:
    """Everything the adapters need. Pass `editor` to skip loading the model (tests, demos), `storage` to reuse an
    open one, `observer` to watch the edits and `on_queue` to be handed the queue (health, metrics). A model loaded
    here gets its warm-up edit. In distributed mode no model loads here (workers run it) and `frontend` (with the
    host and an id kept in the data folder) names this process in the job table (EDITBOT_FRONTEND_ID overrides it).
    Pass `segmenter` to skip EDITBOT_SEGMENTATION_MODEL (tests). jpeg_previews: results shown as JPEGs (chats; the
    terminal chat, which writes files, passes False for lossless PNGs)."""
    history, images = storage or build_storage(settings)
    segmenter = segmenter or build_segmenter(settings)
    limits = settings.limits
    if settings.distributed.mode == "distributed":
        models = build_models(settings, here=False)
        queue = build_distributed_queue(settings, history, frontend, observer)
    else:
        models = build_models(settings, editor)
        if editor is None:  # the default model loads now, as it always has; the others on their first edit
            default = models.editor()
            if settings.ops.warmup:
                warm_up(default, models.family(models.default).name)
        queue = EditQueue(
            EditRunner(None, history, images, output=settings.editor.output, segmenter=segmenter, models=models,
                       previews=reply_previews if jpeg_previews else None),
            max_waiting_per_person=limits.max_waiting_per_person,
            max_waiting_total=limits.max_waiting_total,
            observer=observer,
            shutdown_grace_seconds=settings.ops.shutdown_grace_seconds,
        )
    if on_queue is not None:
        on_queue(queue)
    admin = AdminCommands(queue, history, settings.ops.admin_ids)
    return ConversationEngine(history, images, queue, intake_limits=limits.intake, command_groups=[admin],
                              model=models.spec(models.default).source, models=models,
                              defaults=models.family(models.default).defaults(),
                              translator=build_translator(settings),
                              max_waiting_per_person=limits.max_waiting_per_person,
                              max_stored_bytes_per_person=limits.max_stored_mb_per_person * 1_000_000,
                              segmenter=segmenter, jpeg_previews=jpeg_previews)


@contextmanager
def bot_service(settings: Settings, *, editor: Editor | None = None, frontend: str = "editbot",
                storage: tuple[HistoryRepository, ImageStore] | None = None) -> Iterator[ConversationEngine]:
    """A bot's engine with operations around it, for as long as the block runs. The health and metrics endpoint
    starts before the model loads (answering "not ready" until the warm-up is done); the retention purge runs
    daily when EDITBOT_RETENTION_DAYS is set. Pass `storage` to share an open one (the web chat reads it)."""
    from bot.ops import OpsService, purge_history
    from bot.ops_http import EditMetrics, Health

    history, images = storage or build_storage(settings)
    health, metrics = Health(), EditMetrics()
    health.history = history
    days = settings.ops.retention_days
    purge = partial(purge_history, history, images, days) if days else None
    service = OpsService(settings.ops, health, metrics, purge=purge)
    service.start()
    try:
        def watch(queue: JobQueue) -> None:
            metrics.watch_queue(queue)
            health.queue = queue

        engine = build_engine(settings, editor=editor, storage=(history, images), observer=metrics, on_queue=watch,
                              frontend=frontend)
        metrics.watch_gpu()
        health.mark_model_ready()
        yield engine
    finally:
        service.stop()
