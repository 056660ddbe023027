"""The InstructPix2Pix editor: our own denoising loop over a StableDiffusionInstructPix2PixPipeline's components.

Written like a diffusers pipeline file: `Pix2PixEditor._render` runs in numbered steps, and in exact mode it
reproduces the stock pipeline's output (within float rounding) while doing less work:

- UNet rows whose guidance coefficient is zero are not computed (image guidance 1.0 needs 2 rows, not 3);
- image latents and text embeddings are cached, so a retry or variation on the same photo and instruction skips the
  VAE encoder and the text encoder;
- several edits are denoised together, one UNet call per step (`edit_many`: different photos and instructions of
  one working size, steps and scheduler; `edit_batch`: variants of one photo and instruction), each result equal to
  the edit run alone;
- unlike the stock pipeline, an image guidance below 1 is honoured (see `Pix2PixEditor._render`).

Fast mode (opt-in) trades a little fidelity for speed: bfloat16 with channels-last memory on CPU and DeepCache
(core.editing.deepcache).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence

import numpy as np
import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    StableDiffusionInstructPix2PixPipeline,
)
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from core.domain import SCHEDULERS, EditParams
from core.editing.deepcache import DeepCacheUNet
from core.editing.pix2pix_parts import (
    CACHE_SIZE,
    DEEPCACHE_INTERVAL,
    LATENT_MULTIPLE,
    LRU,
    bfloat16_copy,
    combine_guidance,
    guidance_rows,
    resized,
    vae_pixels,
    with_seed,
    working_size,
)
from core.editing.pix2pix_parts import (
    step_kwargs as scheduler_step_kwargs,
)
from core.errors import BadParams, EditCancelled, UnsafeImage
from core.ports import EditResult, ProgressCallback

logger = logging.getLogger(__name__)

class Pix2PixEditor:
    """Edits images with an InstructPix2Pix pipeline (implements core.ports.Editor).

    pipeline: a loaded StableDiffusionInstructPix2PixPipeline (see core.editing.sources.load_pipeline); the editor
        runs on its device and dtype and never calls its `__call__` or changes its scheduler.
    max_side: longest side of the working resolution (default 512, what the model was trained at).
    keep_original_size: return results resized back to the input's size (default False: the working size).
    scheduler: what EditParams.scheduler "default" means here (default "default": the model's own scheduler).
    fast: opt-in speed-ups that change the result slightly (default False):
        - on CPU, a float32 model's UNet and VAE run in bfloat16 with channels-last memory (copies: +half their size
          in memory); channels-last made these bfloat16 convolutions about 1.4x faster on CPU (docs/performance.md);
        - DeepCache: every other step reuses the deep UNet features of the previous step and runs only the
          shallowest down and up blocks (details lose some sharpness at low step counts).
    safety_checker: run the pipeline's safety checker, when it has one, and refuse flagged results (default True).
    compile: torch.compile the UNet on CUDA (default False: slow first edit, faster after).
    """

    def __init__(
        self,
        pipeline: StableDiffusionInstructPix2PixPipeline,
        *,
        max_side: int = 512,
        keep_original_size: bool = False,
        scheduler: str = "default",
        fast: bool = False,
        safety_checker: bool = True,
        compile: bool = False,
    ) -> None:
        if scheduler not in SCHEDULERS:
            raise BadParams(f"Scheduler must be one of: {', '.join(SCHEDULERS)}.")
        if max_side < LATENT_MULTIPLE:
            raise BadParams(f"The longest working side must be at least {LATENT_MULTIPLE} pixels.")
        self.pipeline = pipeline
        self.max_side = max_side
        self.keep_original_size = keep_original_size
        self.default_scheduler = scheduler
        self.fast = fast
        self.safety_checker = safety_checker
        self.device = pipeline.unet.device
        self.dtype = pipeline.unet.dtype
        self._schedulers: dict[str, object] = {}
        self._image_latents = LRU(CACHE_SIZE)
        self._text_embeddings = LRU(CACHE_SIZE)
        self._unet = pipeline.unet
        if self.device.type == "cuda":
            # diffusers uses PyTorch's scaled-dot-product attention by default; channels_last speeds up its convs
            self._unet.to(memory_format=torch.channels_last)
            if compile:
                self._unet = torch.compile(self._unet)
        self._vae = pipeline.vae
        self._fast_unet: DeepCacheUNet | None = None
        if fast:
            fast_unet = pipeline.unet
            if self.device.type == "cpu" and self.dtype == torch.float32:
                # bfloat16 copies: the pipeline's own float32 modules stay untouched for anyone else using them
                fast_unet = bfloat16_copy(pipeline.unet)
                self._vae = bfloat16_copy(pipeline.vae)
            self._fast_unet = DeepCacheUNet(fast_unet)
            if not self._fast_unet.supported:
                logger.warning("This UNet has parts DeepCache does not handle; fast mode runs it in full every step.")
        # Read once: a module's dtype walks its parameters (about a millisecond per edit on the tiny model's VAE).
        self._vae_dtype = self._vae.dtype

    # --- the Editor protocol ------------------------------------------------------------------------------------

    def edit(
        self,
        image: Image.Image,
        instruction: str,
        params: EditParams,
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> EditResult:
        """Edit `image` as `instruction` says. Returns the result at the working size (or the input's size when
        keep_original_size) with the params actually used (the seed always set).

        Raises BadParams, EditCancelled (cancel set; checked before every step) or UnsafeImage.
        """
        return self.edit_many([(image, instruction, params)], on_step=on_step, cancel=cancel)[0]

    def edit_many(
        self,
        requests: Sequence[tuple[Image.Image, str, EditParams]],
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[EditResult]:
        """Several edits (photo, instruction, params), denoised together in one UNet call per step: a worker's
        compatible jobs. They must share `batch_key` (working size, steps and scheduler; BadParams otherwise) and may
        differ in photo, instruction, guidance and seed. Each sample keeps its own seed, guidance and scheduler state,
        so each result equals what `edit` gives for it alone (to float rounding); each result's seconds is its share
        of the batch's time. on_step and cancel cover the whole batch. Raises UnsafeImage when the checker flags any
        result (run the edits alone to refuse only the flagged one).
        """
        started = time.perf_counter()
        rendered = self._render(requests, on_step=on_step, cancel=cancel)
        seconds = (time.perf_counter() - started) / len(rendered)
        results = []
        for (image, _, _), (array, used) in zip(requests, rendered):
            result = Image.fromarray((array * 255).round().astype(np.uint8))
            if self.keep_original_size and result.size != image.size:
                result = result.resize(image.size, Image.Resampling.LANCZOS)
            results.append(EditResult(image=result, params=used, seconds=seconds))
        return results

    def edit_batch(
        self,
        image: Image.Image,
        instruction: str,
        variants: Sequence[EditParams],
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[EditResult]:
        """Several renders of one photo and instruction, denoised together (`edit_many`; the photo and the text are
        encoded once). Variants may differ in guidance and seed, not in steps or scheduler."""
        return self.edit_many([(image, instruction, params) for params in variants], on_step=on_step, cancel=cancel)

    def batch_key(self, image: Image.Image, params: EditParams) -> tuple:
        """What edits must share to run in one `edit_many` call: (working size, steps, scheduler actually used)."""
        return working_size(*image.size, self.max_side), params.steps, self._scheduler_name(params.scheduler)

    def working_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size an image of `size` is edited at (results come back at it unless keep_original_size)."""
        return working_size(*size, self.max_side)

    def edit_to_array(
        self,
        image: Image.Image,
        instruction: str,
        params: EditParams,
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[np.ndarray, EditParams]:
        """The edit as a float32 HxWx3 array in [0, 1] at the working size, and the params used."""
        return self._render([(image, instruction, params)], on_step=on_step, cancel=cancel)[0]

    # --- the loop ---------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def _render(
        self,
        requests: Sequence[tuple[Image.Image, str, EditParams]],
        *,
        on_step: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[tuple[np.ndarray, EditParams]]:
        """Denoise every (photo, instruction, params) together; (float array in [0, 1] at the working size, params
        used) for each.

        One scheduler steps the whole batch: every sample shares its timesteps, and the schedulers' updates are
        per-sample arithmetic, so its state is each sample's own state side by side. Each sample draws its noise
        from its own generator, as if it ran alone.

        Guidance follows the numbers given for every image guidance in [0, 5]. The stock pipeline turns ALL
        guidance off (one unguided row) when image guidance is below 1 or text guidance is at most 1; we
        deliberately do not, so an image guidance of 0.8 means "keep a little less of the photo than 1.0", as a
        person choosing it expects.
        """
        # 1. Check the inputs, pick seeds where none is given.
        if not requests:
            raise BadParams("Ask for at least one edit.")
        variants = [with_seed(params.validated()) for _, _, params in requests]
        instructions = [instruction for _, instruction, _ in requests]
        if not all(isinstance(instruction, str) and instruction.strip() for instruction in instructions):
            raise BadParams("Write an instruction saying what to change, e.g. 'make it snowy'.")

        # 2. Resize each photo to the working resolution (aspect kept, no crop); the same photo object once.
        photos: dict[int, Image.Image] = {}
        for image, _, _ in requests:
            if id(image) not in photos:
                photos[id(image)] = resized(image.convert("RGB"), self.max_side)
        if len({self.batch_key(image, params) for (image, _, _), params in zip(requests, variants)}) > 1:
            raise BadParams("Edits run together must share their working size, steps and scheduler.")
        scheduler = self._scheduler(variants[0].scheduler)
        # CPU generators give the same noise for a seed on every device; one per sample, as if each ran alone.
        generators = [torch.Generator(device="cpu").manual_seed(params.seed) for params in variants]
        generator = generators[0] if len(generators) == 1 else generators

        # 3. Encode the instructions, and the empty prompt for the unconditioned rows (cached).
        rows = [guidance_rows(params.text_guidance, params.image_guidance) for params in variants]
        text_embeds = [self._encode_text(instruction.strip()) for instruction in instructions]
        empty_embeds = self._encode_text("") if any(len(needed) > 1 for needed in rows) else None

        # 4. Encode the photos to latents (cached). InstructPix2Pix uses the distribution's mode, unscaled.
        latents_by_photo = {key: self._encode_image(resized) for key, resized in photos.items()}
        image_latents = [latents_by_photo[id(image)] for image, _, _ in requests]

        # 5. Batch the rows each sample needs: (prompt, photo), (empty prompt, photo), (empty prompt, no photo).
        batch_rows = []
        for needed, text, photo_latents in zip(rows, text_embeds, image_latents):
            conditions = {
                "text": (text, photo_latents),
                "image": (empty_embeds, photo_latents),
                "uncond": (empty_embeds, torch.zeros_like(photo_latents)),
            }
            batch_rows += [conditions[row] for row in needed]
        context = torch.cat([embeds for embeds, _ in batch_rows])
        photo = torch.cat([photo_latents for _, photo_latents in batch_rows])
        repeats = torch.tensor([len(needed) for needed in rows], device=self.device)

        # 6. Set the timesteps and draw the starting noise (same draw order as the stock pipeline).
        scheduler.set_timesteps(variants[0].steps, device=self.device)
        latents = randn_tensor(
            (len(variants), self.pipeline.vae.config.latent_channels, *photo.shape[-2:]),
            generator=generator,
            device=self.device,
            dtype=self.dtype,
        )
        latents = latents * scheduler.init_noise_sigma
        step_kwargs = scheduler_step_kwargs(scheduler, generator)

        # 7. Denoise.
        predict = self._noise_predictor(context, photo)
        timesteps = scheduler.timesteps
        for index, timestep in enumerate(timesteps):
            if cancel is not None and cancel.is_set():
                raise EditCancelled("Edit cancelled.")
            if len(variants) == 1:  # as the stock pipeline: copies of the latents, then scaled
                model_input = scheduler.scale_model_input(torch.cat([latents] * len(batch_rows)), timestep)
            else:
                model_input = scheduler.scale_model_input(latents, timestep).repeat_interleave(repeats, dim=0)
            prediction = predict(torch.cat([model_input, photo], dim=1), timestep, index).split(repeats.tolist())
            noise = torch.cat(
                [
                    combine_guidance(dict(zip(needed, rows_out.chunk(len(needed)))), p.text_guidance, p.image_guidance)
                    for needed, rows_out, p in zip(rows, prediction, variants)
                ]
            )
            latents = scheduler.step(noise, timestep, latents, **step_kwargs, return_dict=False)[0]
            if on_step is not None:
                on_step(index + 1, len(timesteps))

        # 8. Decode one by one (the VAE decoder is memory-hungry), as the stock pipeline does, to floats in [0, 1].
        vae = self._vae
        arrays = []
        for sample in latents.split(1):
            decoded = vae.decode((sample / vae.config.scaling_factor).to(self._vae_dtype), return_dict=False)[0]
            arrays.append(self.pipeline.image_processor.postprocess(decoded, output_type="np")[0])

        # 9. Refuse what the safety checker flags (the stock pipeline would return a black picture).
        self._check_safety(np.stack(arrays))
        return list(zip(arrays, variants))

    # --- helpers ----------------------------------------------------------------------------------------------

    def _noise_predictor(self, context: torch.Tensor, photo: torch.Tensor):
        """A function (model_input, timestep, step index) -> noise prediction for the batched rows."""
        if self._fast_unet is None:
            unet = self._unet

            def exact(model_input, timestep, index):
                return unet(model_input, timestep, encoder_hidden_states=context, return_dict=False)[0]

            return exact

        fast_unet = self._fast_unet
        fast_unet.reset()
        fast_dtype = fast_unet.unet.dtype
        fast_context = context.to(fast_dtype)

        def fast(model_input, timestep, index):
            reuse = index % DEEPCACHE_INTERVAL != 0
            return fast_unet(model_input.to(fast_dtype), timestep, fast_context, reuse=reuse).to(self.dtype)

        return fast

    def _scheduler_name(self, name: str) -> str:
        """The scheduler EditParams.scheduler `name` stands for in this editor."""
        return self.default_scheduler if name == "default" else name

    def _scheduler(self, name: str):
        """Our own scheduler instance per name, built from the model's scheduler config (so the pipeline's own
        scheduler object, perhaps used elsewhere, is never stepped by us)."""
        name = self._scheduler_name(name)
        if name not in self._schedulers:
            config = self.pipeline.scheduler.config
            if name == "default":
                scheduler = type(self.pipeline.scheduler).from_config(config)
            elif name == "euler-a":
                scheduler = EulerAncestralDiscreteScheduler.from_config(config)
            elif name == "ddim":
                # SD's own DDIM settings: no clipping of the predicted sample (latents are not in [-1, 1]).
                scheduler = DDIMScheduler.from_config(config, clip_sample=False, set_alpha_to_one=False)
            else:  # "dpm++": DPM-Solver++(2M), the usual "DPM++ 2M"
                scheduler = DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++")
            self._schedulers[name] = scheduler
        return self._schedulers[name]

    def _encode_text(self, text: str) -> torch.Tensor:
        key = (text, self.dtype, self.device)
        embeds = self._text_embeddings.get(key)
        if embeds is None:
            tokenizer, text_encoder = self.pipeline.tokenizer, self.pipeline.text_encoder
            tokens = tokenizer(
                text, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
            )
            mask = None
            if getattr(text_encoder.config, "use_attention_mask", False):
                mask = tokens.attention_mask.to(self.device)
            embeds = text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0]
            embeds = embeds.to(dtype=text_encoder.dtype, device=self.device)
            self._text_embeddings.put(key, embeds)
        return embeds

    def _encode_image(self, image: Image.Image) -> torch.Tensor:
        digest = hashlib.sha256(image.tobytes()).hexdigest()
        key = (digest, image.size, self.dtype, self.device)
        latents = self._image_latents.get(key)
        if latents is None:
            pixels = vae_pixels(image, self.pipeline.image_processor).to(device=self.device, dtype=self._vae_dtype)
            latents = self._vae.encode(pixels).latent_dist.mode().to(self.dtype)
            self._image_latents.put(key, latents)
        return latents

    def _check_safety(self, arrays: np.ndarray) -> None:
        if not self.safety_checker or self.pipeline.safety_checker is None:
            return
        _, flagged = self.pipeline.run_safety_checker(arrays, self.device, self.dtype)
        if flagged is not None and any(flagged):
            raise UnsafeImage("The safety checker flagged this result, so it was not sent; try another instruction.")

    def clear_caches(self) -> None:
        """Forget cached image latents and text embeddings (e.g. to free memory)."""
        self._image_latents.clear()
        self._text_embeddings.clear()
