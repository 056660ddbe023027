"""The editing model families editbot can run, and the parameters each one declares.

Plain data, no torch: settings validation, the engine's /settings, sweeps and captions read these declarations; the
editors in this package (one file per family) turn them into pipeline arguments. Every default names its source.

Where a value lives in EditParams: `text_guidance`, `image_guidance`, `steps` and `seed` are EditParams' own fields
(the meaning they have always had); a value only one family has (Kontext's distilled guidance, Qwen's
`true_cfg_scale` and negative prompt) lives in `EditParams.extras` under the parameter's name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from core.domain import SEED_RANGE, STEPS_RANGE, EditParams, readable_number
from core.errors import BadParams

SHARED_FIELDS = ("text_guidance", "image_guidance", "steps", "seed")
"""Parameters stored in EditParams' own fields; every other parameter is stored in EditParams.extras."""


@dataclass(frozen=True)
class Parameter:
    """One setting a person may change. kind: "float", "int" or "text" (text has no range).

    stronger: what one press of Stronger adds (Weaker subtracts it; negative where a larger value changes less).
    sweep: the spacing of /sweep's grid along this parameter. Both only for the tunable (float) parameters.
    """

    name: str
    kind: str
    default: float | int | str | None
    meaning: str
    low: float | None = None
    high: float | None = None
    stronger: float = 0.0
    sweep: float = 0.0

    @property
    def label(self) -> str:
        """The short name grids and messages use: "text", "image", "guidance", "true cfg scale"."""
        return self.name.removesuffix("_guidance").replace("_", " ")

    def clamp(self, value: float) -> float:
        """value brought inside the range, rounded as the chat shows it."""
        return round(min(max(value, self.low), self.high), 2)

    def check(self, value) -> None:
        """Raise BadParams with one line when `value` is not allowed."""
        label = self.name.replace("_", " ")
        if self.kind == "text":
            if not isinstance(value, str) or len(value) > 500:
                raise BadParams(f"{label.capitalize()} must be text of at most 500 characters.")
            return
        if self.name == "seed" and value is None:
            return
        whole = self.kind == "int"
        if (
            isinstance(value, bool)
            or not isinstance(value, int if whole else (int, float))
            or not math.isfinite(value)
            or not self.low <= value <= self.high
        ):
            kind = "a whole number" if whole else "a number"
            raise BadParams(f"{label.capitalize()} must be {kind} from {readable_number(self.low)} to "
                            f"{readable_number(self.high)}.")


