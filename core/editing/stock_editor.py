"""The editor shared by the newer families: it runs a stock diffusers pipeline's own `__call__`, so its maths is the
pipeline's, and adds what the chat needs around it: a working size, seeds, progress, cancel, batching and
reference pictures. Each family's file (pix2pix_xl.py, kontext.py, flux2_klein.py, qwen_edit.py) says which
pipeline arguments its parameters become.

Batching: edits that differ only in their seed share one pipeline call (`num_images_per_prompt` with one generator
per image, so each image's noise is what it would be alone); other edits of one `edit_many` call run one after the
other, under one progress count and one cancel.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from core.domain import SEED_RANGE, EditParams
from core.editing.families import Family
from core.editing.pix2pix_parts import working_size
from core.errors import BadParams, EditCancelled
from core.ports import EditResult, ProgressCallback

Request = tuple  # (photo, instruction, params) or (photo, instruction, params, references)


class StockPipelineEditor:
    """Implements core.ports.Editor over a stock diffusers pipeline of `family` (set by each family's subclass).

    pipeline: the loaded pipeline (core.editing.sources.load_family_pipeline); never modified.
    max_side: longest side of the working resolution (default: the family's, what its model was trained at).
    keep_original_size: return results resized back to the input's size (default False: the working size).
    """

    family: Family

    def __init__(self, pipeline, *, max_side: int | None = None, keep_original_size: bool = False) -> None:
        self.max_side = max_side or self.family.max_side
        if self.max_side < self.family.latent_multiple:
            raise BadParams(f"The longest working side must be at least {self.family.latent_multiple} pixels.")
        self.pipeline = pipeline
        self.keep_original_size = keep_original_size

    # --- what each family says ------------------------------------------------------------------------------

    def pipeline_arguments(self, params: EditParams) -> dict:
        """The pipeline's keyword arguments for this family's parameters (besides steps and seed)."""
        raise NotImplementedError

    def image_argument(self, photo: Image.Image, references: Sequence[Image.Image]):
        """What the pipeline's `image` argument is for a photo and its reference pictures."""
        return photo

    def size_arguments(self, width: int, height: int) -> dict:
        """The pipeline's keyword arguments that make it work at (and return) this size."""
        return {"height": height, "width": width}

    def progress_arguments(self, on_step) -> dict:
        """The pipeline's keyword arguments that call on_step() after every denoising step."""

        def callback_on_step_end(pipeline, index, timestep, tensors):
            on_step()
            return {}

        return {"callback_on_step_end": callback_on_step_end}

    # --- the Editor protocol ----------------------------------------------------------------------------------

    def edit(
        self,
        image: Image.Image,
        instruction: str,
        params: EditParams,
        *,
        references: Sequence[Image.Image] = (),
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """Edit `image` as `instruction` says; `references` are further pictures the instruction may call
        "picture 2", "picture 3"... (families that take several). Raises BadParams or EditCancelled."""
        return self.edit_many([(image, instruction, params, tuple(references))], on_step=on_step, cancel=cancel)[0]

    def edit_batch(
        self,
        image: Image.Image,
        instruction: str,
        variants: Sequence[EditParams],
        *,
        references: Sequence[Image.Image] = (),
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[EditResult]:
        """Several renders of one photo and instruction; variants differing only in seed share one call."""
        requests = [(image, instruction, params, tuple(references)) for params in variants]
        return self.edit_many(requests, on_step=on_step, cancel=cancel)

    def edit_many(
        self,
        requests: Sequence[Request],
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[EditResult]:
        """Several edits (photo, instruction, params[, references]) sharing `batch_key`; each result equals what
        `edit` gives for it alone. on_step and cancel cover the whole batch."""
        started = time.perf_counter()
        rendered = self._render(requests, on_step=on_step, cancel=cancel)
        seconds = (time.perf_counter() - started) / len(rendered)
        results = []
        for request, (array, used) in zip(requests, rendered):
            result = Image.fromarray((array * 255).round().astype(np.uint8))
            if self.keep_original_size and result.size != request[0].size:
                result = result.resize(request[0].size, Image.Resampling.LANCZOS)
            results.append(EditResult(image=result, params=used, seconds=seconds))
        return results

    def batch_key(self, image: Image.Image, params: EditParams) -> tuple:
        """What edits must share to run in one `edit_many` call: (family, working size, steps)."""
        return self.family.name, self.working_size(image.size), params.steps

    def working_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size a picture of `size` is edited at (core.ports.Editor): aspect kept, longest side at most max_side,
        sides multiples of the family's latent multiple."""
        width, height = working_size(*size, self.max_side)
        multiple = self.family.latent_multiple
        return max(multiple, width // multiple * multiple), max(multiple, height // multiple * multiple)

    def edit_to_array(self, image, instruction, params, *, references=(), on_step=None, cancel=None):
        """The edit as a float32 HxWx3 array in [0, 1] at the working size, and the params used."""
        return self._render([(image, instruction, params, tuple(references))], on_step=on_step, cancel=cancel)[0]

    # --- the run ------------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def _render(self, requests, *, on_step=None, cancel=None) -> list[tuple[np.ndarray, EditParams]]:
        # 1. Check the inputs, pick seeds where none is given.
        if not requests:
            raise BadParams("Ask for at least one edit.")
        requests = [(*request, ()) if len(request) == 3 else tuple(request) for request in requests]
        variants = [self._checked(params, references) for _, _, params, references in requests]
        if not all(isinstance(instruction, str) and instruction.strip() for _, instruction, _, _ in requests):
            raise BadParams("Write an instruction saying what to change, e.g. 'make it snowy'.")
        if len({self.batch_key(photo, params) for (photo, _, _, _), params in zip(requests, variants)}) > 1:
            raise BadParams("Edits run together must share their working size and steps.")

        # 2. Group the edits that differ only in their seed: each group is one pipeline call.
        groups: dict[tuple, list[int]] = {}
        for index, ((photo, instruction, _, references), params) in enumerate(zip(requests, variants)):
            key = (id(photo), instruction.strip(), tuple(map(id, references)), replace(params, seed=None))
            groups.setdefault(key, []).append(index)

        # 3. Progress counts every step of every call; cancel is checked before every call and after every step.
        done, total = [0], len(groups) * variants[0].steps

        def step() -> None:
            done[0] += 1
            if on_step is not None:
                on_step(done[0], total)
            if cancel is not None and cancel.is_set():
                raise EditCancelled("Edit cancelled.")

        # 4. Run each group at the working size, one CPU generator per image (the same noise on every device).
        arrays: dict[int, np.ndarray] = {}
        for indices in groups.values():
            if cancel is not None and cancel.is_set():
                raise EditCancelled("Edit cancelled.")
            photo, instruction, _, references = requests[indices[0]]
            params = variants[indices[0]]
            width, height = self.working_size(photo.size)
            generators = [torch.Generator(device="cpu").manual_seed(variants[i].seed) for i in indices]
            images = self.pipeline(
                prompt=instruction.strip(),
                image=self.image_argument(photo.convert("RGB"), [r.convert("RGB") for r in references]),
                **self.size_arguments(width, height),
                num_inference_steps=params.steps,
                num_images_per_prompt=len(indices),
                generator=generators[0] if len(generators) == 1 else generators,
                output_type="np",
                **self.pipeline_arguments(params),
                **self.progress_arguments(step),
            ).images
            for index, array in zip(indices, images):
                arrays[index] = np.asarray(array, dtype=np.float32)

        # 5. Each result with the params actually used (the seed always set).
        return [(arrays[index], variants[index]) for index in range(len(requests))]

    def _checked(self, params: EditParams, references: Sequence[Image.Image]) -> EditParams:
        params = self.family.validated(params.validated())
        if len(references) > self.family.pictures - 1:
            if self.family.pictures == 1:
                raise BadParams(f"{self.family.name} edits one picture; switch to a model that takes references.")
            raise BadParams(f"{self.family.name} takes at most {self.family.pictures - 1} reference pictures.")
        if params.seed is None:
            params = params.with_seed(secrets.randbelow(SEED_RANGE[1] + 1))
        return params
