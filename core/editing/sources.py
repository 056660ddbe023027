"""Where an InstructPix2Pix pipeline comes from: a hub id, a local diffusers folder, a single-file checkpoint, or a
model built in code (`tiny` for tests, `full-random` for benchmarks).

Every failure to get a model becomes core.errors.ModelUnavailable with one line that says what to change.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerAncestralDiscreteScheduler,
    StableDiffusionInstructPix2PixPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from core.errors import ModelUnavailable

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "timbrooks/instruct-pix2pix"
TINY = "tiny"
FULL_RANDOM = "full-random"
SINGLE_FILE_SUFFIXES = (".ckpt", ".safetensors")

# "owner/name": the shape of a hub repository id (anything else that is not a keyword is a local path).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_TEXT_MAX_LENGTH = 77  # CLIP's context length, as in SD1.5


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" picks CUDA when present, else CPU; anything else must be a device torch knows and can use."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ModelUnavailable(f"Unknown device {device!r}; set EDITBOT_DEVICE to auto, cpu, cuda or mps.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("No CUDA GPU is available; set EDITBOT_DEVICE=cpu (or auto).")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ModelUnavailable("Apple MPS is not available here; set EDITBOT_DEVICE=cpu (or auto).")
    return resolved


def resolve_dtype(dtype: str = "auto", device: torch.device | str = "cpu") -> torch.dtype:
    """"auto" is float16 on CUDA and float32 elsewhere (CPU half precision is slow or unsupported).
    bfloat16 is allowed explicitly on any device."""
    device = torch.device(device)
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    choices = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in choices:
        raise ModelUnavailable(f"Unknown dtype {dtype!r}; set EDITBOT_DTYPE to auto, float32, float16 or bfloat16.")
    if choices[dtype] is torch.float16 and device.type == "cpu":
        raise ModelUnavailable("float16 is not supported on CPU; set EDITBOT_DTYPE to auto, float32 or bfloat16.")
    return choices[dtype]


def load_pipeline(
    source: str = DEFAULT_MODEL,
    *,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    safety_checker: bool = True,
    config: str | None = None,
) -> StableDiffusionInstructPix2PixPipeline:
    """Load an InstructPix2Pix pipeline onto `device` in `dtype`.

    source: `tiny` or `full-random` (random weights built in code, no download), a single-file checkpoint
        (.ckpt/.safetensors), a local diffusers folder, or a hub id such as `timbrooks/instruct-pix2pix`.
    offline: never contact the hub; hub ids must already be in the local cache.
    safety_checker: load the model's safety checker when it has one (models built in code have none).
    config: for single-file checkpoints, a diffusers folder (or hub id) whose component configs describe the
        checkpoint; needed offline, where diffusers cannot fetch the matching configs itself.

    Raises ModelUnavailable with one line saying what to do.
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if source in (TINY, FULL_RANDOM):
        pipeline = build_tiny_pipeline() if source == TINY else build_full_random_pipeline()
        if torch_dtype != torch.float32:  # built in float32
            pipeline = pipeline.to(dtype=torch_dtype)
    elif source.lower().endswith(SINGLE_FILE_SUFFIXES):
        pipeline = _load_single_file(Path(source).expanduser(), config, offline, safety_checker, torch_dtype)
    elif Path(source).expanduser().is_dir():
        pipeline = _load_folder(Path(source).expanduser(), safety_checker, torch_dtype)
    elif _HUB_ID.match(source) and not source.startswith((".", "~")):
        pipeline = _load_hub(source, offline, safety_checker, torch_dtype)
    else:
        raise ModelUnavailable(
            f"No model folder at {source}; set EDITBOT_MODEL to a diffusers folder, a .ckpt/.safetensors file, "
            f"a hub id, `{TINY}` or `{FULL_RANDOM}`."
        )
    pipeline.set_progress_bar_config(disable=True)  # the editor reports progress itself
    return pipeline.to(device=torch_device)


def pretrained_location(source: str, setting: str, keywords: str) -> str | Path:
    """A local folder (Path) or hub id (str) for a transformers/diffusers `from_pretrained`; ModelUnavailable naming
    `setting` and its `keywords` for anything else."""
    if Path(source).expanduser().is_dir():
        return Path(source).expanduser()
    if _HUB_ID.match(source) and not source.startswith((".", "~")):
        return source
    raise ModelUnavailable(f"No model folder at {source}; set {setting} to a folder, a hub id or {keywords}.")


def _component_kwargs(safety_checker: bool | None) -> dict:
    # None: the pipeline has no safety checker (every family but pix2pix)
    # Passing None for both switches the checker off without diffusers' warning about it.
    return {} if safety_checker in (True, None) else {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}


def _load_hub(repo_id: str, offline: bool, safety_checker: bool, dtype: torch.dtype, pipeline_class=None):
    pipeline_class = pipeline_class or StableDiffusionInstructPix2PixPipeline
    try:
        return pipeline_class.from_pretrained(
            repo_id, torch_dtype=dtype, local_files_only=offline, **_component_kwargs(safety_checker)
        )
    except Exception as error:  # hub, network and file errors come in many types; all mean "cannot have it"
        logger.warning("Could not load %s: %s", repo_id, error)
        if offline:
            raise ModelUnavailable(
                f"Model {repo_id} is not in the local cache; run once with EDITBOT_OFFLINE=false and the hub "
                "reachable, or set EDITBOT_MODEL to a local folder."
            ) from error
        raise ModelUnavailable(
            f"Could not download model {repo_id}; check the id and the network. To try editbot offline now: "
            "`editbot chat --model tiny` (a tiny random model: the pipeline works, the pictures are noise). Or "
            f"download it where the network works (`huggingface-cli download {repo_id} --local-dir model`), copy "
            "the folder here and set EDITBOT_MODEL to it."
        ) from error


