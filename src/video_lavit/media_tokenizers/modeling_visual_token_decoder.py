"""The Video-LaVIT visual token decoder: keyframe code indices -> SDXL UNet conditioning.

Implements the keyframe token decoder (reference `modeling_decoder.py`, "highres" token decoder): the codes of an
image (up to 256 of them, 32-d each) are projected to the decoder width and given learned positions by their order;
256 learned queries pass through 12 blocks of self-attention, cross-attention to the codes (padding masked with an
additive -10000, as the reference) and an MLP; a final LayerNorm and a Linear-Tanh-Linear head reconstruct 256
ViT-like features, from which two projections make `prompt_embeds` `[B, 256, 768 + 1280]` and an attention pool
(the mean token queries all tokens) makes `pooled_prompt_embeds` `[B, 1280]`: the two text-encoder outputs an
SDXL-architecture UNet expects.

Differences from the reference:
- the decoder carries a copy of the keyframe codebook, so code indices (as the language model generates them) are
  decoded without the 1.4B-parameter tokenizer; `codes` (e.g. straight-through codes in training) are accepted too;
- a batch comes as padded indices with an attention mask (or a list of index tensors), not a flat tensor + counts;
- attention runs through SDPA (the pooling computes only the one query it returns);
- `forward` also returns the reconstructed features and, given target ViT features, the cosine reconstruction loss
  LaVIT trains its tokenizer with (our addition: the reference released no training code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from ..errors import InvalidInputError
from ..loading import StrictPreTrainedMixin
from .configuration_visual_tokenizer import VideoLaVITVisualTokenDecoderConfig
from .layers import Fp32LayerNorm, FusionBlock, TanhProjection, init_tokenizer_weights
from .vector_quantizer import VectorQuantizer


class AttentionPool(nn.Module):
    """CLIP-style attention pooling: the mean token (plus positions) attends to all tokens; one output vector."""

    def __init__(self, num_tokens: int, hidden_size: int, num_heads: int, output_size: int):
        super().__init__()
        self.num_heads = num_heads
        self.position_embedding = nn.Parameter(torch.zeros(num_tokens + 1, hidden_size))
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.c_proj = nn.Linear(hidden_size, output_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, N, hidden]` -> `[batch, output_size]`."""
        batch, _, hidden = hidden_states.shape
        tokens = torch.cat([hidden_states.mean(dim=1, keepdim=True), hidden_states], dim=1)
        tokens = tokens + self.position_embedding.to(tokens.dtype)
        head_dim = hidden // self.num_heads
        # b s (h d) -> b h s d
        query = self.q_proj(tokens[:, :1]).reshape(batch, 1, self.num_heads, head_dim).transpose(1, 2)
        key = self.k_proj(tokens).reshape(batch, -1, self.num_heads, head_dim).transpose(1, 2)
        value = self.v_proj(tokens).reshape(batch, -1, self.num_heads, head_dim).transpose(1, 2)
        pooled = F.scaled_dot_product_attention(query, key, value).reshape(batch, hidden)
        return self.c_proj(pooled)


@dataclass
class VisualTokenDecoderOutput(ModelOutput):
    """Output of `VideoLaVITVisualTokenDecoder`.

    Attributes:
        loss (`torch.Tensor`, when `target_features` is given): mean (1 - cosine similarity) to the targets.
        prompt_embeds (`torch.Tensor` `[batch, num_queries, sum(prompt_embed_dims)]`): UNet cross-attention input.
        pooled_prompt_embeds (`torch.Tensor` `[batch, pooled_embed_dim]`): UNet added text embedding.
        reconstruction (`torch.Tensor` `[batch, num_queries, output_hidden_size]`): reconstructed features.
    """

    loss: torch.Tensor | None = None
    prompt_embeds: torch.Tensor | None = None
    pooled_prompt_embeds: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None


