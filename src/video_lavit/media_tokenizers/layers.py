"""Layers whose math is shared by several Video-LaVIT tokenizers.

- `Fp32LayerNorm`: LayerNorm computed in fp32 and cast back, as the reference's fused / fp32-casting LayerNorms
  behave for half-precision inputs.
- `SpatioTemporalBlock`: the factorised (spatial, then temporal) video block of the motion tokenizer and the motion
  condition encoder.
- `QVBiasSelfAttention`: BEiT/EVA-style self-attention (biases on the queries and values, none on the keys), used
  by the EVA-CLIP ViT of the keyframe tokenizer and the motion tokenizer, through SDPA.
- `FusionBlock`: self-attention, cross-attention to a context, MLP (pre-norm), used by the keyframe tokenizer's
  token merger and by its token decoder. The merger's attentions use the reference's "policy" softmax (see
  `policy_attention`); the decoder's use plain (masked) softmax through SDPA.

Every Linear is called as a module, so hooks, PEFT adapters and quantizers see it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .chunked_blocks import chunked_block_forward, runs_in_chunks


@torch.no_grad()
def init_tokenizer_weights(module: nn.Module, std: float) -> bool:
    """The tokenizers' shared initialisation of one module; returns whether `module` was one of its kinds.

    Linear and convolution weights: truncated normal (std `std`), biases zero; LayerNorms: ones and zeros; a
    codebook (`nn.Embedding`): random l2-normalised rows, as the reference.
    """
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
        nn.init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        module.weight.copy_(F.normalize(torch.randn_like(module.weight), dim=-1))
    else:
        return False
    return True


class Fp32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back to the input dtype."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        normalised = F.layer_norm(
            hidden_states.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps
        )
        return normalised.to(hidden_states.dtype)


class Mlp(nn.Module):
    """Linear -> exact GELU -> Linear."""

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class TanhProjection(nn.Module):
    """Linear -> Tanh -> Linear: the tokenizers' projections to and from the code space."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class QVBiasSelfAttention(nn.Module):
    """Multi-head self-attention with biases on queries and values only (BEiT / EVA style), via SDPA.

    The reference keeps the bias-free `qkv` weight and two bias vectors (`q_bias`, `v_bias`); the converters put
    them into `qkv.bias` with zeros for the keys, which computes the same projection. Training may move the key
    part away from zero: that changes no output, as a bias on the keys adds the same amount to all of a query's
    scores, which the softmax cancels.
    """

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, seq, hidden]` -> `[batch, seq, hidden]`."""
        batch, seq_len, hidden = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch, seq_len, 3, self.num_heads, hidden // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # b s 3 h d -> 3 b h s d
        attended = F.scaled_dot_product_attention(query, key, value)
        attended = attended.transpose(1, 2).reshape(batch, seq_len, hidden)  # b h s d -> b s (h d)
        return self.proj(attended)


class SpatioTemporalBlock(GradientCheckpointingLayer):
    """Factorised video block: spatial attention within each frame, temporal attention across the frames at each
    position, then an MLP (pre-norm, fp32 LayerNorms, q/v-biased attentions). Used by the motion tokenizer and the
    motion condition encoder.

    `chunk_bytes` (None by default) opts into running the block in chunks when no gradient is recorded, which
    bounds the memory of large batches (see `video_lavit.media_tokenizers.chunked_blocks`).
    """

    chunk_bytes: int | None = None

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, layer_norm_eps: float):
        super().__init__()
        self.spatial_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.spatial_attention = QVBiasSelfAttention(hidden_size, num_heads)
        self.temporal_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.temporal_attention = QVBiasSelfAttention(hidden_size, num_heads)
        self.mlp_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, frames, positions, hidden]` -> same shape."""
        if self.chunk_bytes is not None and runs_in_chunks(self, hidden_states):
            return chunked_block_forward(self, hidden_states, self.chunk_bytes)
        batch, frames, positions, hidden = hidden_states.shape
        spatial = hidden_states.reshape(batch * frames, positions, hidden)
        spatial = spatial + self.spatial_attention(self.spatial_norm(spatial))
        # (b t) p c -> (b p) t c
        temporal = spatial.reshape(batch, frames, positions, hidden).transpose(1, 2)
        temporal = temporal.reshape(batch * positions, frames, hidden)
        temporal = temporal + self.temporal_attention(self.temporal_norm(temporal))
        temporal = temporal + self.mlp(self.mlp_norm(temporal))
        # (b p) t c -> b t p c
        return temporal.reshape(batch, positions, frames, hidden).transpose(1, 2).contiguous()


def policy_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, policy: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """The reference token merger's attention: a softmax restricted by a 0/1 (or straight-through) `policy`.

    `weights = (exp(s - max(s)) * policy + eps / M) / (sum(exp(s - max(s)) * policy) + eps)`, with the maximum over
    all M keys, allowed or not. Unlike a masked softmax it is defined when a row allows no key at all (it then
    averages every value), and its gradient reaches the policy, which trains the token predictor.

    Args:
        query (`torch.Tensor` `[batch, heads, N, head_dim]`), key / value (`[batch, heads, M, head_dim]`).
        policy (`torch.Tensor` broadcastable to `[batch, 1, N, M]`): 1 where a query may attend to a key.
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) * query.shape[-1] ** -0.5
    scores = scores - scores.amax(dim=-1, keepdim=True)
    weights = scores.float().exp() * policy.float()
    num_keys = key.shape[-2]
    weights = (weights + eps / num_keys) / (weights.sum(dim=-1, keepdim=True) + eps)
    return torch.matmul(weights.to(value.dtype), value)


