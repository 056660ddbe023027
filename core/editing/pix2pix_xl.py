"""SDXL InstructPix2Pix (`pix2pix-xl`): StableDiffusionXLInstructPix2PixPipeline, one picture in.

Defaults (core.editing.families): text guidance 3.0, image guidance 1.5, 30 steps at 768 px, from the
diffusers/sdxl-instructpix2pix-768 model card. The guidance formula is InstructPix2Pix's three-row one.
"""

from __future__ import annotations

from core.domain import EditParams
from core.editing.families import FAMILIES
from core.editing.stock_editor import StockPipelineEditor


class Pix2PixXLEditor(StockPipelineEditor):
    """Edits with an SDXL InstructPix2Pix pipeline (implements core.ports.Editor)."""

    family = FAMILIES["pix2pix-xl"]

    def pipeline_arguments(self, params: EditParams) -> dict:
        return {"guidance_scale": params.text_guidance, "image_guidance_scale": params.image_guidance}

    def progress_arguments(self, on_step) -> dict:
        # This pipeline has only the older per-step callback (step index, timestep, latents).
        return {"callback": lambda index, timestep, latents: on_step(), "callback_steps": 1}