class VideoLaVITVisualTokenDecoderPreTrainedModel(StrictPreTrainedMixin, PreTrainedModel):
    config_class = VideoLaVITVisualTokenDecoderConfig
    base_model_prefix = "visual_token_decoder"
    main_input_name = "indices"
    supports_gradient_checkpointing = True
    _no_split_modules = ["FusionBlock"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if init_tokenizer_weights(module, std):
            return
        if isinstance(module, VideoLaVITVisualTokenDecoder):
            nn.init.trunc_normal_(module.position_embedding, std=std)
            nn.init.trunc_normal_(module.query_embeddings, std=std)
        elif isinstance(module, AttentionPool):
            nn.init.normal_(module.position_embedding, std=module.position_embedding.shape[-1] ** -0.5)


class VideoLaVITVisualTokenDecoder(VideoLaVITVisualTokenDecoderPreTrainedModel):
    """Keyframe codes -> `prompt_embeds` and `pooled_prompt_embeds` for the keyframe (SDXL-architecture) UNet."""

    def __init__(self, config: VideoLaVITVisualTokenDecoderConfig):
        super().__init__(config)
        hidden = config.hidden_size
        self.quantizer = VectorQuantizer(config.codebook_size, config.code_dim)
        self.input_proj = nn.Linear(config.code_dim, hidden)
        self.position_embedding = nn.Parameter(torch.zeros(1, config.num_queries, hidden))
        self.query_embeddings = nn.Parameter(torch.zeros(1, config.num_queries, hidden))
        self.layers = nn.ModuleList(
            FusionBlock(hidden, config.num_attention_heads, config.intermediate_size, config.layer_norm_eps)
            for _ in range(config.num_hidden_layers)
        )
        self.post_layernorm = Fp32LayerNorm(hidden, eps=config.layer_norm_eps)
        self.head = TanhProjection(hidden, hidden, config.output_hidden_size)
        self.prompt_projections = nn.ModuleList(
            nn.Linear(config.output_hidden_size, dim) for dim in config.prompt_embed_dims
        )
        self.pooler = AttentionPool(
            config.num_queries, config.output_hidden_size, config.num_attention_heads, config.pooled_embed_dim
        )
        self.post_init()

    def _pad_indices(
        self, indices: torch.Tensor | Sequence[torch.Tensor], attention_mask: torch.Tensor | None
    ) -> tuple[torch.LongTensor, torch.BoolTensor]:
        if not isinstance(indices, torch.Tensor):
            rows = [torch.as_tensor(row, dtype=torch.long).reshape(-1) for row in indices]
            if not rows:
                raise InvalidInputError("indices is an empty list; pass one index tensor per image")
            if attention_mask is not None:
                raise InvalidInputError(
                    "pass attention_mask with a padded index tensor, not with a list of index tensors"
                )
            lengths = torch.tensor([len(row) for row in rows])
            padded = torch.full((len(rows), int(lengths.max())), -1, dtype=torch.long)
            for row_index, row in enumerate(rows):
                padded[row_index, : len(row)] = row
            indices = padded.to(self.device)
            attention_mask = (
                torch.arange(indices.shape[1], device=self.device)[None] < lengths.to(self.device)[:, None]
            )
        if indices.ndim != 2:
            raise InvalidInputError(
                f"indices must be [batch, num_codes] (padded) or a list of 1-D tensors, got {indices.ndim}-D"
            )
        if attention_mask is None:
            attention_mask = indices >= 0
        attention_mask = attention_mask.to(torch.bool)
        if attention_mask.shape != indices.shape:
            raise InvalidInputError(
                f"attention_mask {tuple(attention_mask.shape)} must match indices {tuple(indices.shape)}"
            )
        return indices.masked_fill(~attention_mask, 0), attention_mask

    def forward(
        self,
        indices: torch.LongTensor | Sequence[torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        codes: torch.Tensor | None = None,
        target_features: torch.Tensor | None = None,
        return_dict: bool = True,
        **kwargs,
    ) -> VisualTokenDecoderOutput:
        """Decode the codes of a batch of images.

        Args:
            indices (`torch.LongTensor` `[batch, num_codes]` or a list of 1-D tensors): code indices in
                `[0, codebook_size)`, in the order the tokenizer (or language model) produced them; a padded tensor
                marks padding with -1 or through `attention_mask`.
            attention_mask (`torch.Tensor` `[batch, num_codes]`, *optional*): 1 at real codes.
            codes (`torch.Tensor` `[batch, num_codes, code_dim]`, *optional*): code vectors instead of `indices`
                (e.g. the tokenizer's straight-through `quantized`); needs `attention_mask`.
            target_features (`torch.Tensor` `[batch, num_queries, output_hidden_size]`, *optional*): features to
                reconstruct (the ViT's); gives `loss`.
        """
        if (indices is None) == (codes is None):
            raise InvalidInputError("pass exactly one of indices and codes")
        if codes is None:
            indices, attention_mask = self._pad_indices(indices, attention_mask)
            codes = self.quantizer.indices_to_codes(indices)
        elif attention_mask is None:
            raise InvalidInputError("codes need an attention_mask marking the real codes")
        attention_mask = attention_mask.to(torch.bool)
        batch, num_codes, _ = codes.shape
        if num_codes > self.config.num_queries:
            raise InvalidInputError(f"an image has at most {self.config.num_queries} codes, got {num_codes}")
        dtype = self.input_proj.weight.dtype
        code_states = self.input_proj(codes.to(dtype)).masked_fill(~attention_mask[..., None], 0)
        code_states = code_states + self.position_embedding[:, :num_codes]
        # Padding is masked additively with -10000, as the reference (an image without codes then averages them).
        cross_attention_mask = ((~attention_mask).to(dtype) * -10000.0)[:, None, None, :]  # b 1 1 m
        hidden_states = self.query_embeddings.expand(batch, -1, -1)
        for layer in self.layers:
            hidden_states = layer(hidden_states, code_states, cross_attention_mask=cross_attention_mask)
        reconstruction = self.head(self.post_layernorm(hidden_states))
        prompt_embeds = torch.cat([projection(reconstruction) for projection in self.prompt_projections], dim=-1)
        pooled_prompt_embeds = self.pooler(reconstruction)
        loss = None
        if target_features is not None:
            similarity = F.cosine_similarity(reconstruction.float(), target_features.float(), dim=-1)
            loss = (1 - similarity).mean()
        output = VisualTokenDecoderOutput(
            loss=loss,
            prompt_embeds=prompt_embeds,
            pooled_prompt_embeds=pooled_prompt_embeds,
            reconstruction=reconstruction,
        )
        return output if return_dict else output.to_tuple()


__all__ = ["VideoLaVITVisualTokenDecoder", "VideoLaVITVisualTokenDecoderPreTrainedModel", "VisualTokenDecoderOutput"]
