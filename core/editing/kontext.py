"""FLUX.1 Kontext (`kontext`): FluxKontextPipeline, one picture in.

Defaults (core.editing.families): guidance 2.5 (FLUX.1-Kontext-dev model card), 28 steps (the pipeline's default),
at most 1024 px. Kontext's guidance is distilled into the transformer (a guidance embedding, one model call per
step); true CFG with a negative prompt is left off, as the model card does.
"""

from __future__ import annotations

from core.domain import EditParams
from core.editing.families import FAMILIES
from core.editing.stock_editor import StockPipelineEditor


class KontextEditor(StockPipelineEditor):
    """Edits with a FLUX.1 Kontext pipeline (implements core.ports.Editor).

    auto_resize: let the pipeline resize the photo it conditions on to the nearest of the resolutions Kontext was
        trained at (default True, as the pipeline does); the result keeps our working size either way.
    """

    family = FAMILIES["kontext"]

    def __init__(self, pipeline, *, max_side=None, keep_original_size=False, auto_resize: bool = True) -> None:
        super().__init__(pipeline, max_side=max_side, keep_original_size=keep_original_size)
        self.auto_resize = auto_resize

    def size_arguments(self, width: int, height: int) -> dict:
        # The pipeline rescales height and width to max_area (keeping their ratio); width * height keeps them.
        return {"height": height, "width": width, "max_area": width * height}

    def pipeline_arguments(self, params: EditParams) -> dict:
        return {
            "guidance_scale": self.family.value(params, "guidance"),
            "_auto_resize": self.auto_resize,
        }
