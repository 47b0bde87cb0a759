"""The Video-LaVIT motion tokenizer: motion grids `[B, 2, 24, 20, 36]` <-> 135 codes per clip.

Implements SPEC section 2 (paper section 3.1, "motion tokenizer"; reference `modeling_motion_tokenizer.py`): a
factorised spatio-temporal transformer encoder (per block: spatial attention over the positions of a frame,
temporal attention over the frames at a position, MLP; pre-norm, BEiT-style q/v biases), four stages of three
blocks each followed by an asymmetrically padded Conv3d downsampling 24x20x36 -> 3x5x9, a Linear-Tanh-Linear
projection to 32-d (outside autocast), the l2-normalised 1024 x 32 codebook, and a mirrored decoder (nearest
upsampling + Conv3d before each stage) back to two motion channels.

Differences from the reference:
- attention runs through `torch.nn.functional.scaled_dot_product_attention` instead of an explicit softmax;
- the decoder's nearest upsampling + Conv3d is computed on the original grid with summed kernel taps (the same
  linear map with 2x fewer multiply-adds, see `MotionUpsample`); the blocks' residual additions write straight into
  the layout of the next attention instead of separate transposing copies; on the CPU the blocks run in chunks
  of frames and positions and each stage's blocks share their whole-batch tensors (see `SpatioTemporalBlock`,
  `run_spatio_temporal_blocks`), the MLP's GELU runs in place and fp32 convolutions run as Conv2d per temporal tap
  on the channels-last grid (`conv3d_frames`); `compile()` opts into torch.compile;
- the training path (reconstruction MSE + VQ losses with a straight-through estimator, optional EMA codebook and
  dead-code restarts) is ours: the reference released none;
- module names follow transformers conventions; `conversion/motion_tokenizer.py` maps the reference's keys.
"""

from __future__ import annotations

import itertools
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
from .layers import (
    Fp32LayerNorm,
    SpatioTemporalBlock,
    TanhProjection,
    _global_forward_hooks,
    init_tokenizer_weights,
    run_spatio_temporal_blocks,
)
from .vector_quantizer import VectorQuantizer

# Encoder down-sampling: Conv3d strides (t, h, w) and explicit zero padding (w_left, w_right, h_top, h_bottom,
# t_front, t_back), mapping 24x20x36 -> 24x10x18 -> 12x10x18 -> 6x10x18 -> 3x5x9.
_DOWNSAMPLE_STRIDES = ((1, 2, 2), (2, 1, 1), (2, 1, 1), (2, 2, 2))
_DOWNSAMPLE_PADDING = ((0, 1, 0, 1, 1, 1), (1, 1, 1, 1, 0, 1), (1, 1, 1, 1, 0, 1), (0, 1, 0, 1, 0, 1))
# Decoder up-sampling factors (t, h, w), mapping 3x5x9 -> 6x10x18 -> 12x10x18 -> 24x10x18 -> 24x20x36.
_UPSAMPLE_FACTORS = ((2.0, 2.0, 2.0), (2.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 2.0, 2.0))


def _transformer_blocks(config: VideoLaVITMotionTokenizerConfig) -> nn.ModuleList:
    """The 4 stages x `blocks_per_stage` spatio-temporal blocks of the encoder or the decoder."""
    return nn.ModuleList(
        SpatioTemporalBlock(config.hidden_size, config.num_attention_heads, config.mlp_ratio, config.layer_norm_eps)
        for _ in range(4 * config.blocks_per_stage)
    )


def conv3d_frames(
    hidden_states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int, int]
) -> torch.Tensor:
    """A Conv3d without padding of the channels-last grid `[batch, t, h, w, in]` -> `[batch, t', h', w', out]`,
    computed as one Conv2d over the frames per temporal kernel tap, summed.

    The same linear map as `F.conv3d` (only the floating-point summation order differs). On the CPU oneDNN runs it
    up to a quarter faster than its Conv3d, and it reads the channels-last layout of the transformer blocks as it
    is, where the Conv3d wants a transposed copy.
    """
    time_stride, *frame_stride = stride
    taps = weight.shape[2]
    frames = (hidden_states.shape[1] - taps) // time_stride + 1
    outputs = []
    for clip in hidden_states:
        clip = clip.permute(0, 3, 1, 2)  # t h w c -> t c h w (channels-last strides)
        output = None
        for tap in range(taps):
            window = clip[tap : tap + time_stride * (frames - 1) + 1 : time_stride]
            convolved = F.conv2d(window, weight[:, :, tap], bias if tap == 0 else None, stride=frame_stride)
            output = convolved if output is None else output.add_(convolved)
        outputs.append(output.permute(0, 2, 3, 1))  # t c h w -> t h w c
    return outputs[0].unsqueeze(0) if len(outputs) == 1 else torch.stack(outputs)


def _unobserved(module: nn.Module) -> bool:
    """No forward hook (module or global) could have kept `module`'s output."""
    return not (module._forward_hooks or _global_forward_hooks())


def _per_frame_convolution(hidden_states: torch.Tensor) -> bool:
    """Whether to convolve through `conv3d_frames`: fp32 on the CPU, eager (its loop over the batch would be fixed
    by a trace), and a non-empty batch."""
    return (
        hidden_states.device.type == "cpu"
        and hidden_states.dtype == torch.float32
        and hidden_states.shape[0] > 0
        and not (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling())
    )


def _plain_module(module: nn.Module, kind: type) -> bool:
    """`module` is exactly a `kind` and no forward (pre-)hook would see it called (module or global hooks)."""
    return type(module) is kind and not (module._forward_hooks or module._forward_pre_hooks or _global_forward_hooks())


class MotionDownsample(nn.Module):
    """Zero-pad asymmetrically, then a stride-s Conv3d with kernel 3 and no padding of its own (in fp32 on the CPU
    computed by `conv3d_frames`, unless `conv` is wrapped or hooked)."""

    def __init__(self, hidden_size: int, stride: tuple[int, int, int], padding: tuple[int, ...]):
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv3d(hidden_size, hidden_size, kernel_size=3, stride=stride, padding=0)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`[batch, t, h, w, hidden]` -> `[batch, t', h', w', hidden]`."""
        if _per_frame_convolution(hidden_states) and _plain_module(self.conv, nn.Conv3d):
            padded = F.pad(hidden_states, (0, 0, *self.padding))  # b t h w c, c unpadded
            return conv3d_frames(padded, self.conv.weight, self.conv.bias, self.conv.stride)
        hidden_states = hidden_states.permute(0, 4, 1, 2, 3)  # b t h w c -> b c t h w
        hidden_states = self.conv(F.pad(hidden_states, self.padding))
        return hidden_states.permute(0, 2, 3, 4, 1)  # b c t h w -> b t h w c


class MotionUpsample(nn.Module):
    """Nearest-neighbour upsampling, then a Conv3d with kernel 3 and padding 1.

    Computed without materialising the upsampled grid: along a doubled axis, output `2i` of the convolution sees
    inputs `(i-1, i, i)` and output `2i+1` sees `(i, i, i+1)`, so each output phase is a kernel-2 convolution of the
    original grid with two of the three taps summed (`w0, w1+w2` and `w0+w1, w2`), zero padding included. This is the
    same linear map (only the floating-point summation order differs) at 8/27 (x2 x2 x2), 12/27 (x1 x2 x2) and
    18/27 (x2 x1 x1) of the multiply-adds. In fp32 on the CPU each phase goes through `conv3d_frames`.
    """

    def __init__(self, hidden_size: int, scale_factor: tuple[float, float, float]):
        super().__init__()
        self.scale_factor = scale_factor
        self.conv = nn.Conv3d(hidden_size, hidden_size, kernel_size=3, stride=1, padding=1)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`[batch, t, h, w, hidden]` -> `[batch, t', h', w', hidden]`."""
        factors = tuple(int(factor) for factor in self.scale_factor)
        if any(factor not in (1, 2) or factor != original for factor, original in zip(factors, self.scale_factor)):
            return self.forward_upsampled(hidden_states)
        batch, frames, height, width, hidden = hidden_states.shape
        cpu = _per_frame_convolution(hidden_states)
        padded = F.pad(hidden_states, (0, 0, 1, 1, 1, 1, 1, 1))  # b t h w c, c unpadded
        if not cpu:
            padded = padded.permute(0, 4, 1, 2, 3)  # b t h w c -> b c t h w
        weight = self.conv.weight.float()  # taps are summed in fp32, whatever the model's dtype
        output = hidden_states.new_empty(batch, frames, factors[0], height, factors[1], width, factors[2], hidden)
        for phase in itertools.product(*(range(factor) for factor in factors)):
            phase_weight, window = weight, [slice(None)]
            for axis, (factor, offset, size) in enumerate(zip(factors, phase, (frames, height, width)), start=2):
                if factor == 1:
                    window.append(slice(None))
                    continue
                first, middle, last = phase_weight.split(1, dim=axis)
                folded = (first, middle + last) if offset == 0 else (first + middle, last)
                phase_weight = torch.cat(folded, dim=axis)
                window.append(slice(offset, offset + size + 1))
            phase_weight = phase_weight.to(hidden_states.dtype)
            if cpu:
                convolved = conv3d_frames(padded[tuple(window)], phase_weight, self.conv.bias, (1, 1, 1))
            else:
                window.insert(1, slice(None))  # channels
                convolved = F.conv3d(padded[tuple(window)], phase_weight, self.conv.bias).permute(0, 2, 3, 4, 1)
            output[:, :, phase[0], :, phase[1], :, phase[2]] = convolved
        return output.view(batch, frames * factors[0], height * factors[1], width * factors[2], hidden)

    def forward_upsampled(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The direct computation: materialise the upsampled grid (in fp32), then convolve it."""
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
        hidden_states += self.temporal_position_embedding.unsqueeze(2)  # 1 t 1 c; the sum is ours to overwrite
        per_stage = self.config.blocks_per_stage
        for stage, downsample in enumerate(self.downsamplers):
            blocks = self.blocks[stage * per_stage : (stage + 1) * per_stage]
            # Each stage's input (the sum above, then a down-sampler's output) is a tensor nobody else holds,
            # unless a hook on that down-sampler kept it.
            owned = stage == 0 or _unobserved(self.downsamplers[stage - 1])
            hidden_states = run_spatio_temporal_blocks(blocks, hidden_states, overwrite_input=owned)
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
            blocks = self.blocks[stage * per_stage : (stage + 1) * per_stage]
            owned = _unobserved(upsample)  # as in the encoder
            hidden_states = run_spatio_temporal_blocks(blocks, hidden_states, overwrite_input=owned)
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

    def compile(self, **kwargs) -> None:
        """Opt-in `torch.compile` of the encoder and decoder transformer blocks, in place; `encode`/`decode` as usual.

        All 24 blocks share the same compiled functions (dynamo treats a block's parameters as inputs), so
        compiling costs seconds to a minute or two on the first calls at each new batch size rather than once per
        block. On the CPU without autograd what gets compiled is the blocks' chunk functions (see
        `SpatioTemporalBlock`), otherwise the whole block. Convolutions, quantizer and projections stay eager.
        Keyword arguments go to `torch.compile` (with its default `dynamic=None`, a shape seen second gets a graph
        with symbolic sizes, so later shapes need no more recompiles). The state dict is unchanged (no `_orig_mod.`
        prefixes). Token ids stay identical to eager in our tests.
        """
        functions = None
        for module in self.modules():
            if isinstance(module, SpatioTemporalBlock):
                functions = module.compile_block(functions, **kwargs)

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
        batch, channels, frames, _, _ = motion.shape
        frames_first = motion.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, *motion.shape[-2:])
        resized = F.interpolate(frames_first.float(), (height, width), mode="bicubic")
        resized = resized.reshape(batch, frames, channels, height, width).permute(0, 2, 1, 3, 4)
        return (resized / self.config.motion_scale).to(motion.dtype)

    def forward(self, motion_vectors: torch.Tensor, return_dict: bool = True, **kwargs) -> MotionTokenizerOutput:
        """Training step: encode, quantize (straight-through), decode, and the VQ-VAE losses.

        Args:
            motion_vectors (`torch.Tensor` `[batch, 2, 24, 20, 36]`): processor output.
        """
        encoded = self.encode(motion_vectors)
        reconstruction = self.decode_codes(encoded.quantized)
        reconstruction_loss = F.mse_loss(reconstruction.float(), motion_vectors.float())
        quantizer_loss = encoded.quantizer_loss.to(reconstruction_loss.dtype)
        return MotionTokenizerOutput(
            loss=reconstruction_loss + quantizer_loss,
            reconstruction_loss=reconstruction_loss,
            quantizer_loss=quantizer_loss,
            perplexity=encoded.perplexity,
            indices=encoded.indices,
            reconstruction=reconstruction,
        )


__all__ = ["VideoLaVITMotionTokenizer", "VideoLaVITMotionTokenizerPreTrainedModel"]
