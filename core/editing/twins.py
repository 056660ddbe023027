"""Tiny random pipelines of every family, built in code the way diffusers' own fast tests build them
(tests/pipelines/<family>/ in diffusers), with tokenizers built in code instead of downloaded.

Each has its family's real structure (components, channel layout, text-encoder kind, guidance path) and a few
hundred thousand weights at most: for tests and the CPU benchmark. Deterministic for a seed. `build_tiny(family)`
is what the model source `tiny` means for a family.
"""

from __future__ import annotations

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLFlux2,
    AutoencoderKLQwenImage,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
    FluxKontextPipeline,
    FluxTransformer2DModel,
    QwenImageEditPlusPipeline,
    QwenImageTransformer2DModel,
    StableDiffusionXLInstructPix2PixPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen3Config,
    Qwen3ForCausalLM,
    T5Config,
    T5EncoderModel,
)

from core.editing.sources import (
    build_full_random_pipeline,
    build_tiny_pipeline,
    build_tokenizer,
)
from core.editing.twin_tokenizers import build_qwen_tokenizer, build_t5_tokenizer


def build_tiny(family: str, seed: int = 0):
    """The tiny random pipeline of `family` (a name in core.editing.families.FAMILIES)."""
    builders = {
        "pix2pix": build_tiny_pipeline,
        "pix2pix-xl": build_tiny_pix2pix_xl,
        "kontext": build_tiny_kontext,
        "flux2-klein": build_tiny_flux2_klein,
        "qwen-edit": build_tiny_qwen_edit,
    }
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's random state
        torch.manual_seed(seed)
        pipeline = builders[family]() if family != "pix2pix" else build_tiny_pipeline(seed)
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    return pipeline


def build_full_random(family: str, dtype: torch.dtype = torch.float32):
    """The family's real architecture with random weights, for benchmarks (only families that fit 24 GB). FLUX.2
    klein is built straight in `dtype`: a float32 copy on the way to bfloat16 would need twice the memory."""
    if family == "pix2pix":
        return build_full_random_pipeline()
    if family == "flux2-klein":
        from core.editing.klein_4b import build_random_klein_4b

        return build_random_klein_4b(dtype)
    raise ValueError(f"No full-size random build of {family} here: it does not fit this machine.")


def _clip_config(vocab_size: int) -> CLIPTextConfig:
    # diffusers' tests: hidden 32, 5 layers, 4 heads, projection 32; ids of our CLIP tokenizer (bos 0, eos/pad 1)
    return CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=5, vocab_size=vocab_size, hidden_act="gelu", projection_dim=32,
        max_position_embeddings=77,
    )


def build_tiny_pix2pix_xl() -> StableDiffusionXLInstructPix2PixPipeline:
    """tests/pipelines/stable_diffusion_xl/test_stable_diffusion_xl_instruction_pix2pix.py's components: an SDXL
    UNet with 8 input channels and text-time conditioning, two CLIP text encoders, Euler."""
    tokenizer = build_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=80,  # 6 size/crop values x 8 + the pooled text (32)
        cross_attention_dim=64,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear", timestep_spacing="leading"
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4, sample_size=128,
    )
    config = _clip_config(len(tokenizer))
    return StableDiffusionXLInstructPix2PixPipeline(
        vae=vae, text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer, tokenizer_2=build_tokenizer(), unet=unet, scheduler=scheduler,
        add_watermarker=False,  # the invisible watermark is an optional extra; results must not depend on it
    )


def build_tiny_kontext() -> FluxKontextPipeline:
    """tests/pipelines/flux/test_pipeline_flux_kontext.py's components: a one-block Flux transformer with a
    guidance embedding, CLIP and T5 text encoders, a one-level VAE with Flux's shift and scale."""
    tokenizer, tokenizer_2 = build_tokenizer(), build_t5_tokenizer()
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
        guidance_embeds=True,  # as FLUX.1-Kontext-dev: guidance is an input of the transformer
    )
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(tokenizer_2), d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                 relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    )
    vae = AutoencoderKL(
        sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035,
    )
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=CLIPTextModel(_clip_config(len(tokenizer))),
        tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer,
        image_encoder=None, feature_extractor=None,
    )


def build_tiny_flux2_klein() -> Flux2KleinPipeline:
    """tests/pipelines/flux2/test_pipeline_flux2_klein.py's components, except that the Qwen3 text encoder has 28
    (16-wide) layers, so the pipeline's default hidden-state layers (9, 18, 27) exist as in the released model."""
    tokenizer = build_qwen_tokenizer()
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=4, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=48,  # three stacked 16-wide hidden states
        timestep_guidance_channels=256, axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False,
    )
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(intermediate_size=16, hidden_size=16, num_hidden_layers=28, num_attention_heads=2,
                    num_key_value_heads=2, head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=512)
    )
    vae = AutoencoderKLFlux2(
        sample_size=32, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), block_out_channels=(4,), layers_per_block=1, latent_channels=1,
        norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
    )
    return Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        transformer=transformer, is_distilled=False,  # Base-like, so the guidance path (two calls a step) is tested
    )


def build_tiny_qwen_edit() -> QwenImageEditPlusPipeline:
    """tests/pipelines/qwenimage/test_qwenimage_edit_plus.py's components: a two-layer QwenImage transformer, a
    tiny Qwen2.5-VL text-and-vision encoder with its processor, the QwenImage VAE."""
    tokenizer = build_qwen_tokenizer()
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=2, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )
    z_dim = 4
    vae = AutoencoderKLQwenImage(
        base_dim=z_dim * 6, z_dim=z_dim, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
    )
    ids = tokenizer.convert_tokens_to_ids
    text_encoder = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(
            text_config={
                "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
                "bos_token_id": ids("<|endoftext|>"), "eos_token_id": ids("<|im_end|>"),
                "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            },
            vision_config={
                "depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
            },
            hidden_size=16, vocab_size=len(tokenizer), image_token_id=ids("<|image_pad|>"),
            video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
            vision_end_token_id=ids("<|vision_end|>"),
        )
    )
    processor = _ImageOnlyQwen2VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer)
    return QwenImageEditPlusPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        processor=processor, transformer=transformer,
    )


class _ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor without its video processor: transformers builds that one on torchvision, which
    editbot does not install; the edit pipeline only ever passes pictures."""

    @classmethod
    def get_attributes(cls):
        return ["image_processor", "tokenizer"]