def _load_folder(folder: Path, safety_checker: bool, dtype: torch.dtype, pipeline_class=None):
    pipeline_class = pipeline_class or StableDiffusionInstructPix2PixPipeline
    if not (folder / "model_index.json").is_file():
        raise ModelUnavailable(
            f"{folder} is not a diffusers model folder (no model_index.json); point EDITBOT_MODEL at one saved "
            "with save_pretrained."
        )
    try:
        return pipeline_class.from_pretrained(
            folder, torch_dtype=dtype, local_files_only=True, **_component_kwargs(safety_checker)
        )
    except Exception as error:
        logger.warning("Could not load %s: %s", folder, error)
        raise ModelUnavailable(
            f"The model folder {folder} is incomplete or damaged; download it again or set EDITBOT_MODEL elsewhere."
        ) from error


def _load_single_file(
    path: Path, config: str | None, offline: bool, safety_checker: bool, dtype: torch.dtype, pipeline_class=None
):
    pipeline_class = pipeline_class or StableDiffusionInstructPix2PixPipeline
    if not path.is_file():
        raise ModelUnavailable(f"No checkpoint file at {path}; set EDITBOT_MODEL to an existing .ckpt/.safetensors file.")
    if offline and config is None:
        raise ModelUnavailable(
            f"Loading {path.name} offline needs a local config folder (a diffusers folder of the same architecture); "
            "set EDITBOT_SINGLE_FILE_CONFIG to one, or run once with the hub reachable."
        )
    try:
        return pipeline_class.from_single_file(
            str(path),
            config=config,
            torch_dtype=dtype,
            local_files_only=offline,
            **_component_kwargs(safety_checker),
        )
    except Exception as error:
        logger.warning("Could not load %s: %s", path, error)
        raise ModelUnavailable(
            f"Could not load the checkpoint {path.name} (damaged, or not a {pipeline_class.__name__} model); "
            "check the file or set EDITBOT_MODEL elsewhere."
        ) from error


# --- models built in code -------------------------------------------------------------------------------------


def sd15_scheduler() -> EulerAncestralDiscreteScheduler:
    """timbrooks/instruct-pix2pix's own scheduler: Euler ancestral on SD1.5's scaled-linear beta schedule."""
    return EulerAncestralDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        steps_offset=1,
    )


def build_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer over a tiny vocabulary: the 256 byte symbols (alone and word-final) plus a few merges.

    Written to a temporary folder and read back, the way a real tokenizer is loaded, so it works with every
    transformers version's CLIPTokenizer (file-based or tokenizers-backed).
    """
    from tokenizers import pre_tokenizers

    byte_symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in byte_symbols + [s + "</w>" for s in byte_symbols]:
        vocab[symbol] = len(vocab)
    merges = ["t h", "th e</w>", "a n", "i n", "e r</w>", "o n</w>", "i t</w>", "m a", "ma k", "mak e</w>"]
    for left, right in (merge.split() for merge in merges):
        vocab[left + right] = len(vocab)
    with tempfile.TemporaryDirectory(prefix="editbot-tokenizer-") as folder:
        (Path(folder) / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
        (Path(folder) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=_TEXT_MAX_LENGTH)


def build_tiny_pipeline(seed: int = 0) -> StableDiffusionInstructPix2PixPipeline:
    """A tiny random InstructPix2Pix pipeline with SD1.5's shape (8 UNet input channels, 4 down/up blocks, VAE
    scale factor 8) but a few thousand times fewer weights. Deterministic for a given seed; builds in well under
    a second. No safety checker."""
    tokenizer = build_tokenizer()
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's random state
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=8,
            in_channels=8,
            out_channels=4,
            down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=(16, 16, 32, 32),
            layers_per_block=1,
            norm_num_groups=8,
            attention_head_dim=4,
            cross_attention_dim=32,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 8, 16, 16),
            layers_per_block=1,
            norm_num_groups=8,
            latent_channels=4,
            sample_size=64,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=_TEXT_MAX_LENGTH,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
    return _assemble(unet, vae, text_encoder, tokenizer)


def build_full_random_pipeline(seed: int = 0) -> StableDiffusionInstructPix2PixPipeline:
    """The real SD1.5 InstructPix2Pix architecture (UNet 320/640/1280/1280 with 768-wide cross-attention and 8
    input channels, the SD VAE, a CLIP ViT-L/14 text encoder) with random weights: for benchmarks, since the
    speed of a network does not depend on its weights. Takes several seconds and about 4 GiB in float32."""
    tokenizer = build_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=64,
            in_channels=8,
            out_channels=4,
            block_out_channels=(320, 640, 1280, 1280),
            layers_per_block=2,
            attention_head_dim=8,
            cross_attention_dim=768,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(128, 256, 512, 512),
            layers_per_block=2,
            latent_channels=4,
            sample_size=512,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=49408,  # the real vocabulary size, so the embedding table costs what it really costs
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=_TEXT_MAX_LENGTH,
                hidden_act="quick_gelu",
                projection_dim=768,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
            )
        )
    return _assemble(unet, vae, text_encoder, tokenizer)


def _assemble(unet, vae, text_encoder, tokenizer) -> StableDiffusionInstructPix2PixPipeline:
    for module in (unet, vae, text_encoder):
        module.eval()
    pipeline = StableDiffusionInstructPix2PixPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sd15_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipeline
