"""The Video-LaVIT motion tokenizer: motion grids `[B, 2, 24, 20, 36]` <-> 135 codes per clip.

Implements the paper's motion tokenizer (section 3.1; reference `modeling_motion_tokenizer.py`): a factorised
spatio-temporal transformer encoder (per block: spatial attention over the positions of a frame, temporal
attention over the frames at a position, MLP; pre-norm, BEiT-style q/v biases), four stages of three blocks each
followed by an asymmetrically padded Conv3d downsampling 24x20x36 -> 3x5x9, a Linear-Tanh-Linear projection to
32-d (outside autocast), the l2-normalised 1024 x 32 codebook, and a mirrored decoder (nearest upsampling + Conv3d
before each stage) back to two motion channels.

Differences from the reference:
- attention runs through `torch.nn.functional.scaled_dot_product_attention` instead of an explicit softmax, and
  the q / v biases live in `qkv.bias` (zero for the keys; see `QVBiasSelfAttention`);
- the training path (reconstruction MSE + VQ losses with a straight-through estimator, optional EMA codebook and
  dead-code restarts) is ours: the reference released none;
- module names follow transformers conventions; `conversion/motion_tokenizer.py` maps the reference's keys.

Large batches on the CPU can run their transformer blocks in chunks (`media_tokenizers/chunked_blocks.py`, opt-in).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ..checks import check_finite
from ..errors import InvalidInputError
from ..loading import StrictPreTrainedMixin
from .configuration_motion_tokenizer import VideoLaVITMotionTokenizerConfig
from .layers import Fp32LayerNorm, SpatioTemporalBlock, TanhProjection, init_tokenizer_weights
from .vector_quantizer import VectorQuantizer

# Encoder down-sampling: Conv3d strides (t, h, w) and explicit zero padding (w_left, w_right, h_top, h_bottom,
# t_front, t_back), mapping 24x20x36 -> 24x10x18 -> 12x10x18 -> 6x10x18 -> 3x5x9.
_DOWNSAMPLE_STRIDES = ((1, 2, 2), (2, 1, 1), (2, 1, 1), (2, 2, 2))
_DOWNSAMPLE_PADDING = ((0, 1, 0, 1, 1, 1), (1, 1, 1, 1, 0, 1), (1, 1, 1, 1, 0, 1), (0, 1, 0, 1, 0, 1))
# Decoder up-sampling factors (t, h, w), mapping 3x5x9 -> 6x10x18 -> 12x10x18 -> 24x10x18 -> 24x20x36.
_UPSAMPLE_FACTORS = ((2.0, 2.0, 2.0), (2.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 2.0, 2.0))


def resize_motion(motion: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize each frame of a motion tensor bicubically, in fp32: `[batch, 2, frames, h, w]` ->
    `[batch, 2, frames, height, width]`, in `motion`'s dtype. The one motion resize of the package: the
    detokenizer's latent-size motion and the motion condition encoder's grid."""
    batch, channels, frames = motion.shape[:3]
    frames_first = motion.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, *motion.shape[-2:])  # (b t) c h w
    resized = F.interpolate(frames_first.float(), (height, width), mode="bicubic")
    # (b t) c h w -> b c t h w
    return resized.reshape(batch, frames, channels, height, width).permute(0, 2, 1, 3, 4).to(motion.dtype)


def _transformer_blocks(config: VideoLaVITMotionTokenizerConfig) -> nn.ModuleList:
    """The 4 stages x `blocks_per_stage` spatio-temporal blocks of the encoder or the decoder."""
    return nn.ModuleList(
        SpatioTemporalBlock(config.hidden_size, config.num_attention_heads, config.mlp_ratio, config.layer_norm_eps)
        for _ in range(4 * config.blocks_per_stage)
    )


