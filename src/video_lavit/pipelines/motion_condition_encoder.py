"""The motion condition encoder of the Video-LaVIT video detokenizer.

Motion at latent resolution `[B, 2, T, h, w]` is resized bicubically (in fp32) to the 16 x 16 grid, projected to
512 channels, given learned spatial positions, passed through 12 factorised spatial + temporal transformer blocks
(8 heads), normalised and projected to the UNet's cross-attention width: per-frame condition tokens
`[B, T, 256, 1024]` (reference `modeling_motion_condition.py` and `VideoDetokenizer.encode_motion`).
The unconditional branch of classifier-free guidance uses zeros instead of these tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from ..checks import (
    check_at_most,
    check_heads,
    check_non_negative_numbers,
    check_positive_ints,
    check_positive_numbers,
)
from ..errors import InvalidInputError
from ..loading import StrictModelMixin
from ..media_tokenizers.layers import Fp32LayerNorm, SpatioTemporalBlock
from ..media_tokenizers.modeling_motion_tokenizer import resize_motion


@dataclass
class VideoLaVITMotionConditionOutput(BaseOutput):
    """Output of [`VideoLaVITMotionConditionEncoder`].

    Attributes:
        sample (`torch.Tensor` `[batch, frames, grid**2, out_channels]`): the per-frame condition tokens.
    """

    sample: torch.Tensor


class VideoLaVITMotionConditionEncoder(StrictModelMixin, ModelMixin, ConfigMixin):
    """Motion `[B, 2, T, h, w]` -> condition tokens `[B, T, grid_size**2, out_channels]`.

    Args:
        in_channels (`int`, defaults to 2): motion channels (x, y).
        out_channels (`int`, defaults to 1024): the video UNet's `cross_attention_dim`.
        hidden_size (`int`, defaults to 512): width of the transformer.
        num_attention_heads (`int`, defaults to 8): heads of every attention.
        num_layers (`int`, defaults to 12): spatio-temporal blocks.
        mlp_ratio (`float`, defaults to 4.0): MLP width as a multiple of `hidden_size`.
        grid_size (`int`, defaults to 16): the motion is resized to `grid_size x grid_size` tokens per frame.
        layer_norm_eps (`float`, defaults to 1e-5): epsilon of the LayerNorms (computed in fp32).
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["SpatioTemporalBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 1024,
        hidden_size: int = 512,
        num_attention_heads: int = 8,
        num_layers: int = 12,
        mlp_ratio: float = 4.0,
        grid_size: int = 16,
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        owner = type(self).__name__
        check_positive_ints(
            owner, self.config, ("in_channels", "out_channels", "hidden_size", "num_attention_heads", "grid_size")
        )
        check_positive_numbers(owner, self.config, ("mlp_ratio", "layer_norm_eps"))
        check_non_negative_numbers(owner, self.config, ("num_layers",))
        check_at_most(owner, self.config, {"num_layers": 256})
        check_heads(owner, "hidden_size", hidden_size, "num_attention_heads", num_attention_heads)
        self.input_proj = nn.Linear(in_channels, hidden_size)
        self.position_embedding = nn.Parameter(torch.zeros(1, grid_size * grid_size, hidden_size))
        self.blocks = nn.ModuleList(
            SpatioTemporalBlock(hidden_size, num_attention_heads, mlp_ratio, layer_norm_eps) for _ in range(num_layers)
        )
        self.norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.output_proj = nn.Linear(hidden_size, out_channels)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)

    def forward(self, motion: torch.Tensor, return_dict: bool = True) -> VideoLaVITMotionConditionOutput | tuple:
        """`motion` `[B, 2, T, h, w]` (any h, w; resized to the grid) -> condition tokens `sample`
        `[B, T, grid**2, out_channels]` (a tuple `(sample,)` with `return_dict=False`)."""
        if motion.ndim != 5 or motion.shape[1] != self.config.in_channels:
            raise InvalidInputError(
                f"motion must have shape [batch, {self.config.in_channels}, frames, height, width], "
                f"got {tuple(motion.shape)}"
            )
        grid = self.config.grid_size
        if motion.shape[-2:] != (grid, grid):
            motion = resize_motion(motion.float(), grid, grid).to(motion.dtype)
        batch, channels, frames = motion.shape[:3]
        # b c t h w -> b t (h w) c
        tokens = motion.permute(0, 2, 3, 4, 1).reshape(batch, frames, grid * grid, channels)
        hidden_states = self.input_proj(tokens.to(self.input_proj.weight.dtype)) + self.position_embedding[:, None]
        for block in self.blocks:
            hidden_states = block(hidden_states)
        sample = self.output_proj(self.norm(hidden_states))
        return VideoLaVITMotionConditionOutput(sample=sample) if return_dict else (sample,)


__all__ = ["VideoLaVITMotionConditionEncoder", "VideoLaVITMotionConditionOutput"]
