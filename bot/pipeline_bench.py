"""Benchmark of one whole edit as a chat sees it, phase by phase: `editbot bench --pipeline`.

A 1280x960 JPEG photo (with an EXIF orientation tag) and an instruction go through `ConversationEngine.handle`,
wired by bot/bootstrap.py as a bot wires it (SQLite and the image folder in a temporary folder, the in-process
queue). Phases are timed by wrappers around the editor's model parts, the image store and the history repository,
never inside the engine; what no wrapper sees (queue hand-offs, threads, captions, buttons) is "engine and queue".
The steps inside the engine that no wrapper sees are timed again alone on the same bytes: intake (decode, EXIF,
checks), the stored upload, the result's encodings (the node's lossless JPEG XL, the reply's JPEG preview; the PNG only
/file makes); then the reply as the Telegram and Discord adapters prepare it. The runner encodes a result's reply JPEG
on another thread while its own stores and records the node: that row ("beside the node") is timed but not taken
from engine and queue, since the edit does not wait for it. The shrinks made in the background (a new photo's once it
is stored, a result's for its next edit) are not timed: what an edit waits for one counts in engine and queue. Each phase
reports its median milliseconds per edit, wall and CPU (the CPU time of the thread that ran it: what the phase
costs whatever else the machine runs; the model's phases use more threads, and the glue rows span threads, so they
have no CPU figure), and its peak memory (process RSS on CPU, allocated memory on CUDA).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from core.benchstats import MachineLoad, peak_memory_mib, reset_peak_memory
from core.domain import ChatKey
from core.editing.bench import INSTRUCTION
from core.images import encode_png, load_untrusted
from core.messages import ImageReply, Incoming
from core.stored_images import encode_preview, encode_stored, stored_upload

NON_MODEL_BUDGET_MS = 30.0
"""What everything but the model may add to one edit (1280x960 photo, 512 working size)."""
MODEL_PHASES = ("text encoder", "image encoder", "denoising steps", "VAE decode", "safety checker")
HANDLE_IMAGE_PHASES = (
    ("core", "stored_upload", "in handle: store upload (strip metadata, check pixels)"),
    ("runner", "shrink_for", "in handle: shrink to working size"),
    ("runner", "full_size", "in handle: full-resolution transfer"),
    ("runner", "encode_stored", "in handle: encode node (lossless JPEG XL)"),
    ("core", "encode_preview", "in handle: encode reply (JPEG preview)"),
)
BESIDE_PHASES = (("runner", "encode_preview", "beside the node: encode reply (JPEG preview)"),)
"""Image work the runner hands to another thread while its own goes on: timed, but not taken from engine and queue."""
PHOTO_SIZE = (1280, 960)
FOLLOW_UP = "make it brighter"
FOLLOW_UP_PAUSE_S = 0.5
"""Between a result and the next instruction: a person reads the result (work left for later may finish)."""
DISCORD_UPLOAD_LIMIT = 10 * 2**20


class PhaseClock:
    """Milliseconds and peak memory per named phase, summed over the calls within one edit."""

    def __init__(self, device) -> None:
        self.device = device
        # Per kind of edit ("photo": a new photo with its instruction; "follow-up": an instruction on the result).
        self.edits: dict[str, list[dict[str, float]]] = defaultdict(list)
        self.cpu_edits: dict[str, list[dict[str, float]]] = defaultdict(list)
        self._kind = "photo"
        self.peak_mib: dict[str, float] = defaultdict(float)
        # Phases run on several threads at once (a reply reads its picture and its database rows together): each
        # thread has its own open phases, [name, peak MiB] outermost first, and the sums are added under a lock.
        self._threads = threading.local()
        self._lock = threading.Lock()
        self.recording = False

    @property
    def _open(self) -> list[list]:
        if not hasattr(self._threads, "open"):
            self._threads.open = []
        return self._threads.open

    def new_edit(self, kind: str) -> None:
        self._kind = kind
        self.edits[kind].append(defaultdict(float))
        self.cpu_edits[kind].append(defaultdict(float))
        self.recording = True

    @contextmanager
    def phase(self, name: str):
        # Calls between edits (e.g. the /steps command) count nowhere; a call within a phase of its own name (a
        # repository method calling another) is already counted.
        if not self.recording or any(entry[0] == name for entry in self._open):
            yield
            return
        # The peak-memory counter is process-wide: before resetting it for a nested phase, its reading so far
        # goes to every enclosing phase; on leaving, the reading goes to this phase and all enclosing ones.
        if self._open:
            self._fold(peak_memory_mib(self.device))
        reset_peak_memory(self.device)
        entry = [name, 0.0]
        self._open.append(entry)
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = (time.perf_counter() - started) * 1000, (time.thread_time() - cpu_started) * 1000
            self._fold(peak_memory_mib(self.device))
            self._open.remove(entry)
            with self._lock:
                self.edits[self._kind][-1][name] += wall
                self.cpu_edits[self._kind][-1][name] += cpu
                self.peak_mib[name] = max(self.peak_mib[name], entry[1])

    def _fold(self, reading: float) -> None:
        for entry in self._open:
            entry[1] = max(entry[1], reading)

    def wrap(self, owner, method: str, name: str) -> None:
        """Time every call of `owner.method` (an instance attribute shadows the class's method)."""
        original = getattr(owner, method)

        def timed(*args, **kwargs):
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, method, timed)

    def hook_module(self, module, name: str) -> None:
        """Time every forward pass of a torch module."""
        contexts = []

        def enter(*_) -> None:
            contexts.append(self.phase(name))
            contexts[-1].__enter__()

        def leave(*_) -> None:  # returns None: a forward hook's return value would replace the module's output
            contexts.pop().__exit__(None, None, None)

        module.register_forward_pre_hook(enter)
        module.register_forward_hook(leave)