class MotionDownsample(nn.Module):
    """Zero-pad asymmetrically, then a stride-s Conv3d with kernel 3 and no padding of its own."""

    def __init__(self, hidden_size: int, stride: tuple[int, int, int], padding: tuple[int, ...]):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv3d(hidden_size, hidden_size, kernel_size=3, stride=stride, padding=0)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`[batch, t, h, w, hidden]` -> `[batch, t', h', w', hidden]`."""
        hidden_states = hidden_states.permute(0, 4, 1, 2, 3)  # b t h w c -> b c t h w
        hidden_states = self.conv(F.pad(hidden_states, self.padding))
        return hidden_states.permute(0, 2, 3, 4, 1)  # b c t h w -> b t h w c


class MotionUpsample(nn.Module):
    """Nearest-neighbour upsampling (in fp32), then a Conv3d with kernel 3 and padding 1."""

    def __init__(self, hidden_size: int, scale_factor: tuple[float, float, float]):
        super().__init__()
        self.scale_factor = scale_factor
        self.conv = nn.Conv3d(hidden_size, hidden_size, kernel_size=3, stride=1, padding=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`[batch, t, h, w, hidden]` -> `[batch, t', h', w', hidden]`."""
        hidden_states = hidden_states.permute(0, 4, 1, 2, 3)  # b t h w c -> b c t h w
        upsampled = F.interpolate(hidden_states.float(), scale_factor=self.scale_factor, mode="nearest")
        hidden_states = self.conv(upsampled.to(hidden_states.dtype))
        return hidden_states.permute(0, 2, 3, 4, 1)  # b c t h w -> b t h w c


class MotionEncoder(nn.Module):
    def __init__(self, config: VideoLaVITMotionTokenizerConfig):
        super().__init__()
        hidden = config.hidden_size
        self.config = config
        self.input_proj = nn.Linear(config.in_channels, hidden)
        self.spatial_position_embedding = nn.Parameter(torch.zeros(1, config.grid_height * config.grid_width, hidden))
        self.temporal_position_embedding = nn.Parameter(torch.zeros(1, config.num_frames, hidden))
        self.blocks = _transformer_blocks(config)
        self.downsamplers = nn.ModuleList(
            MotionDownsample(hidden, stride, padding)
            for stride, padding in zip(_DOWNSAMPLE_STRIDES, _DOWNSAMPLE_PADDING)
        )
        self.norm = Fp32LayerNorm(hidden, eps=config.layer_norm_eps)

    def forward(self, motion_vectors: torch.Tensor) -> torch.Tensor:
        """`motion_vectors` `[batch, 2, 24, 20, 36]` -> features `[batch, 3, 5, 9, hidden]`."""
        batch, _, frames, height, width = motion_vectors.shape
        hidden_states = self.input_proj(motion_vectors.permute(0, 2, 3, 4, 1))  # b c t h w -> b t h w c
        hidden_states = hidden_states.reshape(batch, frames, height * width, -1)
        hidden_states = hidden_states + self.spatial_position_embedding.unsqueeze(0)  # 1 1 p c
        hidden_states = hidden_states + self.temporal_position_embedding.unsqueeze(2)  # 1 t 1 c
        per_stage = self.config.blocks_per_stage
        for stage, downsample in enumerate(self.downsamplers):
            for block in self.blocks[stage * per_stage : (stage + 1) * per_stage]:
                hidden_states = block(hidden_states)
            hidden_states = downsample(hidden_states.reshape(batch, frames, height, width, -1))
            _, frames, height, width, _ = hidden_states.shape
            hidden_states = hidden_states.reshape(batch, frames, height * width, -1)
        return self.norm(hidden_states).reshape(batch, frames, height, width, -1)


class MotionDecoder(nn.Module):
    def __init__(self, config: VideoLaVITMotionTokenizerConfig):
        super().__init__()
        hidden = config.hidden_size
        self.config = config
        self.input_proj = nn.Linear(config.code_dim, hidden)
        self.upsamplers = nn.ModuleList(MotionUpsample(hidden, factor) for factor in _UPSAMPLE_FACTORS)
        self.blocks = _transformer_blocks(config)
        self.norm = Fp32LayerNorm(hidden, eps=config.layer_norm_eps)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """`codes` `[batch, 3, 5, 9, code_dim]` -> features `[batch, 24, 20, 36, hidden]`."""
        hidden_states = self.input_proj(codes)
        per_stage = self.config.blocks_per_stage
        for stage, upsample in enumerate(self.upsamplers):
            hidden_states = upsample(hidden_states)
            batch, frames, height, width, hidden = hidden_states.shape
            hidden_states = hidden_states.reshape(batch, frames, height * width, hidden)
            for block in self.blocks[stage * per_stage : (stage + 1) * per_stage]:
                hidden_states = block(hidden_states)
            hidden_states = hidden_states.reshape(batch, frames, height, width, hidden)
        return self.norm(hidden_states)


