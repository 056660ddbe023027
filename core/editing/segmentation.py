"""Finding what words name in a picture: CLIPSeg through transformers (implements core.ports.Segmenter).

    segmenter = load_segmenter("CIDAS/clipseg-rd64-refined")
    mask = segmenter.mask(photo, "the sky")                    # an "L" mask at the photo's size

(core.editing.lazy_segmentation.LazySegmenter loads it on first use, without importing this module before.)

Sources as for the editor (core.editing.sources): a hub id, a local folder saved with save_pretrained, or `tiny`
(a random CLIPSeg of a few thousand weights built in code, for tests: its masks mean nothing).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

from core.editing.lazy_segmentation import DEFAULT_SEGMENTATION_MODEL
from core.editing.sources import TINY, build_tokenizer, pretrained_location, resolve_device
from core.errors import ModelUnavailable
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
_TINY_SIDE = 32


class ClipSegSegmenter:
    """A loaded CLIPSeg model and its processor, on `device`."""

    def __init__(self, model: CLIPSegForImageSegmentation, processor: CLIPSegProcessor) -> None:
        self.model = model.eval()
        self.processor = processor
        self.device = next(model.parameters()).device

    @torch.inference_mode()
    def mask(self, image: Image.Image, words: str) -> Image.Image:
        """Where `words` are in `image`: an "L" mask at the image's size (CLIPSeg's probability times 255)."""
        inputs = self.processor(text=[words], images=[image.convert("RGB")], padding=True, return_tensors="pt")
        logits = self.model(**inputs.to(self.device)).logits
        side = logits.shape[-1]
        probability = torch.sigmoid(logits.reshape(-1, logits.shape[-2], side)[0]).float().cpu().numpy()
        mask = Image.fromarray(np.rint(probability * 255).astype(np.uint8))
        return mask.resize(image.size, Image.Resampling.BILINEAR)


def load_segmenter(source: str = DEFAULT_SEGMENTATION_MODEL, *, device: str = "auto",
                   offline: bool = False) -> ClipSegSegmenter:
    """CLIPSeg from `source` (hub id, local folder, or `tiny`), in float32 on `device`. Raises ModelUnavailable."""
    torch_device = resolve_device(device)
    if source == TINY:
        model, processor = build_tiny_clipseg()
    else:
        location = pretrained_location(source, "EDITBOT_SEGMENTATION_MODEL", f"`{TINY}`")
        try:
            model = CLIPSegForImageSegmentation.from_pretrained(location, local_files_only=offline)
            processor = CLIPSegProcessor.from_pretrained(location, local_files_only=offline)
        except (OSError, ValueError) as error:
            where = "in the local cache (offline)" if offline else "(no connection to the hub?)"
            raise ModelUnavailable(
                f"Could not load the segmentation model {source} {where}; set EDITBOT_SEGMENTATION_MODEL to a "
                f"downloaded CLIPSeg folder.") from error
    return ClipSegSegmenter(model.to(torch_device), processor)


def build_tiny_clipseg(seed: int = 0) -> tuple[CLIPSegForImageSegmentation, CLIPSegProcessor]:
    """A random CLIPSeg with the real architecture (text and vision towers, FiLM-conditioned decoder) at a tiny
    size: 32 px pictures, 2 layers, 32 channels. Deterministic for a seed; builds in well under a second."""
    tokenizer = build_tokenizer()
    config = CLIPSegConfig(
        text_config={"vocab_size": tokenizer.vocab_size, "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={"image_size": _TINY_SIDE, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16, reduce_dim=16, extract_layers=[1], decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's random state
        torch.manual_seed(seed)
        model = CLIPSegForImageSegmentation(config)
    image_processor = ViTImageProcessorPil(size={"height": _TINY_SIDE, "width": _TINY_SIDE},
                                           image_mean=_CLIP_MEAN, image_std=_CLIP_STD)
    return model, CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)
