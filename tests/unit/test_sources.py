"""Where pipelines come from: models built in code, local folders, and every way of not getting a model."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from diffusers import EulerAncestralDiscreteScheduler
from PIL import Image

from core.editing.sources import (
    build_full_random_pipeline,
    build_tiny_pipeline,
    load_pipeline,
    resolve_device,
    resolve_dtype,
)
from core.errors import ModelUnavailable


def stock_edit(pipeline) -> np.ndarray:
    photo = Image.fromarray(np.random.default_rng(3).integers(0, 256, (32, 48, 3), dtype=np.uint8))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline(
        "make it snowy", image=photo, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="np"
    ).images[0]


def test_tiny_is_an_instruct_pix2pix_model_built_deterministically():
    first, second = load_pipeline("tiny"), build_tiny_pipeline()
    assert first.unet.config.in_channels == 8 and first.unet.config.out_channels == 4
    assert first.vae_scale_factor == 8
    assert first.safety_checker is None
    assert isinstance(first.scheduler, EulerAncestralDiscreteScheduler)
    assert first.scheduler.config.beta_schedule == "scaled_linear"
    for a, b in zip(first.unet.parameters(), second.unet.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(build_tiny_pipeline(seed=1).unet.conv_in.weight, first.unet.conv_in.weight)
    assert first.tokenizer("make it snowy").input_ids[0] == first.tokenizer.bos_token_id
    np.testing.assert_array_equal(stock_edit(first), stock_edit(second))


def test_tiny_loads_in_bfloat16_when_asked():
    pipeline = load_pipeline("tiny", dtype="bfloat16")
    assert pipeline.unet.dtype == torch.bfloat16 and pipeline.text_encoder.dtype == torch.bfloat16


def test_a_saved_folder_loads_back_and_edits_the_same(tmp_path):
    tiny = build_tiny_pipeline()
    tiny.save_pretrained(tmp_path / "model")
    loaded = load_pipeline(str(tmp_path / "model"), offline=True)
    assert type(loaded.scheduler) is type(tiny.scheduler)
    np.testing.assert_allclose(stock_edit(loaded), stock_edit(tiny), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_full_random_has_the_sd15_instruct_pix2pix_architecture():
    pipeline = build_full_random_pipeline()
    unet = pipeline.unet.config
    assert tuple(unet.block_out_channels) == (320, 640, 1280, 1280)
    assert unet.cross_attention_dim == 768 and unet.in_channels == 8
    assert tuple(pipeline.vae.config.block_out_channels) == (128, 256, 512, 512)
    assert pipeline.text_encoder.config.hidden_size == 768 and pipeline.text_encoder.config.num_hidden_layers == 12
    assert 850e6 < sum(p.numel() for p in pipeline.unet.parameters()) < 870e6
    assert isinstance(pipeline.scheduler, EulerAncestralDiscreteScheduler)


def test_a_missing_folder_says_what_to_set(tmp_path):
    with pytest.raises(ModelUnavailable, match="EDITBOT_MODEL") as raised:
        load_pipeline(str(tmp_path / "nowhere"))
    assert "\n" not in str(raised.value)


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(ModelUnavailable, match="not a diffusers model folder"):
        load_pipeline(str(tmp_path))


def test_a_damaged_folder_is_refused(tmp_path):
    build_tiny_pipeline().save_pretrained(tmp_path)
    for weights in (tmp_path / "unet").glob("*.safetensors"):
        weights.write_bytes(b"not weights")
    with pytest.raises(ModelUnavailable, match="incomplete or damaged"):
        load_pipeline(str(tmp_path))


def test_a_missing_checkpoint_file_is_refused(tmp_path):
    with pytest.raises(ModelUnavailable, match="No checkpoint file"):
        load_pipeline(str(tmp_path / "model.safetensors"))


def test_a_checkpoint_offline_without_a_config_folder_says_what_to_do(tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"x")
    with pytest.raises(ModelUnavailable, match="config folder"):
        load_pipeline(str(checkpoint), offline=True)


def test_a_broken_checkpoint_file_is_refused(tmp_path):
    config = tmp_path / "config"
    build_tiny_pipeline().save_pretrained(config)
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"definitely not safetensors")
    with pytest.raises(ModelUnavailable, match="Could not load the checkpoint model.safetensors"):
        load_pipeline(str(checkpoint), offline=True, config=str(config))


def test_an_uncached_hub_id_offline_says_to_go_online_once():
    with pytest.raises(ModelUnavailable, match="not in the local cache") as raised:
        load_pipeline("editbot-tests/no-such-model", offline=True)
    assert "EDITBOT_OFFLINE" in str(raised.value)


def test_dtypes_resolve_per_device():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda") == torch.float16
    assert resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ModelUnavailable, match="float16 is not supported on CPU"):
        resolve_dtype("float16", "cpu")
    with pytest.raises(ModelUnavailable, match="Unknown dtype"):
        resolve_dtype("float8", "cpu")


def test_devices_resolve_and_missing_ones_are_refused():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelUnavailable, match="Unknown device"):
        resolve_device("toaster")
    if not torch.cuda.is_available():
        with pytest.raises(ModelUnavailable, match="EDITBOT_DEVICE=cpu"):
            resolve_device("cuda")


# --- single-file checkpoints: the tiny model written in the original (LDM) key layout -----------------------------

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]  # fmt: skip
_VAE_ATTENTION = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _ldm_unet_key(key: str, layers: int) -> str:
    """A diffusers UNet key in the original layout (input/middle/output blocks, numbered sequentially)."""
    def resnet(rest: str) -> str:
        for ours, theirs in _RESNET:
            rest = rest.replace(ours + ".", theirs + ".", 1) if rest.startswith(ours + ".") else rest
        return rest

    if match := re.match(r"down_blocks\.(\d)\.(resnets|attentions)\.(\d)\.(.*)", key):
        block, kind, index, rest = int(match[1]), match[2], int(match[3]), match[4]
        position = (layers + 1) * block + index + 1
        return f"input_blocks.{position}.{'0.' + resnet(rest) if kind == 'resnets' else '1.' + rest}"
    if match := re.match(r"down_blocks\.(\d)\.downsamplers\.0\.conv\.(.*)", key):
        return f"input_blocks.{(layers + 1) * (int(match[1]) + 1)}.0.op.{match[2]}"
    if match := re.match(r"mid_block\.(resnets|attentions)\.(\d)\.(.*)", key):
        position = 1 if match[1] == "attentions" else 2 * int(match[2])
        return f"middle_block.{position}.{resnet(match[3]) if match[1] == 'resnets' else match[3]}"
    if match := re.match(r"up_blocks\.(\d)\.(resnets|attentions)\.(\d)\.(.*)", key):
        block, kind, index, rest = int(match[1]), match[2], int(match[3]), match[4]
        position = (layers + 1) * block + index
        return f"output_blocks.{position}.{'0.' + resnet(rest) if kind == 'resnets' else '1.' + rest}"
    if match := re.match(r"up_blocks\.(\d)\.upsamplers\.0\.conv\.(.*)", key):
        return f"output_blocks.{(layers + 1) * int(match[1]) + layers}.{{upsampler}}.conv.{match[2]}"
    renames = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
               "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}  # fmt: skip
    module, _, parameter = key.rpartition(".")
    return f"{renames[module]}.{parameter}"


def _ldm_vae_key(key: str, blocks: int) -> str:
    def resnet(rest: str) -> str:
        return rest.replace("conv_shortcut.", "nin_shortcut.")

    if match := re.match(r"(encoder|decoder)\.(down|up)_blocks\.(\d)\.(resnets|downsamplers|upsamplers)\.(\d)\.(.*)", key):
        part, direction, block, kind, index, rest = match.groups()
        block = int(block) if direction == "down" else blocks - 1 - int(block)
        if kind == "resnets":
            return f"{part}.{direction}.{block}.block.{index}.{resnet(rest)}"
        return f"{part}.{direction}.{block}.{'downsample' if direction == 'down' else 'upsample'}.{rest}"
    if match := re.match(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.*)", key):
        return f"{match[1]}.mid.block_{int(match[2]) + 1}.{resnet(match[3])}"
    if match := re.match(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        rest = match[2]
        for ours, theirs in _VAE_ATTENTION:
            rest = rest.replace(ours + ".", theirs + ".") if rest.startswith(ours + ".") else rest
        return f"{match[1]}.mid.attn_1.{rest}"
    return key.replace("conv_norm_out", "norm_out")


def write_ldm_checkpoint(pipeline, path) -> None:
    """Save the pipeline's weights as one original-layout (LDM) checkpoint, as single-file models are shared."""
    from safetensors.torch import save_file

    unet, vae = pipeline.unet, pipeline.vae
    layers = unet.config.layers_per_block
    checkpoint = {}
    for key, value in unet.state_dict().items():
        ldm = _ldm_unet_key(key, layers)
        block = int(key.split(".")[1]) if key.startswith("up_blocks.") else 0
        upsampler = "2" if getattr(unet.up_blocks[block], "has_cross_attention", False) else "1"
        checkpoint["model.diffusion_model." + ldm.replace("{upsampler}", upsampler)] = value
    for key, value in vae.state_dict().items():
        ldm = _ldm_vae_key(key, len(vae.config.block_out_channels))
        if ".mid.attn_1." in ldm and value.ndim == 2:
            value = value[:, :, None, None]  # the original attention uses 1x1 convolutions
        checkpoint["first_stage_model." + ldm] = value
    for key, value in pipeline.text_encoder.state_dict().items():
        # the original layout nests everything under text_model (newer transformers flatten CLIPTextModel)
        key = key if key.startswith("text_model.") else "text_model." + key
        checkpoint["cond_stage_model.transformer." + key] = value
    save_file({key: value.contiguous() for key, value in checkpoint.items()}, str(path))


def test_a_single_file_checkpoint_loads_offline_with_a_config_folder(tmp_path):
    tiny = build_tiny_pipeline()
    tiny.save_pretrained(tmp_path / "config")
    write_ldm_checkpoint(tiny, tmp_path / "tiny.safetensors")
    loaded = load_pipeline(str(tmp_path / "tiny.safetensors"), offline=True, config=str(tmp_path / "config"))
    for name in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(tiny, name).state_dict(), getattr(loaded, name).state_dict()
        assert set(ours) <= set(theirs)
        for key in ours:
            torch.testing.assert_close(theirs[key], ours[key], msg=f"{name}.{key}")
    np.testing.assert_allclose(stock_edit(loaded), stock_edit(tiny), atol=1e-6, rtol=0)
