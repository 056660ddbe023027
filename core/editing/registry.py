"""The models an operator enabled (EDITBOT_MODELS) and the few of them kept in memory.

    EDITBOT_MODELS="ip2p=timbrooks/instruct-pix2pix, klein=flux2-klein:black-forest-labs/FLUX.2-klein-4B"

Comma-separated name=source pairs, the first is the default. A source may say its family (`family:source`);
otherwise the family is inferred: a family's default weights, a local diffusers folder's model_index.json, a hub id
naming its family (e.g. ...-Kontext-..., ...klein..., Qwen-Image-Edit..., sdxl-instructpix2pix...), or `tiny`
(pix2pix). Anything else must say its family.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.editing.families import FAMILIES, family_named, installed
from core.errors import BadParams

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_HUB_HINTS = (  # (pattern in a hub id, family), most specific first
    (re.compile(r"kontext", re.I), "kontext"),
    (re.compile(r"flux\.?2.*klein", re.I), "flux2-klein"),
    (re.compile(r"qwen-image-edit", re.I), "qwen-edit"),
    (re.compile(r"sdxl.*pix2pix|pix2pix.*xl", re.I), "pix2pix-xl"),
    (re.compile(r"pix2pix|magicbrush", re.I), "pix2pix"),
)


@dataclass(frozen=True)
class ModelSpec:
    """One enabled model: the name people choose it by, its family and where its weights come from."""

    name: str
    family: str
    source: str


def parse_models(text: str) -> list[ModelSpec]:
    """EDITBOT_MODELS as a list of specs, the default first. Raises ValueError with one line naming the bad part."""
    specs: list[ModelSpec] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, equals, source = (item.strip() for item in part.partition("="))
        if not equals or not source:
            raise ValueError(f"{part!r} is not name=source (e.g. klein=flux2-klein:black-forest-labs/FLUX.2-klein-4B)")
        if not _NAME.match(name):
            raise ValueError(f"model name {name!r} must be 1-32 lowercase letters, digits, '.', '_' or '-'")
        if any(spec.name == name for spec in specs):
            raise ValueError(f"model name {name!r} is given twice")
        family, source = _family_and_source(source)
        if not installed(FAMILIES[family]):
            raise ValueError(
                f"{name}: the installed diffusers has no {FAMILIES[family].pipeline} ({family}); upgrade diffusers"
            )
        specs.append(ModelSpec(name, family, source))
    if not specs:
        raise ValueError("list at least one model as name=source")
    return specs


def _family_and_source(source: str) -> tuple[str, str]:
    prefix, colon, rest = source.partition(":")
    if colon and prefix in FAMILIES:
        return prefix, rest.strip()
    if colon and re.fullmatch(r"[a-z0-9-]+", prefix) and not Path(source).exists():
        raise ValueError(f"unknown model family {prefix!r}; known families: {', '.join(FAMILIES)}")
    family = infer_family(source)
    if family is None:
        raise ValueError(f"cannot tell the family of {source!r}; write it as family:source ({', '.join(FAMILIES)})")
    return family, source


def infer_family(source: str) -> str | None:
    """The family a source belongs to, when it can be told without loading it; None otherwise."""
    if source == "tiny":
        return "pix2pix"
    for family in FAMILIES.values():
        if source == family.default_source:
            return family.name
    index = Path(source).expanduser() / "model_index.json"
    if index.is_file():
        try:
            class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        except (OSError, ValueError, AttributeError):
            return None
        return next((f.name for f in FAMILIES.values() if f.pipeline == class_name), None)
    for pattern, family in _HUB_HINTS:
        if pattern.search(source):
            return family
    return None


class ModelRegistry:
    """The enabled models, loaded lazily, at most `keep_loaded` at once (the least recently used is dropped).

    load: builds the editor of a spec (core.editing.loading.load_family_pipeline + build_editor in the bot);
    thread-safe, so the engine's worker threads may ask for editors concurrently (loads happen one at a time).
    None: a catalogue only (a distributed front-end, whose workers load the models): `editor` is never asked.
    """

    def __init__(self, specs: list[ModelSpec], load: Callable[[ModelSpec], object] | None,
                 keep_loaded: int = 1) -> None:
        if not specs:
            raise BadParams("Enable at least one model.")
        if keep_loaded < 1:
            raise BadParams("At least one model must stay loaded.")
        self.specs = {spec.name: spec for spec in specs}
        self.default = specs[0].name
        self.keep_loaded = keep_loaded
        self._load = load
        self._loaded: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The enabled models' names, the default first (what /model lists)."""
        return list(self.specs)

    def spec(self, name: str) -> ModelSpec:
        spec = self.specs.get(name)
        if spec is None:
            raise BadParams(f"There is no model called {name!r}; choose one of: {', '.join(self.specs)}.")
        return spec

    def family(self, name: str):
        """The family (core.editing.families.Family) of an enabled model."""
        return family_named(self.spec(name).family)

    @property
    def loads_here(self) -> bool:
        """Whether this process runs the models (False: a catalogue, the workers load them)."""
        return self._load is not None

    def is_loaded(self, name: str) -> bool:
        """Whether switching to this model is quick (False: the first edit will wait for it to load). Without the
        lock, which a load holds for minutes: the chat asks this on its event loop, and one membership test is
        atomic."""
        return name in self._loaded

    def loaded_editor(self, name: str | None = None):
        """The editor of model `name` (default: the default model) if it is loaded, else None: never loads, and
        without the lock (see is_loaded), so the event loop may ask."""
        return self._loaded.get(self.spec(name or self.default).name)

    def loaded(self) -> list[str]:
        """Loaded models, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def editor(self, name: str | None = None):
        """The editor of model `name` (default: the default model), loading it first if needed and dropping the
        least recently used ones beyond keep_loaded first (to free their memory for it). Raises BadParams for an
        unknown name; loading errors (core.errors.ModelUnavailable) pass through, and the model is tried again
        on the next call."""
        spec = self.spec(name or self.default)
        with self._lock:
            editor = self._loaded.get(spec.name)
            if editor is not None:
                self._loaded.move_to_end(spec.name)
                return editor
            while len(self._loaded) >= self.keep_loaded:  # free memory before loading the next one
                dropped, _ = self._loaded.popitem(last=False)
                logger.info("Unloading model %s to make room for %s", dropped, spec.name)
                _free_memory()
            logger.info("Loading model %s (%s from %s)", spec.name, spec.family, spec.source)
            editor = self._load(spec)
            self._loaded[spec.name] = editor
            return editor


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass
