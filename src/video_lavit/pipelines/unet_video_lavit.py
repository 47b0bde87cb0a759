"""The motion-conditioned spatio-temporal UNet of the Video-LaVIT video detokenizer.

The network is diffusers' `UNetSpatioTemporalConditionModel` (the SVD UNet) with 10 input channels, and its weights
have exactly that model's keys. Video-LaVIT changes only what the cross-attentions read: instead of one image
embedding shared by all frames, `encoder_hidden_states` are the motion condition encoder's per-frame tokens
`[batch, frames, 256, dim]` (a 16 x 16 grid):

- the spatial transformer blocks of frame `f` cross-attend to the 256 tokens of frame `f`;
- the temporal transformer blocks of a feature-map position cross-attend, over the frames, to the motion tokens
  nearest-upsampled from 16 x 16 to that feature map's size.

What is copied from diffusers, and why:
- `VideoLaVITVideoUNet.forward` is diffusers' forward without the line that repeats `encoder_hidden_states` once per
  frame (the conditioning is already per frame); no hook point exists between the embeddings and the blocks.
- `MotionTransformerSpatioTemporalModel.forward` is diffusers' `TransformerSpatioTemporalModel.forward` with the two
  contexts above instead of the first frame's embedding broadcast to every position; the blocks, their weights and
  the time mixing are diffusers' own. The UNet's transformer modules are switched to this subclass after
  construction, so the model builds, saves and loads exactly as the diffusers UNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config

# diffusers' pipeline loader finds how to load a component by looking its base classes up in the component's module.
from diffusers.models.modeling_utils import ModelMixin  # noqa: F401
from diffusers.models.transformers.transformer_temporal import (
    TransformerSpatioTemporalModel,
    TransformerTemporalModelOutput,
)
from diffusers.models.unets.unet_spatio_temporal_condition import (
    UNetSpatioTemporalConditionModel,
    UNetSpatioTemporalConditionOutput,
)

from ..errors import InvalidInputError
from ..loading import StrictModelMixin


def motion_contexts(motion_tokens: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial and temporal cross-attention contexts from per-frame motion tokens.

    Args:
        motion_tokens (`torch.Tensor` `[batch, frames, grid * grid, dim]`): motion condition tokens.
        height, width (`int`): size of the feature map that attends to them.

    Returns:
        `[batch * frames, grid * grid, dim]` (each frame its own tokens) and `[batch * height * width, frames, dim]`
        (each position the frames of its nearest token, upsampled in fp32 as the reference).
    """
    batch, frames, tokens, dim = motion_tokens.shape
    grid = round(tokens**0.5)
    if grid * grid != tokens:
        raise InvalidInputError(f"motion tokens must form a square grid, got {tokens} per frame")
    spatial = motion_tokens.reshape(batch * frames, tokens, dim)
    # b t (h w) c -> (b t) c h w
    grid_tokens = motion_tokens.reshape(batch * frames, grid, grid, dim).permute(0, 3, 1, 2)
    if (height, width) != (grid, grid):
        grid_tokens = F.interpolate(grid_tokens.float(), size=(height, width), mode="nearest").to(motion_tokens.dtype)
    # (b t) c h w -> (b h w) t c
    temporal = grid_tokens.reshape(batch, frames, dim, height * width).permute(0, 3, 1, 2)
    return spatial, temporal.reshape(batch * height * width, frames, dim)


class MotionTransformerSpatioTemporalModel(TransformerSpatioTemporalModel):
    """diffusers' spatio-temporal transformer, cross-attending to per-frame motion tokens (see module docstring)."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        image_only_indicator: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> TransformerTemporalModelOutput | tuple[torch.Tensor]:
        """`hidden_states` `[batch * frames, channels, height, width]`, `encoder_hidden_states`
        `[batch, frames, 256, dim]` -> same shape as `hidden_states`."""
        batch_frames, _, height, width = hidden_states.shape
        num_frames = image_only_indicator.shape[-1]
        batch_size = batch_frames // num_frames
        space_context, time_context = motion_contexts(encoder_hidden_states, height, width)

        residual = hidden_states
        hidden_states = self.norm(hidden_states)
        inner_dim = hidden_states.shape[1]
        # (b t) c h w -> (b t) (h w) c
        hidden_states = hidden_states.permute(0, 2, 3, 1).reshape(batch_frames, height * width, inner_dim)
        hidden_states = self.proj_in(hidden_states)

        frame_index = torch.arange(num_frames, device=hidden_states.device).repeat(batch_size)
        frame_embedding = self.time_pos_embed(self.time_proj(frame_index).to(dtype=hidden_states.dtype))[:, None, :]

        for block, temporal_block in zip(self.transformer_blocks, self.temporal_transformer_blocks):
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(block, hidden_states, None, space_context, None)
            else:
                hidden_states = block(hidden_states, encoder_hidden_states=space_context)
            hidden_states_mix = temporal_block(
                hidden_states + frame_embedding, num_frames=num_frames, encoder_hidden_states=time_context
            )
            hidden_states = self.time_mixer(
                x_spatial=hidden_states, x_temporal=hidden_states_mix, image_only_indicator=image_only_indicator
            )

        hidden_states = self.proj_out(hidden_states)
        # (b t) (h w) c -> (b t) c h w
        hidden_states = hidden_states.reshape(batch_frames, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
        output = hidden_states + residual
        if not return_dict:
            return (output,)
        return TransformerTemporalModelOutput(sample=output)


class VideoLaVITVideoUNet(StrictModelMixin, UNetSpatioTemporalConditionModel):
    """The SVD UNet (same config and weights layout) whose cross-attentions read per-frame motion tokens.

    Takes diffusers' `UNetSpatioTemporalConditionModel` arguments; the released model uses `in_channels=10`
    (noisy latent 4 + keyframe latent 4 + motion 2) and `cross_attention_dim=1024`.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 10,
        out_channels: int = 4,
        down_block_types: tuple[str, ...] = (
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "DownBlockSpatioTemporal",
        ),
        up_block_types: tuple[str, ...] = (
            "UpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
            "CrossAttnUpBlockSpatioTemporal",
        ),
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        addition_time_embed_dim: int = 256,
        projection_class_embeddings_input_dim: int = 768,
        layers_per_block: int | tuple[int] = 2,
        cross_attention_dim: int | tuple[int] = 1024,
        transformer_layers_per_block: int | tuple[int, tuple[tuple]] = 1,
        num_attention_heads: int | tuple[int, ...] = (5, 10, 20, 20),
        num_frames: int = 25,
    ):
        # The arguments (and defaults, except in_channels 10 for Video-LaVIT's inputs) are the SVD UNet's.
        super().__init__(
            sample_size=sample_size,
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=down_block_types,
            up_block_types=up_block_types,
            block_out_channels=block_out_channels,
            addition_time_embed_dim=addition_time_embed_dim,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            layers_per_block=layers_per_block,
            cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block,
            num_attention_heads=num_attention_heads,
            num_frames=num_frames,
        )
        for module in self.modules():
            if type(module) is TransformerSpatioTemporalModel:
                module.__class__ = MotionTransformerSpatioTemporalModel

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        return_dict: bool = True,
    ) -> UNetSpatioTemporalConditionOutput | tuple:
        """Predict the noise of every frame.

        Args:
            sample (`torch.Tensor` `[batch, frames, 10, h, w]`): noisy latents, keyframe latents and motion.
            timestep (`torch.Tensor`, `float` or `int`): the scheduler's timestep.
            encoder_hidden_states (`torch.Tensor` `[batch, frames, 256, cross_attention_dim]`): motion tokens.
            added_time_ids (`torch.Tensor` `[batch, 3]`): `[fps, motion_bucket_id, noise_aug_strength]`.

        Returns:
            `UNetSpatioTemporalConditionOutput` with `sample` `[batch, frames, out_channels, h, w]`.
        """
        batch_size, num_frames = sample.shape[:2]
        if encoder_hidden_states.ndim != 4 or encoder_hidden_states.shape[:2] != (batch_size, num_frames):
            raise InvalidInputError(
                f"encoder_hidden_states must be per-frame motion tokens [{batch_size}, {num_frames}, tokens, dim], "
                f"got {tuple(encoder_hidden_states.shape)}"
            )
        up_factor = 2**self.num_upsamplers
        forward_upsample_size = any(size % up_factor != 0 for size in sample.shape[-2:])
        upsample_size = None

        # 1. time
        timesteps = timestep
        if not torch.is_tensor(timesteps):
            dtype = torch.float64 if isinstance(timestep, float) else torch.int64
            if sample.device.type == "mps":
                dtype = torch.float32 if dtype == torch.float64 else torch.int32
            timesteps = torch.tensor([timesteps], dtype=dtype, device=sample.device)
        elif timesteps.ndim == 0:
            timesteps = timesteps[None].to(sample.device)
        timesteps = timesteps.expand(batch_size)
        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))
        time_embeds = self.add_time_proj(added_time_ids.flatten()).reshape((batch_size, -1)).to(emb.dtype)
        emb = emb + self.add_embedding(time_embeds)
        # b t c h w -> (b t) c h w; the embeddings are repeated per frame, the motion tokens already are per frame.
        sample = sample.flatten(0, 1)
        emb = emb.repeat_interleave(num_frames, dim=0, output_size=emb.shape[0] * num_frames)

        # 2. pre-process
        sample = self.conv_in(sample)
        image_only_indicator = torch.zeros(batch_size, num_frames, dtype=sample.dtype, device=sample.device)

        # 3. down
        down_block_res_samples = (sample,)
        for downsample_block in self.down_blocks:
            context = {}
            if getattr(downsample_block, "has_cross_attention", False):
                context["encoder_hidden_states"] = encoder_hidden_states
            sample, res_samples = downsample_block(
                hidden_states=sample, temb=emb, image_only_indicator=image_only_indicator, **context
            )
            down_block_res_samples += res_samples

        # 4. mid
        sample = self.mid_block(
            hidden_states=sample,
            temb=emb,
            encoder_hidden_states=encoder_hidden_states,
            image_only_indicator=image_only_indicator,
        )

        # 5. up
        for index, upsample_block in enumerate(self.up_blocks):
            res_samples = down_block_res_samples[-len(upsample_block.resnets) :]
            down_block_res_samples = down_block_res_samples[: -len(upsample_block.resnets)]
            if index < len(self.up_blocks) - 1 and forward_upsample_size:
                upsample_size = down_block_res_samples[-1].shape[2:]
            context = {}
            if getattr(upsample_block, "has_cross_attention", False):
                context["encoder_hidden_states"] = encoder_hidden_states
            sample = upsample_block(
                hidden_states=sample,
                temb=emb,
                res_hidden_states_tuple=res_samples,
                upsample_size=upsample_size,
                image_only_indicator=image_only_indicator,
                **context,
            )

        # 6. post-process
        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        # (b t) c h w -> b t c h w
        sample = sample.reshape(batch_size, num_frames, *sample.shape[1:])
        if not return_dict:
            return (sample,)
        return UNetSpatioTemporalConditionOutput(sample=sample)


__all__ = ["MotionTransformerSpatioTemporalModel", "VideoLaVITVideoUNet", "motion_contexts"]
