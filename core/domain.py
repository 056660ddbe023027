"""The vocabulary of the product: who is talking, what an edit asks for, and the nodes of the edit tree.

Plain frozen dataclasses: no chat library, no database, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

from core.errors import BadParams

# Ranges a person may choose. Wide enough to experiment, narrow enough to stay meaningful.
TEXT_GUIDANCE_RANGE = (1.0, 20.0)
IMAGE_GUIDANCE_RANGE = (0.0, 5.0)
STEPS_RANGE = (1, 100)
SEED_RANGE = (0, 2**32 - 1)
SCHEDULERS = ("default", "euler-a", "ddim", "dpm++")
DEFAULT_MODEL = "timbrooks/instruct-pix2pix"
"""The model editbot loads when none is named (EDITBOT_MODEL); captions name a model only when it is another one."""


def readable_number(value: float) -> str:
    """A number as people read it in a reply: 4294967295 and 1.5, never 4.29497e+09."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class ChatKey:
    """One person in one chat: in a group each person has their own conversation."""

    platform: str
    chat_id: str
    user_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.chat_id}:{self.user_id}"

    @property
    def person(self) -> str:
        """The person across their chats on one platform, "platform:user_id": for fairness, usage and admin lists."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class EditParams:
    """How to run one edit.

    text_guidance: how strongly to follow the instruction (default 7.5).
    image_guidance: how much of the photo to keep (default 1.5). Values below 1 are honoured as asked: unlike
        the stock diffusers pipeline we never silently switch guidance off.
    steps: denoising steps (default 20).
    seed: the random seed; None means "pick one", and the editor reports the one it picked.
    scheduler: "default" (the model's own), "euler-a", "ddim" or "dpm++".
    family: the editing model family these params are for (core.editing.families; default "pix2pix", whose
        parameters are exactly the fields above).
    extras: values of parameters only some families declare (e.g. Qwen's true_cfg_scale and negative prompt), as
        sorted (name, value) pairs; empty for pix2pix. Lists (e.g. read back from JSON) become tuples.
    model: the name of the enabled model (EDITBOT_MODELS) that runs the edit; "" means the operator's default. It
        routes a distributed job to a worker serving that model and lets /retry repeat the same weights.
    """

    text_guidance: float = 7.5
    image_guidance: float = 1.5
    steps: int = 20
    seed: int | None = None
    scheduler: str = "default"
    family: str = "pix2pix"
    extras: tuple[tuple[str, float | int | str], ...] = ()
    model: str = ""

    def __post_init__(self) -> None:
        pairs = self.extras.items() if isinstance(self.extras, dict) else self.extras
        object.__setattr__(self, "extras", tuple(sorted((str(name), value) for name, value in pairs)))

    def extra(self, name: str, default=None):
        """The value of a family-specific parameter, or default when these params do not carry it."""
        return dict(self.extras).get(name, default)

    def with_extra(self, name: str, value) -> EditParams:
        return replace(self, extras={**dict(self.extras), name: value})

    def validated(self) -> EditParams:
        """Return self if every value is allowed, else raise BadParams with one line saying what is allowed."""
        _check_float("text guidance", self.text_guidance, TEXT_GUIDANCE_RANGE)
        _check_float("image guidance", self.image_guidance, IMAGE_GUIDANCE_RANGE)
        lo, hi = STEPS_RANGE
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not lo <= self.steps <= hi:
            raise BadParams(f"Steps must be a whole number from {lo} to {hi}.")
        if self.seed is not None:
            lo, hi = SEED_RANGE
            if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not lo <= self.seed <= hi:
                raise BadParams(f"Seed must be a whole number from {lo} to {hi}, or 'random'.")
        if self.scheduler not in SCHEDULERS:
            raise BadParams(f"Scheduler must be one of: {', '.join(SCHEDULERS)}.")
        return self

    def with_seed(self, seed: int) -> EditParams:
        return replace(self, seed=seed)

    def describe(self) -> str:
        """The line every result carries: what was done, so a person can reproduce or tune it."""
        seed = "random" if self.seed is None else str(self.seed)
        parts = [f"text guidance {self.text_guidance:g}", f"image guidance {self.image_guidance:g}",
                 f"{self.steps} step{'s' if self.steps != 1 else ''}", f"seed {seed}"]
        if self.scheduler != "default":
            parts.append(f"scheduler {self.scheduler}")
        if self.family != "pix2pix":
            parts.append(f"family {self.family}")
        return " · ".join(parts)


def _check_float(name: str, value: float, bounds: tuple[float, float]) -> None:
    lo, hi = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
        raise BadParams(f"{name.capitalize()} must be a number from {readable_number(lo)} to {readable_number(hi)}.")


@dataclass(frozen=True)
class Region:
    """Part of the picture a person named: `words` ("the sky"); inverse: everything except them (/except).
    core.regions turns it into a mask and composites an edit inside it."""

    words: str
    inverse: bool = False

    def describe(self) -> str:
        return f"everything except {self.words}" if self.inverse else f"only {self.words}"


@dataclass(frozen=True)
class Conversation:
    """A person's conversation: where they are in their tree (head) and their edit settings.

    settings.seed None means a fresh random seed per edit; a number pins it. settings.model and settings.family:
    the enabled model the next edit runs on (/model), settings.extras its family's own values.
    region: the part of the picture instructions edit (/only, /except); None for the whole picture.
    references: image digests of the reference pictures (/ref) waiting for the next edit, in order ("picture 2",
    "picture 3"...); the next model edit takes them and clears them.
    """

    id: int
    key: ChatKey
    head_id: int | None
    settings: EditParams
    region: Region | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Translation:
    """The words a person typed, when the model got an English translation of them, and their language."""

    original: str
    language: str


@dataclass(frozen=True)
class NewNode:
    """What HistoryRepository.add_node records: a photo someone sent (no parent, no instruction), an exact edit
    (instruction, no params) or a model edit (instruction, the params and seed used, the seconds it took).

    make_head=False records a candidate (a sweep cell, a variation): not visited until someone adopts it.
    translation: the person's own words, when `instruction` (what the model was given) is their English.
    region: the region a model edit was confined to; None for a whole-picture edit.
    """

    conversation_id: int
    parent_id: int | None
    image_hash: str
    instruction: str | None = None
    params: EditParams | None = None
    seconds: float | None = None
    make_head: bool = True
    translation: Translation | None = None
    stored_bytes: int = 0
    """What its picture takes in the image store, as stored: counted against the person's storage."""
    region: Region | None = None
    source: str | None = None
    """Where the weights that made a model edit came from (the enabled model's source); None when not known."""
    inputs: tuple[str, ...] = ()
    """Image digests of the reference pictures a model edit was given besides its parent ("picture 2"...)."""


class Rendered(NamedTuple):
    """One stored result of an edit job, not yet recorded: its picture's digest and size, the params used, the time,
    and the weights source of the model that made it (None when not known)."""

    digest: str
    params: EditParams
    seconds: float
    stored_bytes: int
    source: str | None = None


@dataclass(frozen=True)
class Node:
    """One image in the edit tree. A photo someone sent is a root (no parent, no instruction); an edit is a
    child of the node it edited and records the parameters and seed actually used.

    visit: a per-conversation counter, raised each time the node becomes the head. Redo follows the child
    with the highest visit, i.e. the one we most recently came back from.
    instruction is always what the model was given (English); translation, when set, what the person typed.
    region: the region the edit was confined to (None: the whole picture), so /retry and /squash repeat it.
    source: the weights source of the model that made it; inputs: its reference pictures' digests, in order.
    """

    id: int
    conversation_id: int
    parent_id: int | None
    image_hash: str
    instruction: str | None
    params: EditParams | None
    seconds: float | None
    created_at: datetime
    visit: int
    translation: Translation | None = None
    region: Region | None = None
    source: str | None = None
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class EditJob:
    """Edit node `parent_id` (whose image is `image_hash`) of a conversation with `instruction` and `params`.

    Plain data, so it can wait in the in-process queue or travel to a worker on another machine.
    person: who asked ("platform:user"), for per-person limits across chats.
    variants: when given, render these instead of `params`, in one batched call, and record each as a candidate
        (a child that does not become the head until adopted): sweeps and variations.
    translation: what the person typed, when `instruction` is its English translation; recorded on the nodes.
    region: edit only there (core.regions); None for the whole picture.
    references: image digests of further pictures the instruction may name ("picture 2", "picture 3"...).
    """

    conversation_id: int
    person: str
    parent_id: int
    image_hash: str
    instruction: str
    params: EditParams
    variants: tuple[EditParams, ...] = ()
    translation: Translation | None = None
    region: Region | None = None
    references: tuple[str, ...] = ()