def _split_heads(states: torch.Tensor, num_heads: int) -> torch.Tensor:
    batch, seq_len, hidden = states.shape
    return states.reshape(batch, seq_len, num_heads, hidden // num_heads).transpose(1, 2)  # b s (h d) -> b h s d


def _merge_heads(states: torch.Tensor) -> torch.Tensor:
    batch, heads, seq_len, head_dim = states.shape
    return states.transpose(1, 2).reshape(batch, seq_len, heads * head_dim)  # b h s d -> b s (h d)


class FusionSelfAttention(nn.Module):
    """Self-attention with a fused, biased qkv projection; plain softmax or the policy softmax."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor, policy: torch.Tensor | None = None) -> torch.Tensor:
        """`hidden_states` `[batch, N, hidden]`, `policy` `[batch, 1, N, N]` or None -> `[batch, N, hidden]`."""
        query, key, value = (_split_heads(part, self.num_heads) for part in self.qkv(hidden_states).chunk(3, dim=-1))
        if policy is None:
            attended = F.scaled_dot_product_attention(query, key, value)
        else:
            attended = policy_attention(query, key, value, policy)
        return self.proj(_merge_heads(attended))


class FusionCrossAttention(nn.Module):
    """Cross-attention from the hidden states to a context; the policy softmax or an additive mask."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor,
        policy: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`hidden_states` `[batch, N, hidden]`, `context` `[batch, M, hidden]` -> `[batch, N, hidden]`.

        `policy` (`[batch, 1, 1 or N, M]`) selects the policy softmax; otherwise `attention_mask` is an additive
        `[batch, 1, 1, M]` bias (or None).
        """
        query = _split_heads(self.query(hidden_states), self.num_heads)
        key = _split_heads(self.key(context), self.num_heads)
        value = _split_heads(self.value(context), self.num_heads)
        if policy is not None:
            attended = policy_attention(query, key, value, policy)
        else:
            attended = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        return self.proj(_merge_heads(attended))


class FusionBlock(GradientCheckpointingLayer):
    """Pre-norm block: self-attention, cross-attention to `context`, MLP."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, layer_norm_eps: float):
        super().__init__()
        self.self_attn_layer_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.self_attn = FusionSelfAttention(hidden_size, num_heads)
        self.cross_attn_layer_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.cross_attn = FusionCrossAttention(hidden_size, num_heads)
        self.mlp_layer_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.mlp = Mlp(hidden_size, intermediate_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor,
        self_attention_policy: torch.Tensor | None = None,
        cross_attention_policy: torch.Tensor | None = None,
        cross_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`hidden_states` `[batch, N, hidden]`, `context` `[batch, M, hidden]` -> `[batch, N, hidden]`."""
        hidden_states = hidden_states + self.self_attn(
            self.self_attn_layer_norm(hidden_states), policy=self_attention_policy
        )
        hidden_states = hidden_states + self.cross_attn(
            self.cross_attn_layer_norm(hidden_states),
            context,
            policy=cross_attention_policy,
            attention_mask=cross_attention_mask,
        )
        return hidden_states + self.mlp(self.mlp_layer_norm(hidden_states))


__all__ = [
    "FusionBlock",
    "FusionCrossAttention",
    "FusionSelfAttention",
    "Fp32LayerNorm",
    "Mlp",
    "QVBiasSelfAttention",
    "SpatioTemporalBlock",
    "TanhProjection",
    "init_tokenizer_weights",
    "policy_attention",
]
