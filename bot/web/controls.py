"""The settings controls of the web page's side panel: the values of the conversation's model family, and what the
page needs to draw a control for each one (its range, the command a change sends), so a conversation on FLUX.2 klein
or Qwen gets that model's controls rather than InstructPix2Pix's."""

from __future__ import annotations

from core.conversation.tuning import NO_NEGATIVE, SETTING_COMMANDS
from core.domain import EditParams
from core.editing.families import family_named

FLOAT_STEP = 0.01
"""Settings are kept to two decimals (Parameter.clamp), so every value a command or Stronger sets is on the slider."""


def settings_panel(settings: EditParams) -> dict:
    """{"family", "settings": every value by name, "controls": one per setting but the seed (the page's own seed
    box and Random switch)}."""
    family = family_named(settings.family)
    controls = []
    for parameter in family.parameters:
        if parameter.name == "seed":
            continue
        control = {"name": parameter.name, "label": parameter.name.replace("_", " ").capitalize(),
                   "kind": parameter.kind, "meaning": parameter.meaning,
                   "command": f"/{SETTING_COMMANDS[parameter.name]}"}
        if parameter.kind == "text":
            control["clear"] = NO_NEGATIVE  # what the command takes for "none"
        else:
            control |= {"low": parameter.low, "high": parameter.high,
                        "step": 1 if parameter.kind == "int" else FLOAT_STEP}
        controls.append(control)
    return {"family": family.name,
            "settings": {parameter.name: family.value(settings, parameter.name) for parameter in family.parameters},
            "controls": controls}
