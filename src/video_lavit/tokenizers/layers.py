"""Layers whose math is shared by several Video-LaVIT tokenizers.

- `Fp32LayerNorm`: LayerNorm computed in fp32 and cast back, as the reference's fused / fp32-casting LayerNorms
  behave for half-precision inputs.
- `SpatioTemporalBlock`: the factorised (spatial, then temporal) video block of the motion tokenizer and the motion
  condition encoder.
- `QVBiasSelfAttention`: BEiT/EVA-style self-attention (one bias-free qkv projection, learned biases on the queries
  and values only), used by the EVA-CLIP ViT of the keyframe tokenizer and the motion tokenizer, through SDPA.
- `FusionBlock`: self-attention, cross-attention to a context, MLP (pre-norm), used by the keyframe tokenizer's
  token merger and by its token decoder. The merger's attentions use the reference's "policy" softmax (see
  `policy_attention`); the decoder's use plain (masked) softmax through SDPA.
"""

from __future__ import annotations

import contextlib
import threading

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _module_hooks
from transformers.modeling_layers import GradientCheckpointingLayer


@torch.no_grad()
def init_tokenizer_weights(module: nn.Module, std: float) -> bool:
    """The tokenizers' shared initialisation of one module; returns whether `module` was one of its kinds.

    Linear and convolution weights: truncated normal (std `std`), biases zero; LayerNorms: ones and zeros; the q/v
    biases of `QVBiasSelfAttention`: zero; a codebook (`nn.Embedding`): random l2-normalised rows, as the reference.
    """
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv3d)):
        nn.init.trunc_normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, QVBiasSelfAttention):
        nn.init.zeros_(module.q_bias)
        nn.init.zeros_(module.v_bias)
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
    """Linear -> exact GELU -> Linear.

    When autograd does not record the call, the GELU overwrites the first Linear's output instead of allocating a
    second wide tensor, and inside `scratch_scope()` (the chunked transformer blocks on the CPU) that output goes to
    one scratch tensor reused from call to call. The same numbers, about 5% and 2-4% faster per block on the CPU at
    the motion tokenizer's sizes, where each fresh allocation of that size faults its pages in anew. Both stay off
    where an observer could tell: under `torch.compile` (and the scratch under `torch.jit` tracing), or when the
    activation is not a plain `nn.GELU`, `fc1` (for the scratch) not a plain `nn.Linear`, or either carries forward
    hooks (module or global ones); the scratch also under autocast and when `fc2`, whose input it is, has hooks.
    """

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        wide = self._fc1_into_scratch(hidden_states)
        if wide is None:
            wide = self.fc1(hidden_states)
            if not self._activates_in_place(wide):
                return self.fc2(self.act(wide))
        return self.fc2(torch.ops.aten.gelu_(wide, approximate=self.act.approximate))

    def _activates_in_place(self, hidden_states: torch.Tensor) -> bool:
        if torch.compiler.is_compiling() or (torch.is_grad_enabled() and hidden_states.requires_grad):
            return False
        if type(self.act) is not nn.GELU or _global_forward_hooks():
            return False
        return not any(module._forward_hooks or module._forward_pre_hooks for module in (self.act, self.fc1))

    def _fc1_into_scratch(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        """`fc1(hidden_states)` written into the current `scratch_scope()`'s tensor, or None where that does not
        apply (no scope, autograd recording, tracing, autocast, a wrapped `fc1`, hooks, including on `fc2`, whose
        input the scratch is)."""
        fc1 = self.fc1
        if getattr(_SCRATCH, "buffers", None) is None or type(fc1) is not nn.Linear:
            return None
        if self.fc2._forward_hooks or self.fc2._forward_pre_hooks:
            return None
        recorded = hidden_states.requires_grad or any(parameter.requires_grad for parameter in fc1.parameters())
        if (torch.is_grad_enabled() and recorded) or not self._activates_in_place(hidden_states):
            return None
        return _linear_into_scratch("mlp", hidden_states, fc1.weight, fc1.bias)


_SCRATCH = threading.local()


def _linear_into_scratch(
    name: str, hidden_states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor | None:
    """`F.linear(hidden_states, weight, bias)`, written into the current `scratch_scope()`'s tensor `name` (grown as
    needed), or None where that is not the same computation or not allowed: no scope, `torch.jit` tracing or
    scripting, a dtype or device other than the weight's, or an input F.linear would not hand to one `addmm`
    (more than 3 dimensions, or not contiguous), autocast, or a tensor-subclass weight. The caller checks autograd
    and hooks."""
    buffers = getattr(_SCRATCH, "buffers", None)
    if buffers is None or torch.jit.is_tracing() or torch.jit.is_scripting():
        return None
    if hidden_states.dtype != weight.dtype or hidden_states.device != weight.device:
        return None
    if torch.is_autocast_enabled(hidden_states.device.type) or type(weight) not in (torch.Tensor, nn.Parameter):
        return None  # autocast does not cast `out=` calls; tensor subclasses (e.g. quantised) dispatch F.linear
    if hidden_states.ndim > 3 or not hidden_states.is_contiguous():
        return None
    rows, features = hidden_states.numel() // hidden_states.shape[-1], weight.shape[0]
    key = (name, hidden_states.device, hidden_states.dtype)
    if key not in buffers or buffers[key].numel() < rows * features:
        buffers[key] = hidden_states.new_empty(rows * features)
    output = buffers[key][: rows * features].view(rows, features)
    flat = hidden_states.view(rows, -1)
    if bias is None:
        torch.mm(flat, weight.t(), out=output)
    else:
        torch.addmm(bias, flat, weight.t(), out=output)  # what F.linear computes, into the scratch
    return output.view(*hidden_states.shape[:-1], features)


@contextlib.contextmanager
def scratch_scope():
    """Inside this context (in this thread), `Mlp`s and `QVBiasSelfAttention`s without autograd write their widest
    intermediate into one reused scratch tensor each per device and dtype, freed when the outermost such context
    ends. Used by the chunked blocks."""
    outermost = getattr(_SCRATCH, "buffers", None) is None
    if outermost:
        _SCRATCH.buffers = {}
    try:
        yield
    finally:
        if outermost:
            _SCRATCH.buffers = None


def _global_forward_hooks() -> bool:
    """Whether global module forward (pre-)hooks are registered (`torch.nn.modules.module.register_module_*`)."""
    hooks = (getattr(_module_hooks, name, None) for name in ("_global_forward_hooks", "_global_forward_pre_hooks"))
    return any(hooks)


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

    Inside `scratch_scope()` (the chunked transformer blocks on the CPU) and without autograd, the qkv projection
    is written into a reused scratch tensor rather than a fresh one (the same numbers). The projection is computed
    from `qkv.weight` directly (the q/v biases are separate parameters), as in the reference, so hooks on `qkv` never
    see it.
    """

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(hidden_size))
        self.v_bias = nn.Parameter(torch.zeros(hidden_size))
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, seq, hidden]` -> `[batch, seq, hidden]`."""
        batch, seq_len, hidden = hidden_states.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.q_bias), self.v_bias])
        qkv = None
        parts = (hidden_states, bias, self.qkv.weight)
        if not (torch.compiler.is_compiling() or (torch.is_grad_enabled() and any(t.requires_grad for t in parts))):
            # inside the chunked blocks: a reused scratch tensor (dead once the attention has run)
            qkv = _linear_into_scratch("qkv", hidden_states, self.qkv.weight, bias)
        if qkv is None:
            qkv = F.linear(hidden_states, self.qkv.weight, bias)
        qkv = qkv.reshape(batch, seq_len, 3, self.num_heads, hidden // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # b s 3 h d -> 3 b h s d
        attended = F.scaled_dot_product_attention(query, key, value)
        attended = attended.transpose(1, 2).reshape(batch, seq_len, hidden)  # b h s d -> b s (h d)
        return self.proj(attended)


class SpatioTemporalBlock(GradientCheckpointingLayer):
    """Factorised video block: spatial attention within each frame, temporal attention across the frames at each
    position, then an MLP (pre-norm, fp32 LayerNorms, q/v-biased attentions). Used by the motion tokenizer and the
    motion condition encoder.

    Without autograd on the CPU the block runs in chunks of whole frames (spatial attention) and of whole positions
    (temporal attention and MLP), each chunk's largest intermediate at most `chunk_bytes` (16 MiB by default, but at
    least one frame or position; set the attribute to `None` to run the block whole). Every output row depends only
    on the rows of its own frame (or position), so the result is the same up to floating-point rounding (in our
    tests, bit for bit). It is faster because glibc serves allocations above 32 MiB with fresh `mmap`s whose pages
    fault in anew at every call, while smaller ones reuse its heap and stay in cache; only the block's input and
    output layouts stay whole-batch tensors, so large batches also need far less memory. Forward hooks on the
    block's submodules see one chunk per call. With autograd, under `torch.compile` / `torch.export` / `torch.jit`
    tracing, or on a GPU (whose caching allocator has no such cost) the block runs whole. A sequence of blocks run
    through `run_spatio_temporal_blocks` shares its whole-batch tensors as well.

    `compile_block(**kwargs)` opts into `torch.compile` for both ways of running (see
    `VideoLaVITMotionTokenizer.compile`).
    """

    chunk_bytes: int | None = 16 * 1024 * 1024

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, layer_norm_eps: float):
        super().__init__()
        self.spatial_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.spatial_attention = QVBiasSelfAttention(hidden_size, num_heads)
        self.temporal_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.temporal_attention = QVBiasSelfAttention(hidden_size, num_heads)
        self.mlp_norm = Fp32LayerNorm(hidden_size, eps=layer_norm_eps)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def compile_block(self, functions: tuple | None = None, **kwargs) -> tuple:
        """Run this block through `torch.compile`d functions; returns them so that other blocks can share them
        (`other.compile_block(functions)`: one compiled graph per input shape for all of them, as dynamo treats the
        block's parameters as inputs). Keyword arguments go to `torch.compile` when `functions` is None (shared
        functions keep the options they were compiled with). The state dict is unchanged; a pickled or deep-copied
        block runs eagerly (compiled functions cannot be pickled)."""
        if functions is None:
            functions = tuple(torch.compile(function, **kwargs) for function in _EAGER_BLOCK_FUNCTIONS)
        self._functions = functions
        return functions

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_functions", None)  # back to the eager functions (the class default)
        return state

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`hidden_states` `[batch, frames, positions, hidden]` -> same shape (contiguous)."""
        if not self._runs_in_chunks(hidden_states):
            return self._functions[2](self, hidden_states)
        hidden_states = hidden_states.contiguous()
        output = torch.empty_like(hidden_states)
        with scratch_scope():
            self._forward_chunks(hidden_states, hidden_states.new_empty(_temporal_shape(hidden_states)), output)
        return output

    def _runs_in_chunks(self, hidden_states: torch.Tensor) -> bool:
        """Whether the block runs in chunks (CPU, no autograd, eager) rather than whole (see the class docstring)."""
        return not (
            self.chunk_bytes is None
            or hidden_states.device.type != "cpu"
            or torch.compiler.is_compiling()
            or torch.jit.is_tracing()
            or torch.jit.is_scripting()
            or (
                torch.is_grad_enabled()
                and (hidden_states.requires_grad or any(parameter.requires_grad for parameter in self.parameters()))
            )
        )

    def _forward_chunks(self, hidden_states: torch.Tensor, temporal: torch.Tensor, output: torch.Tensor) -> None:
        """The chunked block: contiguous `hidden_states` `[b, t, p, c]` -> `output` (same shape; may be
        `hidden_states` itself, which is read completely before the first write), through the scratch tensor
        `temporal` `[b, p, t, c]`."""
        spatial_update, temporal_updates, _ = self._functions
        batch, frames, positions, hidden = hidden_states.shape
        widest = max(3 * hidden, self.mlp.fc1.out_features) * hidden_states.element_size()
        budget = max(1, self.chunk_bytes // widest)  # rows per chunk
        # b t p c -> b p t c, written chunk by chunk by the residual addition after the spatial attention
        for b, t in _chunk_slices(batch, frames, positions, budget):
            spatial = hidden_states[b, t]
            update = spatial_update(self, spatial.reshape(-1, positions, hidden))
            torch.add(spatial, update.view_as(spatial), out=temporal[b, :, t].transpose(1, 2))
        # b p t c -> b t p c, likewise after the MLP
        for b, p in _chunk_slices(batch, positions, frames, budget):
            shape = temporal[b, p].shape
            residual, update = temporal_updates(self, temporal[b, p].reshape(-1, frames, hidden))
            torch.add(residual.view(shape), update.view(shape), out=output[b, :, p].transpose(1, 2))


def run_spatio_temporal_blocks(blocks, hidden_states: torch.Tensor, overwrite_input: bool = False) -> torch.Tensor:
    """Run `SpatioTemporalBlock`s one after the other on `[batch, frames, positions, hidden]`.

    Where every block would run in chunks, none carries forward hooks and none was compiled on its own
    (`block.compile()`, `torch.compile(block)`), they all share two whole-batch tensors
    (the hidden states, overwritten block after block, and the transposed scratch) instead of two fresh ones per
    block: the same numbers, about 4% faster on the CPU, as fresh tensors of that size fault their pages in anew.
    With `overwrite_input=True` the caller gives up `hidden_states` (it must not be used afterwards) and its memory
    is reused as well; otherwise it is copied first. In every other case the blocks are simply called in turn.
    """
    blocks = list(blocks)
    if (
        not blocks
        or _global_forward_hooks()
        or any(
            not isinstance(block, SpatioTemporalBlock)  # e.g. wrapped by torch.compile
            or block._compiled_call_impl is not None  # block.compile()
            or block._forward_hooks
            or block._forward_pre_hooks
            or not block._runs_in_chunks(hidden_states)
            for block in blocks
        )
    ):
        for block in blocks:
            hidden_states = block(hidden_states)
        return hidden_states
    if not (overwrite_input and hidden_states.is_contiguous()):
        hidden_states = hidden_states.clone(memory_format=torch.contiguous_format)
    temporal = hidden_states.new_empty(_temporal_shape(hidden_states))
    with scratch_scope():
        for block in blocks:
            block._forward_chunks(hidden_states, temporal, hidden_states)
    return hidden_states


def _temporal_shape(hidden_states: torch.Tensor) -> tuple[int, int, int, int]:
    batch, frames, positions, hidden = hidden_states.shape
    return batch, positions, frames, hidden


def _spatial_update(block: SpatioTemporalBlock, spatial: torch.Tensor) -> torch.Tensor:
    """`[frames, positions, hidden]` -> the spatial attention's residual update."""
    return block.spatial_attention(block.spatial_norm(spatial))