@dataclass(frozen=True)
class Family:
    """An editing model family: the diffusers pipeline that runs it, where its weights usually come from, how many
    pictures it takes (the photo plus references) and the parameters it declares, defaults first documented.

    latent_multiple: working sides are rounded down to a multiple of this (the VAE's factor, times 2 where the
        transformer packs 2x2 latent patches). max_side: the default longest working side (what the model was
        trained at). vram: what its default weights need on a GPU, with its default dtype (published figures).
    """

    name: str
    pipeline: str
    default_source: str
    pictures: int
    parameters: tuple[Parameter, ...]
    latent_multiple: int
    max_side: int
    dtype: str
    weights: str
    vram: str
    sources: str

    @property
    def takes_references(self) -> bool:
        return self.pictures > 1

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        names = ", ".join(p.name for p in self.parameters)
        raise BadParams(f"{self.name} has no setting {name!r}; its settings are: {names}.")

    def tunable(self) -> tuple[Parameter, ...]:
        """The numeric parameters besides steps and seed: what Stronger/Weaker and sweeps move (1 or 2)."""
        return tuple(p for p in self.parameters if p.kind == "float")

    def defaults(self) -> EditParams:
        """EditParams holding this family's defaults (seed None: pick one per edit)."""
        params = EditParams(family=self.name)
        for parameter in self.parameters:
            params = self.with_value(params, parameter.name, parameter.default)
        return params

    def value(self, params: EditParams, name: str):
        """The value of parameter `name` in params (its default where params does not carry it)."""
        parameter = self.parameter(name)
        if name in SHARED_FIELDS:
            return getattr(params, name)
        return params.extra(name, parameter.default)

    def with_value(self, params: EditParams, name: str, value) -> EditParams:
        """params with parameter `name` set to value (checked: BadParams with one line when not allowed)."""
        self.parameter(name).check(value)
        if name in SHARED_FIELDS:
            return replace(params, **{name: value})
        return params.with_extra(name, value)

    def validated(self, params: EditParams) -> EditParams:
        """params if it belongs to this family and every declared value is allowed, else BadParams (one line)."""
        if params.family != self.name:
            raise BadParams(f"These settings are for {params.family}, not {self.name}.")
        for parameter in self.parameters:
            parameter.check(self.value(params, parameter.name))
        unknown = sorted(set(dict(params.extras)) - {p.name for p in self.parameters})
        if unknown:
            raise BadParams(f"{self.name} has no setting {unknown[0]!r}.")
        return params

    def describe(self, params: EditParams) -> str:
        """The caption line: every declared value, so a person can reproduce or tune the edit."""
        parts = []
        for parameter in self.parameters:
            value = self.value(params, parameter.name)
            label = parameter.name.replace("_", " ")
            if parameter.name == "seed":
                parts.append(f"seed {'random' if value is None else value}")
            elif parameter.name == "steps":
                parts.append(f"{value} steps")
            elif parameter.kind == "text":
                parts.append(f"{label} {value.strip() or '-'!s}")
            else:
                parts.append(f"{label} {value:g}")
        return f"{self.name} · " + " · ".join(parts)


def _steps(default: int) -> Parameter:
    return Parameter("steps", "int", default, "denoising steps: more is slower and usually finer", *STEPS_RANGE)


