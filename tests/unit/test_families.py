"""The per-family parameter declarations: defaults, ranges, where values live in EditParams, captions."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from core.domain import EditParams
from core.editing.families import FAMILIES, family_named, installed
from core.errors import BadParams


def test_every_family_declares_steps_and_seed_and_its_own_guidance():
    assert {name: [p.name for p in family.tunable()] for name, family in FAMILIES.items()} == {
        "pix2pix": ["text_guidance", "image_guidance"],
        "pix2pix-xl": ["text_guidance", "image_guidance"],
        "kontext": ["guidance"],
        "flux2-klein": ["guidance"],
        "qwen-edit": ["true_cfg_scale"],
    }
    for family in FAMILIES.values():
        names = [p.name for p in family.parameters]
        assert "steps" in names and "seed" in names and installed(family)
        assert all(p.meaning and "\n" not in p.meaning for p in family.parameters)
    assert [f.pictures for f in FAMILIES.values()] == [1, 1, 1, 4, 3]


def test_pix2pix_defaults_are_exactly_the_long_standing_edit_params():
    assert FAMILIES["pix2pix"].defaults() == EditParams()


def test_family_values_live_in_extras_and_shared_ones_in_their_fields():
    qwen = family_named("qwen-edit")
    params = qwen.with_value(qwen.with_value(qwen.defaults(), "true_cfg_scale", 5.5), "steps", 12)
    assert params.family == "qwen-edit" and params.steps == 12
    assert qwen.value(params, "true_cfg_scale") == 5.5 and qwen.value(params, "negative_prompt") == " "
    assert qwen.validated(params) is params
    caption = "qwen-edit · true cfg scale 5.5 · negative prompt - · 12 steps · seed 3"
    assert qwen.describe(params.with_seed(3)) == caption


def test_edit_params_with_extras_survive_a_json_round_trip_and_stay_hashable():
    params = family_named("kontext").defaults().with_seed(9)
    back = EditParams(**json.loads(json.dumps(asdict(params))))
    assert back == params and hash(back) == hash(params)


@pytest.mark.parametrize(
    "family, name, value, message",
    [
        ("kontext", "guidance", 0.5, "Guidance must be a number from 1 to 10."),
        ("pix2pix-xl", "image_guidance", 0.5, "Image guidance must be a number from 1 to 5."),
        ("flux2-klein", "steps", 2.5, "Steps must be a whole number from 1 to 100."),
        ("qwen-edit", "negative_prompt", 3, "Negative prompt must be text"),
        ("kontext", "image_guidance", 1.0, "kontext has no setting 'image_guidance'; its settings are: guidance"),
    ],
)
def test_bad_values_are_refused_in_one_line(family, name, value, message):
    with pytest.raises(BadParams, match=message):
        family_named(family).with_value(family_named(family).defaults(), name, value)


def test_unknown_families_and_foreign_values_are_refused():
    with pytest.raises(BadParams, match="Unknown model family 'sd3'; known families: pix2pix"):
        family_named("sd3")
    with pytest.raises(BadParams, match="no setting 'true_cfg_scale'"):
        family_named("kontext").validated(family_named("kontext").defaults().with_extra("true_cfg_scale", 2.0))
