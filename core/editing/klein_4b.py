"""FLUX.2 [klein] 4B's real architecture with random weights, for benchmarks: speed does not depend on the weights.

Configs: the transformer as in diffusers' scripts/convert_flux2_to_diffusers.py ("klein-4b"), the text encoder
Qwen3-4B's (36 layers, 2560 wide), the VAE AutoencoderKLFlux2's defaults (32 latent channels). Built directly in
bfloat16 without a float32 copy (about 16 GB in all), weights drawn N(0, 0.02), norms 1: several minutes on a
busy 2-core machine. Run it under `flock /tmp/editbot-heavy.lock`.
"""

from __future__ import annotations

import torch
from accelerate import init_empty_weights
from accelerate.utils import set_module_tensor_to_device
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
)
from transformers import Qwen3Config, Qwen3ForCausalLM

from core.editing.twin_tokenizers import build_qwen_tokenizer

KLEIN_4B_TRANSFORMER = dict(
    patch_size=1, in_channels=128, num_layers=5, num_single_layers=20, attention_head_dim=128, num_attention_heads=24,
    joint_attention_dim=7680, timestep_guidance_channels=256, mlp_ratio=3.0, axes_dims_rope=(32, 32, 32, 32),
    rope_theta=2000, eps=1e-6, guidance_embeds=False,
)
QWEN3_4B = dict(
    hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
    head_dim=128, vocab_size=151936, max_position_embeddings=40960, rope_theta=1000000.0, tie_word_embeddings=True,
)


def build_random_klein_4b(dtype: torch.dtype = torch.bfloat16, seed: int = 0) -> Flux2KleinPipeline:
    """The FLUX.2 [klein] 4B pipeline (distilled: 4 steps, no guidance) with random weights in `dtype`."""
    generator = torch.Generator().manual_seed(seed)
    with init_empty_weights():
        transformer = Flux2Transformer2DModel(**KLEIN_4B_TRANSFORMER)
        text_encoder = Qwen3ForCausalLM(Qwen3Config(**QWEN3_4B))
    for module in (transformer, text_encoder):
        _materialize(module, dtype, generator)
    text_encoder.tie_weights()
    vae = AutoencoderKLFlux2().to(dtype)
    return Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder.eval(),
        tokenizer=build_qwen_tokenizer(), transformer=transformer.eval(), is_distilled=True,
    )


def _materialize(module: torch.nn.Module, dtype: torch.dtype, generator: torch.Generator) -> None:
    """Give every parameter still on the meta device real random values, one tensor at a time."""
    for name, parameter in list(module.named_parameters()):
        if parameter.device.type != "meta":
            continue
        value = torch.empty(parameter.shape, dtype=dtype)
        if "norm" in name and parameter.ndim == 1:
            value.fill_(1.0 if name.endswith("weight") else 0.0)
        elif name.endswith("bias"):
            value.zero_()
        else:
            value.normal_(0.0, 0.02, generator=generator)
        # dtype given: left out, accelerate casts to the meta parameter's float32 (32 GB in all: out of memory)
        set_module_tensor_to_device(module, name, "cpu", value=value, dtype=dtype)