def instrument(clock: PhaseClock, editor, history, images) -> Callable[[], None]:
    """Wrap the model parts the editor calls, the image store, every repository method and the engine's image work;
    returns what puts the engine's modules back as they were (the rest are this bench's own objects)."""
    pipeline = editor.pipeline
    clock.hook_module(pipeline.text_encoder, "text encoder")
    clock.wrap(pipeline.vae, "encode", "image encoder")
    clock.hook_module(pipeline.unet, "denoising steps")
    clock.wrap(pipeline.vae, "decode", "VAE decode")
    clock.wrap(pipeline, "run_safety_checker", "safety checker")
    clock.wrap(editor, "edit", "editor, all")
    clock.wrap(images, "put", "image store write + fsync")
    clock.wrap(images, "get", "image store read")
    for method in dir(history):  # every repository call, whatever the engine asks
        if not method.startswith("_") and callable(getattr(history, method)):
            clock.wrap(history, method, "database")
    # The image work inside the engine, where it is looked up (module globals of the runner and the core).
    import core.conversation.edits as core_module
    import core.runner as runner_module

    modules = {"runner": runner_module, "core": core_module}
    originals = [(modules[module], function, getattr(modules[module], function))
                 for module, function, _ in HANDLE_IMAGE_PHASES + BESIDE_PHASES]
    for module, function, name in HANDLE_IMAGE_PHASES + BESIDE_PHASES:
        clock.wrap(modules[module], function, name)

    def restore() -> None:
        for module, function, original in originals:
            setattr(module, function, original)

    return restore


