"""What the conversation's model choice means for an edit: the settings a model can run, the caption line of any
family's values, and the one line refusing reference pictures a model cannot take. Plain functions over the
enabled models (core.editing.registry) and the families' declarations (core.editing.families)."""

from __future__ import annotations

from dataclasses import replace

from core.domain import EditParams
from core.editing.families import Family, family_named
from core.editing.registry import ModelRegistry
from core.errors import BadParams


def runnable(models: ModelRegistry, settings: EditParams) -> EditParams:
    """settings as the conversation's model can run them: a model the operator no longer enables falls back to
    the default one, and settings of another family (the default model's family changed, say) to the model's
    family defaults, the pinned seed kept."""
    if settings.model and settings.model not in models.specs:
        settings = replace(settings, model="")
    family = models.family(settings.model or models.default)
    if settings.family != family.name:
        settings = replace(family.defaults(), model=settings.model, seed=settings.seed)
    return settings


def describe(params: EditParams) -> str:
    """Every value of params, as its family declares them (pix2pix's line as it has always read), and the model
    when it is not the default one."""
    line = params.describe() if params.family == "pix2pix" else family_named(params.family).describe(params)
    return f"{line} · model {params.model}" if params.model else line


def refuse_references(family: Family, count: int, models: ModelRegistry) -> None:
    """BadParams (one line) when `family` cannot take `count` reference pictures besides the photo; it points to
    /model when another enabled model takes several."""
    if family.pictures == 1:
        if any(models.family(name).takes_references for name in models.specs):
            where = "/model lists the models that take several (send /ref clear to drop them)."
        else:
            where = "none of the models on this bot takes several."
        raise BadParams(f"This model ({family.name}) edits one picture only, so it takes no reference pictures: "
                        + where)
    if count > family.pictures - 1:
        raise BadParams(f"This model ({family.name}) takes at most {family.pictures - 1} reference pictures "
                        "besides your photo: send /ref clear to start the references again.")
