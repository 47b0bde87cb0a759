"""Configuration of the Video-LaVIT motion tokenizer; the defaults are the released model's."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

from ..checks import (
    CheckedConfigMixin,
    check_at_most,
    check_heads,
    check_non_negative_numbers,
    check_positive_ints,
    check_positive_numbers,
)
from ..errors import InvalidInputError


@strict
class VideoLaVITMotionTokenizerConfig(CheckedConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`VideoLaVITMotionTokenizer`]: a factorised spatio-temporal transformer VQ-VAE that turns a
    24-frame motion grid `[2, 24, 20, 36]` into 3 x 5 x 9 = 135 codes of a 1024-entry codebook, and back.

    in_channels (`int`, *optional*, defaults to 2):
        Motion channels (x, y).
    hidden_size (`int`, *optional*, defaults to 512):
        Width of the encoder and decoder transformers.
    num_attention_heads (`int`, *optional*, defaults to 8):
        Attention heads of every spatial and temporal attention.
    mlp_ratio (`float`, *optional*, defaults to 4.0):
        MLP hidden width as a multiple of `hidden_size`.
    blocks_per_stage (`int`, *optional*, defaults to 3):
        Transformer blocks in each of the four encoder and four decoder stages.
    layer_norm_eps (`float`, *optional*, defaults to 1e-5):
        Epsilon of every LayerNorm.
    num_frames (`int`, *optional*, defaults to 24):
        Frames per clip.
    grid_height (`int`, *optional*, defaults to 20):
        Rows of the motion grid.
    grid_width (`int`, *optional*, defaults to 36):
        Columns of the motion grid.
    codebook_size (`int`, *optional*, defaults to 1024):
        Number of codes.
    code_dim (`int`, *optional*, defaults to 32):
        Width of a code.
    motion_scale (`float`, *optional*, defaults to 10.0):
        The tokenizer reads motion multiplied by this; `decode_to_latent_size` divides by it.
    commitment_weight (`float`, *optional*, defaults to 0.25):
        Weight of the commitment loss in training.
    use_ema_codebook (`bool`, *optional*, defaults to `False`):
        Train the codebook with exponential moving averages instead of gradients (our addition).
    ema_decay (`float`, *optional*, defaults to 0.99):
        Decay of the EMA codebook update.
    dead_code_threshold (`float`, *optional*, defaults to 0.0):
        In training, restart codes used less than this from random inputs (0 disables; our addition).
    initializer_range (`float`, *optional*, defaults to 0.02):
        Std of the truncated normal initialisation of linear and convolution weights.
    """

    model_type = "video_lavit_motion_tokenizer"

    in_channels: int = 2
    hidden_size: int = 512
    num_attention_heads: int = 8
    mlp_ratio: float = 4.0
    blocks_per_stage: int = 3
    layer_norm_eps: float = 1e-5
    num_frames: int = 24
    grid_height: int = 20
    grid_width: int = 36
    codebook_size: int = 1024
    code_dim: int = 32
    motion_scale: float = 10.0
    commitment_weight: float = 0.25
    use_ema_codebook: bool = False
    ema_decay: float = 0.99
    dead_code_threshold: float = 0.0
    initializer_range: float = 0.02

    def check_values(self) -> None:
        """Raise `InvalidInputError` for settings the model cannot be built with (run when the config is made)."""
        owner = type(self).__name__
        check_positive_ints(
            owner,
            self,
            ("in_channels", "hidden_size", "num_attention_heads", "blocks_per_stage", "codebook_size", "code_dim"),
        )
        check_positive_numbers(owner, self, ("mlp_ratio", "layer_norm_eps", "motion_scale"))
        check_non_negative_numbers(
            owner, self, ("commitment_weight", "ema_decay", "dead_code_threshold", "initializer_range")
        )
        check_at_most(owner, self, {"blocks_per_stage": 64})
        check_heads(owner, "hidden_size", self.hidden_size, "num_attention_heads", self.num_attention_heads)
        if (self.num_frames, self.grid_height, self.grid_width) != (24, 20, 36):
            # The four down-sampling convolutions map exactly 24 x 20 x 36 to 3 x 5 x 9.
            raise InvalidInputError(
                f"{owner}: the motion tokenizer reads 24 x 20 x 36 motion grids (num_frames, grid_height, "
                f"grid_width), got {self.num_frames} x {self.grid_height} x {self.grid_width}."
            )
        if self.ema_decay >= 1:
            raise InvalidInputError(f"{owner}.ema_decay must be below 1, got {self.ema_decay!r}.")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(t, h, w) of the code grid."""
        return 3, 5, 9

    @property
    def num_tokens_per_clip(self) -> int:
        return 135


__all__ = ["VideoLaVITMotionTokenizerConfig"]