SEED = Parameter("seed", "int", None, "the random seed; the same seed and settings give the same picture", *SEED_RANGE)
TEXT_GUIDANCE = "how strongly to follow the instruction"
IMAGE_GUIDANCE = "how much of the photo to keep"

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="pix2pix",
            pipeline="StableDiffusionInstructPix2PixPipeline",
            default_source="timbrooks/instruct-pix2pix",
            pictures=1,
            parameters=(
                # EditParams' long-standing defaults (7.5 / 1.5 as in the model card; 20 steps for a chat's pace)
                # Stronger / Weaker and /sweep steps as the chat has always used them
                Parameter("text_guidance", "float", 7.5, TEXT_GUIDANCE, 1.0, 20.0, stronger=1.5, sweep=2.0),
                Parameter("image_guidance", "float", 1.5, IMAGE_GUIDANCE, 0.0, 5.0, stronger=-0.25, sweep=0.3),
                _steps(20),
                SEED,
            ),
            latent_multiple=8,
            max_side=512,
            dtype="float16",
            weights="2.2 GB (fp16 UNet + VAE + CLIP-L)",
            vram="about 4 GB (published)",
            sources="timbrooks/instruct-pix2pix model card",
        ),
        Family(
            name="pix2pix-xl",
            pipeline="StableDiffusionXLInstructPix2PixPipeline",
            default_source="diffusers/sdxl-instructpix2pix-768",
            pictures=1,
            parameters=(
                # diffusers/sdxl-instructpix2pix-768 model card: guidance_scale=3.0, image_guidance_scale=1.5,
                # num_inference_steps=30, at 768x768
                # image guidance from 1: below it the stock pipeline switches all guidance off
                Parameter("text_guidance", "float", 3.0, TEXT_GUIDANCE, 1.0, 20.0, stronger=1.0, sweep=1.0),
                Parameter("image_guidance", "float", 1.5, IMAGE_GUIDANCE, 1.0, 5.0, stronger=-0.25, sweep=0.3),
                _steps(30),
                SEED,
            ),
            latent_multiple=8,
            max_side=768,
            dtype="float16",
            weights="6.9 GB (fp16 SDXL UNet + VAE + two CLIP text encoders)",
            vram="about 10 GB (published for SDXL in fp16)",
            sources="diffusers/sdxl-instructpix2pix-768 model card",
        ),
        Family(
            name="kontext",
            pipeline="FluxKontextPipeline",
            default_source="black-forest-labs/FLUX.1-Kontext-dev",
            pictures=1,
            parameters=(
                # FLUX.1-Kontext-dev model card: guidance_scale=2.5; steps: FluxKontextPipeline's default 28
                Parameter("guidance", "float", 2.5, "how strongly to follow the instruction", 1.0, 10.0, stronger=0.5,
                          sweep=0.5),
                _steps(28),
                SEED,
            ),
            latent_multiple=16,
            max_side=1024,
            dtype="bfloat16",
            weights="about 33 GB (bf16 12B transformer + T5-XXL + CLIP-L + VAE)",
            vram="about 24 GB with model CPU offload, 33 GB without (published)",
            sources="black-forest-labs/FLUX.1-Kontext-dev model card",
        ),
        Family(
            name="flux2-klein",
            pipeline="Flux2KleinPipeline",
            default_source="black-forest-labs/FLUX.2-klein-4B",
            pictures=4,
            parameters=(
                # FLUX.2 [klein] 4B is step- and guidance-distilled: 4 steps, guidance_scale 1.0 (model card and
                # diffusers' Flux2KleinPipeline integration test). The guidance only acts on the Base variants.
                Parameter("guidance", "float", 1.0, "how strongly to follow the instruction, on the klein Base models "
                          "only: the distilled 4B and 9B ignore it", 1.0, 10.0, stronger=0.5, sweep=0.5),
                _steps(4),
                SEED,
            ),
            latent_multiple=16,
            max_side=1024,
            dtype="bfloat16",
            weights="about 16 GB (bf16 4B transformer + Qwen3-4B text encoder + VAE)",
            vram="about 13 GB (published: consumer GPUs such as an RTX 3090/4070)",
            sources="black-forest-labs/FLUX.2-klein-4B model card; black-forest-labs/flux2 README",
        ),
        Family(
            name="qwen-edit",
            pipeline="QwenImageEditPlusPipeline",
            default_source="Qwen/Qwen-Image-Edit-2511",
            pictures=3,
            parameters=(
                # Qwen/Qwen-Image-Edit-2511 model card: true_cfg_scale=4.0, negative_prompt=" ", 40 steps
                # (guidance_scale stays 1.0: the transformer has no guidance embedding)
                Parameter("true_cfg_scale", "float", 4.0, "how strongly to follow the instruction", 1.0, 10.0,
                          stronger=1.0, sweep=0.75),
                Parameter("negative_prompt", "text", " ", "what the picture should not look like"),
                _steps(40),
                SEED,
            ),
            latent_multiple=32,
            max_side=1024,
            dtype="bfloat16",
            weights="about 58 GB (bf16 20B transformer + Qwen2.5-VL-7B + VAE)",
            vram="about 60 GB, or under 24 GB with model CPU offload (published)",
            sources="Qwen/Qwen-Image-Edit-2511 model card",
        ),
    )
}
DEFAULT_FAMILY = "pix2pix"


def family_named(name: str) -> Family:
    """The family called `name`; BadParams with one line listing the known ones otherwise."""
    family = FAMILIES.get(name)
    if family is None:
        raise BadParams(f"Unknown model family {name!r}; known families: {', '.join(FAMILIES)}.")
    return family


def installed(family: Family) -> bool:
    """Whether the installed diffusers has this family's pipeline class."""
    import diffusers

    try:
        getattr(diffusers, family.pipeline)
    except (AttributeError, ImportError):
        return False
    return True