def _temporal_updates(block: SpatioTemporalBlock, temporal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`[positions, frames, hidden]` -> (the input plus its temporal attention, the MLP's residual update)."""
    temporal = temporal + block.temporal_attention(block.temporal_norm(temporal))
    return temporal, block.mlp(block.mlp_norm(temporal))


def _whole_block(block: SpatioTemporalBlock, hidden_states: torch.Tensor) -> torch.Tensor:
    """The block in one piece (autograd, torch.compile, GPUs)."""
    batch, frames, positions, hidden = hidden_states.shape
    spatial = hidden_states.reshape(batch * frames, positions, hidden)
    # b t p c -> (b p) t c, written directly by the residual addition
    temporal = _add_transposed(spatial, _spatial_update(block, spatial), batch).view(batch * positions, frames, hidden)
    # (b p) t c -> b t p c
    return _add_transposed(*_temporal_updates(block, temporal), batch)


_EAGER_BLOCK_FUNCTIONS = (_spatial_update, _temporal_updates, _whole_block)
SpatioTemporalBlock._functions = _EAGER_BLOCK_FUNCTIONS


def _chunk_slices(outer: int, inner: int, unit_rows: int, budget_rows: int):
    """Slices `(outer_slice, inner_slice)` covering an `[outer, inner]` grid of units of `unit_rows` rows each, in
    chunks of at most `budget_rows` rows (but at least one unit): several whole `outer` items at a time when one
    fits, else runs of units within one `outer` item."""
    units = max(1, budget_rows // unit_rows)
    if units >= inner:
        step = units // inner
        for start in range(0, outer, step):
            yield slice(start, min(start + step, outer)), slice(None)
        return
    for index in range(outer):
        for start in range(0, inner, units):
            yield slice(index, index + 1), slice(start, min(start + units, inner))


def _add_transposed(residual: torch.Tensor, update: torch.Tensor, batch: int) -> torch.Tensor:
    """`residual + update`, both `[(batch a), b, hidden]`, returned contiguous as `[batch, b, a, hidden]`.

    Without autograd (and outside torch.compile, which fuses this by itself) the addition writes straight into
    the transposed layout, saving the separate copy that `.transpose(1, 2).contiguous()` would make.
    """
    _, inner, hidden = residual.shape
    residual = residual.view(batch, -1, inner, hidden)
    update = update.view(batch, -1, inner, hidden)
    if torch.compiler.is_compiling() or (torch.is_grad_enabled() and (residual.requires_grad or update.requires_grad)):
        return (residual + update).transpose(1, 2).contiguous()
    output = residual.new_empty(batch, inner, residual.shape[1], hidden)
    torch.add(residual, update, out=output.transpose(1, 2))
    return output


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
