"""Loading any family's pipeline from a model source, and the editor that runs it.

Sources are those of core.editing.sources (a hub id, a local diffusers folder, a single-file checkpoint where the
family's pipeline supports one, `tiny`, `full-random` where it fits): the same code, with the family's pipeline
class. Every failure is core.errors.ModelUnavailable with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.editing import sources
from core.editing.families import Family, family_named, installed
from core.errors import BadParams, ModelUnavailable


@dataclass(frozen=True)
class MemoryOptions:
    """diffusers' memory savers that fit a bot (both off by default).

    cpu_offload: keep each model on the CPU until the pipeline needs it (enable_model_cpu_offload): a GPU with
        less memory than the weights can run them, each edit a little slower. Needs a GPU.
    vae_tiling: decode (and encode) in tiles, so large pictures need far less memory in the VAE.
    """

    cpu_offload: bool = False
    vae_tiling: bool = False


def pipeline_class(family: Family):
    """The family's pipeline class from the installed diffusers; ModelUnavailable when it has none."""
    if not installed(family):
        raise ModelUnavailable(
            f"The installed diffusers has no {family.pipeline}, needed by {family.name}; upgrade diffusers "
            "(see constraints.txt) or remove that model from EDITBOT_MODELS."
        )
    import diffusers

    return getattr(diffusers, family.pipeline)


def family_dtype(family: Family, dtype: str, device: torch.device) -> torch.dtype:
    """"auto": the family's own dtype on CUDA (float16 for the SD families, bfloat16 for FLUX and Qwen), float32
    elsewhere; anything else as core.editing.sources.resolve_dtype."""
    if dtype == "auto" and device.type == "cuda":
        return {"float16": torch.float16, "bfloat16": torch.bfloat16}[family.dtype]
    return sources.resolve_dtype(dtype, device)


def load_family_pipeline(
    family_name: str,
    source: str | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    safety_checker: bool = True,
    config: str | None = None,
    memory: MemoryOptions = MemoryOptions(),
):
    """Load `family_name`'s pipeline from `source` (default: the family's default weights) onto `device`.

    Raises ModelUnavailable (one line) for an unknown family, a family the installed diffusers lacks, a source
    that cannot be had, or memory options the device cannot honour.
    """
    try:
        family = family_named(family_name)
    except BadParams as error:
        raise ModelUnavailable(str(error)) from error
    source = source or family.default_source
    torch_device = sources.resolve_device(device)
    if memory.cpu_offload and torch_device.type != "cuda":
        raise ModelUnavailable("Model CPU offload needs a CUDA GPU; turn EDITBOT_CPU_OFFLOAD off on this machine.")
    if family.name == "pix2pix" and source not in (sources.TINY, sources.FULL_RANDOM):
        pipeline = sources.load_pipeline(
            source, device="cpu", dtype=_dtype_name(family_dtype(family, dtype, torch_device)), offline=offline,
            safety_checker=safety_checker, config=config,
        )
    else:
        pipeline = _load(family, source, family_dtype(family, dtype, torch_device), offline, config)
    pipeline.set_progress_bar_config(disable=True)  # the editor reports progress itself
    if memory.vae_tiling:
        pipeline.vae.enable_tiling()
    if memory.cpu_offload:
        pipeline.enable_model_cpu_offload(device=torch_device)
        return pipeline
    return pipeline.to(device=torch_device)


def _load(family: Family, source: str, torch_dtype: torch.dtype, offline: bool, config: str | None):
    from core.editing.twins import build_full_random, build_tiny

    cls = pipeline_class(family)
    if source == sources.TINY:
        return build_tiny(family.name).to(dtype=torch_dtype)
    if source == sources.FULL_RANDOM:
        try:
            return build_full_random(family.name, torch_dtype).to(dtype=torch_dtype)
        except ValueError as error:
            raise ModelUnavailable(str(error)) from error
    path = Path(source).expanduser()
    if source.lower().endswith(sources.SINGLE_FILE_SUFFIXES):
        if not hasattr(cls, "from_single_file"):
            raise ModelUnavailable(
                f"{family.name} cannot load a single-file checkpoint ({cls.__name__} has no from_single_file); "
                "use a diffusers folder or a hub id."
            )
        return sources._load_single_file(path, config, offline, None, torch_dtype, cls)
    if path.is_dir():
        return sources._load_folder(path, None, torch_dtype, cls)
    if sources._HUB_ID.match(source) and not source.startswith((".", "~")):
        return sources._load_hub(source, offline, None, torch_dtype, cls)
    raise ModelUnavailable(
        f"No model folder at {source}; give {family.name} a diffusers folder, a hub id, `{sources.TINY}`"
        + (", or a .safetensors file." if hasattr(cls, "from_single_file") else ".")
    )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def build_editor(family_name: str, pipeline, **options):
    """The editor (core.ports.Editor) for a loaded pipeline of `family_name`. options: the editor's own keyword
    arguments (max_side, keep_original_size; pix2pix also scheduler, fast, safety_checker, compile)."""
    if family_name == "pix2pix":
        from core.editing.pix2pix import Pix2PixEditor

        return Pix2PixEditor(pipeline, **options)
    from core.editing.flux2_klein import Flux2KleinEditor
    from core.editing.kontext import KontextEditor
    from core.editing.pix2pix_xl import Pix2PixXLEditor
    from core.editing.qwen_edit import QwenEditEditor

    editors = {
        "pix2pix-xl": Pix2PixXLEditor,
        "kontext": KontextEditor,
        "flux2-klein": Flux2KleinEditor,
        "qwen-edit": QwenEditEditor,
    }
    return editors[family_named(family_name).name](pipeline, **options)
