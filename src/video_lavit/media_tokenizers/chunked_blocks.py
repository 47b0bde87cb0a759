"""Opt-in chunked execution of `SpatioTemporalBlock`s: the same numbers with bounded memory for large batches.

A block's spatial attention reads one frame at a time and its temporal attention and MLP one position at a time, so
it can run on chunks of whole frames, then of whole positions, with each chunk's largest intermediate (the qkv
projection or the MLP's hidden layer) at most `chunk_bytes`. Only the block's input, its transposed copy and its
output stay whole-batch tensors. With the full-size motion tokenizer (random weights) on a 2-core CPU (fp32,
`benchmarks/bench_motion_tokenizer.py --quick`) it needs 2.0x less peak memory than whole blocks at batch 1 and
2.7-3.2x less at batch 4, and runs 1.13-1.36x faster at batch 4, as small chunks avoid the fresh `mmap`ed pages that
glibc serves for allocations above 32 MiB, whose pages fault in anew at every call.

Chunks run only where no gradient is recorded (autograd would keep every chunk's activations anyway) and not while
`torch.compile` traces. Forward hooks on a block's submodules see one chunk per call. Every output row depends only
on the rows of its own frame (or position), so the result equals the whole block's up to floating-point rounding.

    from video_lavit.media_tokenizers.chunked_blocks import enable_chunked_blocks
    enable_chunked_blocks(motion_tokenizer)          # 16 MiB chunks; enable_chunked_blocks(model, None) turns off
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidInputError

DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024


def enable_chunked_blocks(model: nn.Module, chunk_bytes: int | None = DEFAULT_CHUNK_BYTES) -> int:
    """Run every `SpatioTemporalBlock` of `model` in chunks of at most `chunk_bytes` (None: whole); returns how many
    blocks were set."""
    if chunk_bytes is not None and (
        isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1
    ):
        raise InvalidInputError(f"chunk_bytes must be a positive integer or None, got {chunk_bytes!r}")
    from .layers import SpatioTemporalBlock

    blocks = [module for module in model.modules() if isinstance(module, SpatioTemporalBlock)]
    for block in blocks:
        block.chunk_bytes = chunk_bytes
    return len(blocks)


def runs_in_chunks(block: nn.Module, hidden_states: torch.Tensor) -> bool:
    """Whether `block` runs `hidden_states` in chunks: no gradient recorded, not traced by torch.compile."""
    if torch.compiler.is_compiling():
        return False
    recorded = hidden_states.requires_grad or any(parameter.requires_grad for parameter in block.parameters())
    return not (torch.is_grad_enabled() and recorded)


def chunked_block_forward(block: nn.Module, hidden_states: torch.Tensor, chunk_bytes: int) -> torch.Tensor:
    """`block(hidden_states)` computed chunk by chunk: `[batch, frames, positions, hidden]` -> same shape."""
    batch, frames, positions, hidden = hidden_states.shape
    widest = max(3 * hidden, block.mlp.fc1.out_features) * hidden_states.element_size()
    budget = max(1, chunk_bytes // widest)  # rows of `hidden` values per chunk
    temporal = hidden_states.new_empty(batch, positions, frames, hidden)
    for b, t in _chunk_slices(batch, frames, positions, budget):
        spatial = hidden_states[b, t]  # [nb, nt, p, c]
        update = block.spatial_attention(block.spatial_norm(spatial.reshape(-1, positions, hidden)))
        temporal[b, :, t] = (spatial + update.view(spatial.shape)).transpose(1, 2)  # b t p c -> b p t c
    output = torch.empty_like(hidden_states)
    for b, p in _chunk_slices(batch, positions, frames, budget):
        chunk = temporal[b, p]  # [nb, np, t, c]
        rows = chunk.reshape(-1, frames, hidden)
        rows = rows + block.temporal_attention(block.temporal_norm(rows))
        rows = rows + block.mlp(block.mlp_norm(rows))
        output[b, :, p] = rows.view(chunk.shape).transpose(1, 2)  # b p t c -> b t p c
    return output


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


__all__ = ["DEFAULT_CHUNK_BYTES", "chunked_block_forward", "enable_chunked_blocks", "runs_in_chunks"]