def sample_photo_jpeg(size: tuple[int, int] = PHOTO_SIZE, seed: int = 0) -> bytes:
    """A photo-like JPEG as a phone sends it: smooth colours, some noise (drawn from `seed`), an EXIF orientation
    tag."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin(x * y / (width * height) * 12)], axis=-1)
    rgb += np.random.default_rng(seed).normal(0, 0.03, rgb.shape)
    image = Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 1  # orientation: upright (intake still reads and applies it)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def person_side(clock: PhaseClock, photo: bytes, reply: ImageReply, intake_limits: dict) -> None:
    """The steps around the engine, on the same bytes: intake and the stored upload (both inside handle too), the
    result's encodings (the node's lossless JPEG XL and the reply's JPEG inside handle; the /file PNG outside it), and
    each platform's reply as its adapter prepares it."""
    from bot.discord_replies import fit_upload
    from bot.telegram_photos import photo_for

    with clock.phase("intake (decode, EXIF, checks)"):
        intake = load_untrusted(photo, **intake_limits)
    with clock.phase("store upload (strip metadata, check pixels)"):
        stored_upload(photo, intake)
    with Image.open(io.BytesIO(reply.image)) as opened:
        result = opened.convert("RGB")
    for name, encode in (("encode node (lossless JPEG XL)", encode_stored),
                         ("encode reply (JPEG preview)", encode_preview),
                         ("encode PNG (/file only)", encode_png)):
        with clock.phase(name):
            encode(result)
    with clock.phase("reply encode, Telegram"):
        photo_for(reply.image)
    with clock.phase("reply encode, Discord"):
        fit_upload(reply.image, DISCORD_UPLOAD_LIMIT)


async def _one_edit(engine, engine_editor, clock: PhaseClock, photo: bytes, key: ChatKey, intake_limits: dict) -> None:
    """A new photo with its instruction, then (after a pause, as a person reads the result) an instruction on the
    result: the two kinds of edit a conversation is made of."""
    engine_editor.clear_caches()  # a new photo and instruction: nothing cached, as for a new person
    clock.new_edit("photo")
    result = await _timed_handle(engine, clock, Incoming(key, text=INSTRUCTION, image=photo))
    person_side(clock, photo, result, intake_limits)
    clock.recording = False
    await asyncio.sleep(FOLLOW_UP_PAUSE_S)
    clock.new_edit("follow-up")
    await _timed_handle(engine, clock, Incoming(key, text=FOLLOW_UP))
    clock.recording = False


async def _timed_handle(engine, clock: PhaseClock, incoming: Incoming) -> ImageReply:
    replies: list = []

    async def send(reply) -> None:
        replies.append(reply)

    with clock.phase("whole edit (handle)"):
        await engine.handle(incoming, send)
    results = [reply for reply in replies if isinstance(reply, ImageReply)]
    if not results:
        raise RuntimeError(f"the engine sent no result: {replies}")
    return results[-1]


def run_pipeline_benchmark(*, model: str = "full-random", device: str = "auto", size: int = 512,
                           steps: int | None = None, edits: int = 3, as_json: bool = False) -> dict:
    """Time `edits` edits (after one warm-up) through the engine and print each phase's median ms and peak memory."""
    from bot.bootstrap import build_editor, build_engine, build_storage
    from core.config import Settings
    from core.editing.sources import resolve_device

    torch_device = resolve_device(device)
    steps = steps or (20 if torch_device.type == "cuda" else 4)
    with tempfile.TemporaryDirectory(prefix="editbot-pipeline-bench-") as folder:
        settings = Settings()
        settings.editor.model, settings.editor.device, settings.editor.max_side = model, str(torch_device), size
        settings.storage.data_dir, settings.storage.database_url = Path(folder), None
        settings.distributed.mode, settings.distributed.image_store = "embedded", "local"
        editor, (history, images) = build_editor(settings), build_storage(settings)
        clock = PhaseClock(torch_device)
        restore = instrument(clock, editor, history, images)
        engine = build_engine(settings, editor=editor, storage=(history, images))

        async def drive() -> None:
            await engine.start()
            for number in range(edits + 1):  # the first edit is a warm-up
                key = ChatKey("bench", "chat", str(number))
                await engine.handle(Incoming(key, text=f"/steps {steps}"), _ignore)  # the default is 20
                # Each edit's photo is new, as a new person's is: not yet in the image store or any cache.
                photo = sample_photo_jpeg(seed=number)
                await _one_edit(engine, editor, clock, photo, key, settings.limits.intake)
            await engine.close()

        try:
            with MachineLoad() as load:
                asyncio.run(drive())
        finally:
            restore()
    figures = _figures(clock, torch_device, model, size, steps, load)
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        _print(figures)
    return figures