@dataclass
class MotionTokenizerEncoderOutput(ModelOutput):
    """Output of `VideoLaVITMotionTokenizer.encode`.

    Attributes:
        indices (`torch.LongTensor` `[batch, 135]`): code indices in (t, h, w) order.
        quantized (`torch.Tensor` `[batch, 3, 5, 9, code_dim]`): the codes (straight-through in training).
        features (`torch.Tensor` `[batch, 3, 5, 9, code_dim]`): the projected encoder features before quantizing.
        quantizer_loss (`torch.Tensor`): codebook + commitment loss (training only, else 0).
        perplexity (`torch.Tensor`): code usage perplexity of the batch.
    """

    indices: torch.LongTensor | None = None
    quantized: torch.Tensor | None = None
    features: torch.Tensor | None = None
    quantizer_loss: torch.Tensor | None = None
    perplexity: torch.Tensor | None = None


@dataclass
class MotionTokenizerOutput(ModelOutput):
    """Output of `VideoLaVITMotionTokenizer.forward`.

    Attributes:
        loss (`torch.Tensor`): reconstruction + quantizer loss.
        reconstruction_loss (`torch.Tensor`): MSE between the input and its reconstruction.
        quantizer_loss (`torch.Tensor`): codebook + weighted commitment loss.
        perplexity (`torch.Tensor`): code usage perplexity of the batch.
        indices (`torch.LongTensor` `[batch, 135]`): code indices.
        reconstruction (`torch.Tensor` `[batch, 2, 24, 20, 36]`): decoded motion.
    """

    loss: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    quantizer_loss: torch.Tensor | None = None
    perplexity: torch.Tensor | None = None
    indices: torch.LongTensor | None = None
    reconstruction: torch.Tensor | None = None


