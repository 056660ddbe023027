"""Where pipelines come from: models built in code, local folders, and every way of not getting a model."""

from __future__ import annotations

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