async def _ignore(reply) -> None:
    pass


def _derived(edit: dict[str, float]) -> dict[str, float]:
    """One edit's phases with what no wrapper saw (editor and engine glue), the model's total and everything else's:
    subtracted within the edit, so a model slowed by other work does not leak into the other figures."""
    phases = dict(edit)
    model = sum(phases.get(name, 0.0) for name in MODEL_PHASES)
    phases["editor glue (scheduler, array to image, resize)"] = phases.get("editor, all", 0.0) - model
    phases["engine and queue (intake, threads, captions)"] = phases["whole edit (handle)"] - phases.get(
        "editor, all", 0.0) - sum(phases.get(name, 0.0) for name in (
            "image store write + fsync", "image store read", "database", *(name for _, _, name in HANDLE_IMAGE_PHASES)))
    # intake runs inside handle (timed again alone above); the reply encodes run in the adapters, after it
    phases["model"] = model
    phases["everything else"] = (phases["whole edit (handle)"] - model + phases.get("reply encode, Telegram", 0.0)
                                 + phases.get("reply encode, Discord", 0.0))
    return phases


def _medians(edits: list[dict[str, float]]) -> dict[str, float]:
    names = list(dict.fromkeys(name for edit in edits for name in edit))
    return {name: round(statistics.median(edit.get(name, 0.0) for edit in edits), 2) for name in names}


def _kind_figures(clock: PhaseClock, kind: str) -> dict:
    phases = _medians([_derived(edit) for edit in clock.edits[kind][1:]])  # the first edit is a warm-up
    model_ms, non_model = phases.pop("model"), phases.pop("everything else")
    cpu_phases = {name: ms for name, ms in _medians(clock.cpu_edits[kind][1:]).items()
                  if name not in MODEL_PHASES and name not in ("editor, all", "whole edit (handle)")}
    return {"phases_ms": phases, "phases_cpu_ms": cpu_phases, "model_ms": model_ms, "non_model_ms": non_model}


def _figures(clock: PhaseClock, device, model, size, steps, load) -> dict:
    return {
        "device": str(device), "model": model, "photo": list(PHOTO_SIZE), "working_size": size, "steps": steps,
        "edits": len(clock.edits["photo"]) - 1, "machine": load.figures(), **_kind_figures(clock, "photo"),
        "follow_up": {"instruction": FOLLOW_UP, **_kind_figures(clock, "follow-up")},
        "peak_memory_mib": {name: round(value) for name, value in clock.peak_mib.items()},
        "non_model_budget_ms": NON_MODEL_BUDGET_MS,
    }


def _print(figures: dict) -> None:
    print(f"device {figures['device']} · {figures['model']} · photo {figures['photo'][0]}x{figures['photo'][1]} · "
          f"working size {figures['working_size']} · {figures['steps']} steps · median of {figures['edits']} edits")
    for title, kind in (("a new photo with its instruction", figures),
                        (f"then “{figures['follow_up']['instruction']}” on the result", figures["follow_up"])):
        print(f"\n{title}\n{'phase':<50}{'ms':>10}{'CPU ms':>10}{'peak MiB':>10}")
        for name, ms in kind["phases_ms"].items():
            cpu = kind["phases_cpu_ms"].get(name)
            print(f"{name:<50}{ms:>10.1f}{'' if cpu is None else f'{cpu:.1f}':>10}"
                  f"{figures['peak_memory_mib'].get(name, ''):>10}")
        print(f"model {kind['model_ms']:.1f} ms; everything else {kind['non_model_ms']:.1f} ms "
              f"(budget {figures['non_model_budget_ms']:g} ms: handle less the model, plus the reply encodes)")
    if figures["machine"]["warning"]:
        print(figures["machine"]["warning"], file=sys.stderr)


def run_from_args(args: argparse.Namespace) -> dict:
    return run_pipeline_benchmark(model=args.model or "full-random", device=args.device, size=args.size or 512,
                                  steps=args.steps, edits=args.repeats, as_json=args.json)
