"""DeepCache for diffusers' UNet2DConditionModel (Ma et al., 2023, "DeepCache: Accelerating Diffusion Models for
Free"): neighbouring denoising steps produce nearly the same deep features, so on "reuse" steps we run only the
shallowest down block and the last up block, feeding the last up block the deep features cached on the previous
full step. Used by the editor's opt-in fast mode; it changes the result slightly.
"""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel


class DeepCacheUNet:
    """Runs `unet` either fully (caching the input of its last up block) or shallowly (reusing that cache).

    Supports SD-style UNets: time-conditioned, cross-attention, no class/addition embeddings or adapters.
    Call `reset()` before each new denoising run: the cache belongs to one run's batch layout.
    """

    def __init__(self, unet: UNet2DConditionModel) -> None:
        self.unet = unet
        self.supported = self.supports(unet)
        self._deep_features: torch.Tensor | None = None

    @staticmethod
    def supports(unet: UNet2DConditionModel) -> bool:
        """Whether the UNet has nothing our forward pass leaves out (else every step runs the stock forward)."""
        config = unet.config
        return not (
            config.center_input_sample
            or config.class_embed_type
            or config.num_class_embeds
            or config.addition_embed_type
            or config.encoder_hid_dim_type
            or config.time_cond_proj_dim
        )

    def reset(self) -> None:
        self._deep_features = None

    def __call__(
        self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor, *, reuse: bool
    ) -> torch.Tensor:
        """The noise prediction; `reuse` runs the shallow path (falls back to full when nothing is cached yet)."""
        unet = self.unet
        if not self.supported:
            return unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]
        emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), None)
        if unet.time_embed_act is not None:
            emb = unet.time_embed_act(emb)
        hidden = unet.conv_in(sample)
        residuals: tuple[torch.Tensor, ...] = (hidden,)
        reuse = reuse and self._deep_features is not None
        down_blocks = unet.down_blocks[:1] if reuse else unet.down_blocks
        for block in down_blocks:
            hidden, block_residuals = _run_down(block, hidden, emb, encoder_hidden_states)
            residuals += block_residuals

        last_up = unet.up_blocks[-1]
        if reuse:
            hidden = self._deep_features
            # the last up block takes the shallowest residuals; the first down block's downsampled output feeds the
            # deeper blocks we skip
            residuals = residuals[: len(last_up.resnets)]
        else:
            hidden = _run_mid(unet, hidden, emb, encoder_hidden_states)
            needs_size = any(dim % 2**unet.num_upsamplers for dim in sample.shape[-2:])
            for block in unet.up_blocks[:-1]:
                block_residuals, residuals = residuals[-len(block.resnets) :], residuals[: -len(block.resnets)]
                upsample_size = residuals[-1].shape[2:] if needs_size else None
                hidden = _run_up(block, hidden, emb, block_residuals, encoder_hidden_states, upsample_size)
            self._deep_features = hidden
        hidden = _run_up(last_up, hidden, emb, residuals, encoder_hidden_states, None)
        if unet.conv_norm_out is not None:
            hidden = unet.conv_act(unet.conv_norm_out(hidden))
        return unet.conv_out(hidden)


def _run_down(block, hidden, emb, context):
    if getattr(block, "has_cross_attention", False):
        return block(hidden_states=hidden, temb=emb, encoder_hidden_states=context)
    return block(hidden_states=hidden, temb=emb)


def _run_mid(unet, hidden, emb, context):
    if unet.mid_block is None:
        return hidden
    if getattr(unet.mid_block, "has_cross_attention", False):
        return unet.mid_block(hidden, emb, encoder_hidden_states=context)
    return unet.mid_block(hidden, emb)


def _run_up(block, hidden, emb, residuals, context, upsample_size):
    if getattr(block, "has_cross_attention", False):
        return block(
            hidden_states=hidden,
            temb=emb,
            res_hidden_states_tuple=residuals,
            encoder_hidden_states=context,
            upsample_size=upsample_size,
        )
    return block(hidden_states=hidden, temb=emb, res_hidden_states_tuple=residuals, upsample_size=upsample_size)
