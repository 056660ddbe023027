"""Qwen-Image-Edit (`qwen-edit`): QwenImageEditPlusPipeline (2509/2511 releases), the photo plus up to 2 references.

Defaults (core.editing.families): true_cfg_scale 4.0, negative prompt " ", 40 steps (Qwen/Qwen-Image-Edit-2511
model card). True CFG runs the transformer twice per step (instruction and negative prompt); it is on whenever
true_cfg_scale > 1, since a negative prompt is always passed. The pipeline tells the text encoder about each
picture as "Picture 1: ...", "Picture 2: ...", so instructions can refer to them by number.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.domain import EditParams
from core.editing.families import FAMILIES
from core.editing.stock_editor import StockPipelineEditor


class QwenEditEditor(StockPipelineEditor):
    """Edits with a Qwen-Image-Edit Plus pipeline (implements core.ports.Editor)."""

    family = FAMILIES["qwen-edit"]

    def pipeline_arguments(self, params: EditParams) -> dict:
        return {
            "true_cfg_scale": self.family.value(params, "true_cfg_scale"),
            "negative_prompt": self.family.value(params, "negative_prompt"),
        }

    def image_argument(self, photo: Image.Image, references: Sequence[Image.Image]):
        return [photo, *references]
