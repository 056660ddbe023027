"""EDITBOT_MODELS parsing, the settings that carry it, and the registry that keeps at most N models loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from core.config import EditorSettings
from core.editing import registry
from core.editing.families import FAMILIES
from core.editing.loading import build_editor, load_family_pipeline
from core.editing.registry import ModelRegistry, ModelSpec, infer_family, parse_models
from core.errors import BadParams, ModelUnavailable


def test_models_are_name_source_pairs_the_first_the_default_with_families_given_or_inferred(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxKontextPipeline"}))
    specs = parse_models(
        f"ip2p=timbrooks/instruct-pix2pix, klein = flux2-klein:/models/k ,qwen=Qwen/Qwen-Image-Edit-2509, mine={folder}"
    )
    assert specs == [
        ModelSpec("ip2p", "pix2pix", "timbrooks/instruct-pix2pix"),
        ModelSpec("klein", "flux2-klein", "/models/k"),
        ModelSpec("qwen", "qwen-edit", "Qwen/Qwen-Image-Edit-2509"),
        ModelSpec("mine", "kontext", str(folder)),
    ]


@pytest.mark.parametrize(
    "source, family",
    [
        ("black-forest-labs/FLUX.1-Kontext-dev", "kontext"),
        ("black-forest-labs/FLUX.2-klein-9B", "flux2-klein"),
        ("diffusers/sdxl-instructpix2pix-768", "pix2pix-xl"),
        ("osunlp/InstructPix2Pix-MagicBrush", "pix2pix"),
        ("tiny", "pix2pix"),
        ("someone/some-model", None),
    ],
)
def test_families_are_inferred_from_well_known_sources(source, family):
    assert infer_family(source) == family


@pytest.mark.parametrize(
    "value, message",
    [
        ("a=flux9:x/y", "unknown model family 'flux9'"),
        ("a=someone/model", "cannot tell the family of 'someone/model'"),
        ("a=tiny, a=kontext:tiny", "given twice"),
        ("just-a-source", "is not name=source"),
        ("Big Name=tiny", "lowercase letters"),
        (" , ", "at least one model"),
    ],
)
def test_bad_model_lists_say_what_is_wrong_in_one_line(value, message):
    with pytest.raises(ValueError, match=message) as raised:
        parse_models(value)
    assert "\n" not in str(raised.value)


def test_a_family_the_installed_diffusers_lacks_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "installed", lambda family: family.name != "qwen-edit")
    with pytest.raises(ValueError, match="installed diffusers has no QwenImageEditPlusPipeline"):
        parse_models("q=qwen-edit:tiny")


def test_settings_read_the_models_and_memory_options_and_refuse_bad_ones(monkeypatch):
    monkeypatch.setenv("EDITBOT_MODELS", "klein=flux2-klein:tiny,ip2p=tiny")
    monkeypatch.setenv("EDITBOT_MODELS_LOADED", "2")
    monkeypatch.setenv("EDITBOT_VAE_TILING", "true")
    settings = EditorSettings(_env_file=None)
    assert [spec.name for spec in settings.model_specs] == ["klein", "ip2p"]
    assert settings.models_loaded == 2 and settings.vae_tiling and not settings.cpu_offload
    monkeypatch.setenv("EDITBOT_MODELS", "x=nope:tiny")
    with pytest.raises(ValidationError, match="unknown model family 'nope'"):
        EditorSettings(_env_file=None)
    monkeypatch.delenv("EDITBOT_MODELS")
    monkeypatch.setenv("EDITBOT_MODELS_LOADED", "0")
    with pytest.raises(ValidationError):
        EditorSettings(_env_file=None)
    monkeypatch.delenv("EDITBOT_MODELS_LOADED")
    assert EditorSettings(_env_file=None).model_specs == [ModelSpec("default", "pix2pix", "timbrooks/instruct-pix2pix")]


def load_tiny(spec: ModelSpec):
    return build_editor(spec.family, load_family_pipeline(spec.family, spec.source, device="cpu"), max_side=64)


def test_the_registry_loads_lazily_and_keeps_the_most_recently_used_models():
    loads = []
    specs = [ModelSpec("ip2p", "pix2pix", "tiny"), ModelSpec("klein", "flux2-klein", "tiny"),
             ModelSpec("kontext", "kontext", "tiny")]
    models = ModelRegistry(specs, lambda spec: loads.append(spec.name) or load_tiny(spec), keep_loaded=2)
    assert models.names() == ["ip2p", "klein", "kontext"] and models.loaded() == [] and loads == []
    assert models.family("klein") is FAMILIES["flux2-klein"]
    first = models.editor()
    assert models.editor("ip2p") is first and loads == ["ip2p"]
    klein = models.editor("klein")
    photo = Image.fromarray(np.full((64, 64, 3), 120, np.uint8))
    assert klein.edit(photo, "make it red", FAMILIES["flux2-klein"].defaults().with_seed(1)).image.size == (64, 64)
    models.editor("ip2p")  # now klein is the least recently used
    models.editor("kontext")
    assert models.loaded() == ["ip2p", "kontext"] and not models.is_loaded("klein")
    assert loads == ["ip2p", "klein", "kontext"]
    with pytest.raises(BadParams, match="no model called 'sdxl'; choose one of: ip2p, klein, kontext"):
        models.editor("sdxl")


def test_a_model_that_fails_to_load_is_tried_again_next_time():
    attempts = []

    def flaky(spec):
        attempts.append(spec.name)
        if len(attempts) == 1:
            raise ModelUnavailable("Could not download model x/y.")
        return object()

    models = ModelRegistry([ModelSpec("a", "pix2pix", "x/y")], flaky)
    with pytest.raises(ModelUnavailable):
        models.editor("a")
    assert models.editor("a") is not None and attempts == ["a", "a"]