class VideoLaVITMotionTokenizerPreTrainedModel(StrictPreTrainedMixin, PreTrainedModel):
    config_class = VideoLaVITMotionTokenizerConfig
    base_model_prefix = "motion_tokenizer"
    main_input_name = "motion_vectors"
    supports_gradient_checkpointing = True
    _no_split_modules = ["SpatioTemporalBlock"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if not init_tokenizer_weights(module, std) and isinstance(module, MotionEncoder):
            nn.init.trunc_normal_(module.spatial_position_embedding, std=std)
            nn.init.trunc_normal_(module.temporal_position_embedding, std=std)


class VideoLaVITMotionTokenizer(VideoLaVITMotionTokenizerPreTrainedModel):
    """Motion VQ-VAE of Video-LaVIT: `encode`, `decode`, `decode_to_latent_size`, and `forward` for training."""

    def __init__(self, config: VideoLaVITMotionTokenizerConfig):
        super().__init__(config)
        self.encoder = MotionEncoder(config)
        self.quant_proj = TanhProjection(config.hidden_size, config.hidden_size, config.code_dim)
        self.quantizer = VectorQuantizer(
            config.codebook_size,
            config.code_dim,
            commitment_weight=config.commitment_weight,
            use_ema=config.use_ema_codebook,
            ema_decay=config.ema_decay,
            dead_code_threshold=config.dead_code_threshold,
        )
        self.decoder = MotionDecoder(config)
        self.output_proj = TanhProjection(config.hidden_size, config.hidden_size, config.in_channels)
        self.post_init()

    def _check_motion(self, motion_vectors: torch.Tensor) -> None:
        expected = (self.config.in_channels, self.config.num_frames, self.config.grid_height, self.config.grid_width)
        if not isinstance(motion_vectors, torch.Tensor):
            raise InvalidInputError(f"motion_vectors must be a tensor, got {type(motion_vectors).__name__}")
        if motion_vectors.ndim != 5 or tuple(motion_vectors.shape[1:]) != expected or not motion_vectors.shape[0]:
            raise InvalidInputError(
                f"motion_vectors must have shape [batch, {', '.join(map(str, expected))}], "
                f"got {tuple(motion_vectors.shape)}"
            )
        check_finite(motion_vectors, "motion_vectors")

    def encode(self, motion_vectors: torch.Tensor) -> MotionTokenizerEncoderOutput:
        """`motion_vectors` `[batch, 2, 24, 20, 36]` -> codes (see `MotionTokenizerEncoderOutput`)."""
        self._check_motion(motion_vectors)
        encoded = self.encoder(motion_vectors.to(self.dtype))
        # The projection to code space runs outside autocast, in the dtype of its own weights, as in the reference.
        with torch.autocast(device_type=encoded.device.type, enabled=False):
            features = self.quant_proj(encoded.to(self.quant_proj.fc2.weight.dtype))
        quantized = self.quantizer.encode(features)
        batch = motion_vectors.shape[0]
        return MotionTokenizerEncoderOutput(
            indices=quantized.indices.reshape(batch, -1),
            quantized=quantized.quantized,
            features=features,
            quantizer_loss=quantized.loss,
            perplexity=quantized.perplexity,
        )

    @torch.no_grad()
    def fit_codebook(
        self, motion_vectors: torch.Tensor, iterations: int = 20, generator: torch.Generator | None = None
    ) -> torch.LongTensor:
        """Set the codebook to spherical k-means centroids of the encoder's features of these grids (our addition:
        the usual codebook initialisation before training, which keeps a short training from using one code).

        Args:
            motion_vectors (`torch.Tensor` `[batch, 2, 24, 20, 36]`): motion grids, at least
                `codebook_size / 135` of them.
            iterations (`int`): k-means rounds.
            generator (`torch.Generator`, *optional*): picks the starting features.

        Returns:
            `torch.LongTensor` `[batch, 135]`: the grids' codes under the fitted codebook.
        """
        features = self.encode(motion_vectors).features
        return self.quantizer.fit_kmeans(features, iterations=iterations, generator=generator).reshape(
            len(motion_vectors), -1
        )

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """`codes` `[batch, 3, 5, 9, code_dim]` -> motion `[batch, 2, 24, 20, 36]`."""
        decoded = self.output_proj(self.decoder(codes.to(self.dtype)))
        return decoded.permute(0, 4, 1, 2, 3)  # b t h w c -> b c t h w

    def decode(self, indices: torch.LongTensor) -> torch.Tensor:
        """`indices` `[batch, 135]` -> motion `[batch, 2, 24, 20, 36]`."""
        if (
            not isinstance(indices, torch.Tensor)
            or indices.ndim != 2
            or indices.shape[1] != self.config.num_tokens_per_clip
        ):
            shape = tuple(indices.shape) if isinstance(indices, torch.Tensor) else type(indices).__name__
            raise InvalidInputError(f"indices must have shape [batch, {self.config.num_tokens_per_clip}], got {shape}")
        codes = self.quantizer.indices_to_codes(indices).reshape(indices.shape[0], *self.config.latent_shape, -1)
        return self.decode_codes(codes)

    def decode_to_latent_size(self, indices: torch.LongTensor, height: int, width: int) -> torch.Tensor:
        """Decode and resize for the video detokenizer: `[batch, 135]` -> `[batch, 2, 24, height, width]`.

        Each frame is resized bicubically (in fp32) to the latent size of the target video (its pixel size / 8) and
        divided by `motion_scale`, as the reference's `reconstruct_from_token`.
        """
        motion = self.decode(indices)
        return (resize_motion(motion.float(), height, width) / self.config.motion_scale).to(motion.dtype)

    def forward(
        self, motion_vectors: torch.Tensor, return_dict: bool = True, **kwargs
    ) -> MotionTokenizerOutput | tuple:
        """Training step: encode, quantize (straight-through), decode, and the VQ-VAE losses.

        Args:
            motion_vectors (`torch.Tensor` `[batch, 2, 24, 20, 36]`): processor output.
        """
        encoded = self.encode(motion_vectors)
        reconstruction = self.decode_codes(encoded.quantized)
        reconstruction_loss = F.mse_loss(reconstruction.float(), motion_vectors.float())
        quantizer_loss = encoded.quantizer_loss.to(reconstruction_loss.dtype)
        output = MotionTokenizerOutput(
            loss=reconstruction_loss + quantizer_loss,
            reconstruction_loss=reconstruction_loss,
            quantizer_loss=quantizer_loss,
            perplexity=encoded.perplexity,
            indices=encoded.indices,
            reconstruction=reconstruction,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["VideoLaVITMotionTokenizer", "VideoLaVITMotionTokenizerPreTrainedModel", "resize_motion"]
