"""Loading every family's pipeline from a model source, offline: tiny twins, saved folders, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.editing import loading
from core.editing.loading import MemoryOptions, load_family_pipeline
from core.editing.twins import build_tiny
from core.errors import ModelUnavailable

PHOTO = Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8))


def stock_edit(pipeline, family: str) -> np.ndarray:
    extra = {"max_area": 64 * 96, "_auto_resize": False} if family == "kontext" else {}
    return pipeline(prompt="make it snowy", image=PHOTO, height=64, width=96, num_inference_steps=2,
                    generator=torch.Generator().manual_seed(0), output_type="np", **extra).images[0]


@pytest.mark.parametrize("family", ["pix2pix-xl", "kontext", "flux2-klein"])
def test_a_saved_folder_loads_back_as_its_family_and_edits_the_same(tmp_path, family):
    tiny = build_tiny(family)
    tiny.save_pretrained(tmp_path / family)
    loaded = load_family_pipeline(family, str(tmp_path / family), device="cpu", offline=True)
    assert type(loaded) is type(tiny)
    # Within float32 rounding (0.003 of one 8-bit level): two instances of one pipeline may sum in another order.
    np.testing.assert_allclose(stock_edit(loaded, family), stock_edit(tiny, family), atol=1e-5, rtol=0)


def test_tiny_twins_are_deterministic_and_load_in_the_asked_dtype():
    first, second = build_tiny("flux2-klein"), load_family_pipeline("flux2-klein", "tiny", device="cpu")
    for a, b in zip(first.transformer.parameters(), second.transformer.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(next(build_tiny("flux2-klein", seed=1).transformer.parameters()),
                           next(first.transformer.parameters()))
    half = load_family_pipeline("kontext", "tiny", device="cpu", dtype="bfloat16")
    assert half.transformer.dtype == torch.bfloat16


def test_vae_tiling_is_switched_on_when_asked():
    pipeline = load_family_pipeline("flux2-klein", "tiny", device="cpu", memory=MemoryOptions(vae_tiling=True))
    assert pipeline.vae.use_tiling


@pytest.mark.parametrize(
    "family, source, options, message",
    [
        ("flux9", "tiny", {}, "Unknown model family 'flux9'"),
        ("flux2-klein", "klein.safetensors", {}, "flux2-klein cannot load a single-file checkpoint"),
        ("kontext", "{tmp}/nowhere.safetensors", {}, "No checkpoint file at"),
        ("kontext", "{tmp}/nowhere", {}, "No model folder at"),
        ("kontext", "{tmp}", {}, "not a diffusers model folder"),
        ("qwen-edit", "someone/not-cached-anywhere", {"offline": True}, "not in the local cache"),
        ("kontext", "full-random", {}, "does not fit this machine"),
        ("flux2-klein", "tiny", {"memory": MemoryOptions(cpu_offload=True), "device": "cpu"}, "needs a CUDA GPU"),
    ],
)
def test_every_way_of_not_getting_a_model_is_one_line(tmp_path, family, source, options, message):
    with pytest.raises(ModelUnavailable, match=message) as raised:
        load_family_pipeline(family, source.format(tmp=tmp_path), **options)
    assert "\n" not in str(raised.value)


def test_a_family_missing_from_the_installed_diffusers_is_one_line(monkeypatch):
    monkeypatch.setattr(loading, "installed", lambda family: False)
    with pytest.raises(ModelUnavailable, match="installed diffusers has no Flux2KleinPipeline, needed by flux2-klein"):
        load_family_pipeline("flux2-klein", "tiny", device="cpu")


def test_the_random_klein_4b_builder_materializes_every_weight(monkeypatch):
    """The 4B build itself is a benchmark (16 GB); here the same code builds a scaled-down copy and edits with it."""
    from core.editing import klein_4b

    monkeypatch.setattr(klein_4b, "KLEIN_4B_TRANSFORMER", {
        **klein_4b.KLEIN_4B_TRANSFORMER, "in_channels": 128, "num_layers": 1, "num_single_layers": 1,
        "attention_head_dim": 16, "num_attention_heads": 2, "joint_attention_dim": 48, "axes_dims_rope": (4, 4, 4, 4),
    })
    monkeypatch.setattr(klein_4b, "QWEN3_4B", {
        **klein_4b.QWEN3_4B, "hidden_size": 16, "intermediate_size": 16, "num_attention_heads": 2,
        "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 300, "max_position_embeddings": 512,
    })
    monkeypatch.setattr(klein_4b, "AutoencoderKLFlux2", lambda: build_tiny("flux2-klein").vae.__class__(
        block_out_channels=(8,), down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
        layers_per_block=1, latent_channels=32, norm_num_groups=8))
    pipeline = klein_4b.build_random_klein_4b(torch.bfloat16)
    for module in (pipeline.transformer, pipeline.text_encoder):
        assert not any(p.device.type == "meta" for p in module.parameters())
        assert {p.dtype for p in module.parameters()} == {torch.bfloat16}  # never a float32 copy: twice the memory
    pipeline.to(torch.float32)  # the edit below checks the plumbing, in float32 as CPUs compute it best
    pipeline.set_progress_bar_config(disable=True)
    out = pipeline(prompt="a hat", image=PHOTO, height=64, width=96, num_inference_steps=1,
                   generator=torch.Generator().manual_seed(0), output_type="np").images[0]
    assert out.shape == (64, 96, 3) and np.isfinite(out).all()
