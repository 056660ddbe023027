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
    np.testing.assert_allclose(stock_edit(loaded, family), stock_edit(tiny, family), atol=1e-6, rtol=0)


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
