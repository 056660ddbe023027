"""FLUX.2 [klein] (`flux2-klein`): Flux2KleinPipeline, the photo plus up to 3 reference pictures.

Defaults (core.editing.families): 4 steps, guidance 1.0 (FLUX.2-klein-4B model card; the 4B and 9B releases are
step- and guidance-distilled, so the guidance acts only on the Base variants, whose config says is_distilled false).
The pipeline takes a list of pictures: the photo first, then the references, in the order the instruction names
them ("picture 2" is the first reference).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from core.domain import EditParams
from core.editing.families import FAMILIES
from core.editing.stock_editor import StockPipelineEditor


class Flux2KleinEditor(StockPipelineEditor):
    """Edits with a FLUX.2 [klein] pipeline (implements core.ports.Editor)."""

    family = FAMILIES["flux2-klein"]

    def pipeline_arguments(self, params: EditParams) -> dict:
        return {"guidance_scale": self.family.value(params, "guidance")}

    def image_argument(self, photo: Image.Image, references: Sequence[Image.Image]):
        return [photo, *references] if references else photo
