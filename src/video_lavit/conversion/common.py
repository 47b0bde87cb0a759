"""Shared helpers of the checkpoint converters: safe loading, exhaustive key renaming, and safe writing.

- Reference `.bin` files are read with `torch.load(weights_only=True)` (no pickled code runs), and every tensor is
  checked: string keys, floating-point values (every weight of these models is), at least one dimension and one
  element, no NaN or infinity. A damaged checkpoint fails here, naming the tensor, instead of converting to a model
  that computes garbage.
- Converted folders are written with `files.write_folder`: completely or not at all, never over files without
  `overwrite=True`, never over the conversion's own inputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence

import torch

from ..errors import CheckpointConversionError, InvalidInputError
from ..files import write_folder

__all__ = [
    "build_config",
    "check_tensors",
    "fuse_qv_biases",
    "load_into_meta_model",
    "load_reference_state_dict",
    "rename_keys",
    "write_folder",
]


def load_reference_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a reference `.bin` state dict with `torch.load(weights_only=True)` (no pickled code is run)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointConversionError(f"{path}: no such checkpoint file; pass the reference's .bin file.")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        raise CheckpointConversionError(
            f"{path}: not a loadable PyTorch state dict ({type(error).__name__}: {error}); pass the reference's .bin."
        ) from error
    if (
        isinstance(state_dict, Mapping)
        and "state_dict" in state_dict
        and isinstance(state_dict["state_dict"], Mapping)
    ):
        state_dict = state_dict["state_dict"]
    if not isinstance(state_dict, Mapping):
        raise CheckpointConversionError(f"{path}: does not hold a state dict of tensors.")
    check_tensors(state_dict, path)
    return dict(state_dict)


_WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensors(state_dict: Mapping, source: str) -> None:
    """Raise `CheckpointConversionError` unless every entry is a string key and a finite floating-point tensor."""
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise CheckpointConversionError(
                f"{source}: holds a key of type {type(key).__name__} ({key!r}); a state dict maps parameter names to "
                "tensors. Is this the right file?"
            )
        if not isinstance(value, torch.Tensor):
            raise CheckpointConversionError(
                f"{source}: {key} is a {type(value).__name__}, not a tensor; is this the right file?"
            )
        if value.layout != torch.strided:
            raise CheckpointConversionError(
                f"{source}: {key} is a {str(value.layout).removeprefix('torch.')} tensor; every weight of this model "
                "is a dense tensor. Is this the right file?"
            )
        if value.dtype not in _WEIGHT_DTYPES:
            raise CheckpointConversionError(
                f"{source}: {key} holds {str(value.dtype).removeprefix('torch.')} values, but every weight of this "
                "model is float16, bfloat16, float32 or float64; the checkpoint is damaged or not the reference's."
            )
        if value.ndim == 0 or value.numel() == 0:
            raise CheckpointConversionError(
                f"{source}: {key} has shape {tuple(value.shape)}, which no weight of this model has; the checkpoint "
                "is damaged or not the reference's."
            )
        # float64 weights are converted to float32: values beyond its range would become infinite.
        finite = torch.isfinite(value.float() if value.dtype == torch.float64 else value)
        if not bool(finite.all()):
            raise CheckpointConversionError(
                f"{source}: {key} holds {int((~finite).sum()):,} NaN or infinite values (or values beyond float32's "
                "range); the checkpoint is damaged (re-download it)."
            )


def build_config(config_class, source: str, **values):
    """`config_class(**values)`, with an impossible value (e.g. a head count) reported against `source`."""
    try:
        return config_class(**values)
    except InvalidInputError as error:
        raise CheckpointConversionError(f"{source}: cannot build the model's configuration: {error}") from error


def rename_keys(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[tuple[str, str]],
    expected_keys: set[str],
    source: str,
) -> dict[str, torch.Tensor]:
    """Rename every key by the first matching `(pattern, replacement)` regex rule, and check the result.

    The q / v bias pairs of BEiT-style attentions become one `qkv.bias` (see `fuse_qv_biases`).

    Raises `CheckpointConversionError` naming the keys that no rule maps, and the keys the model expects that the
    checkpoint lacks, so that no weight is silently dropped or left at its initial value.
    """
    renamed, unmapped = {}, []
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    for key, value in state_dict.items():
        for pattern, replacement in compiled:
            if pattern.fullmatch(key):
                renamed[pattern.sub(replacement, key)] = value
                break
        else:
            unmapped.append(key)
    renamed = fuse_qv_biases(renamed, source)
    missing = sorted(expected_keys - set(renamed))
    unexpected = sorted(set(renamed) - expected_keys)
    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} keys no rule maps (first: {', '.join(unmapped[:5])})")
    if unexpected:
        problems.append(f"{len(unexpected)} mapped keys the model lacks (first: {', '.join(unexpected[:5])})")
    if missing:
        problems.append(f"{len(missing)} model keys missing from the checkpoint (first: {', '.join(missing[:5])})")
    if problems:
        raise CheckpointConversionError(
            f"{source}: the checkpoint does not match the expected layout: {'; '.join(problems)}. "
            "Check that this is the right file and configuration."
        )
    return renamed


def fuse_qv_biases(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Every `<prefix>q_bias` / `<prefix>v_bias` pair -> `<prefix>qkv.bias` = `[q_bias, zeros, v_bias]`.

    The reference's BEiT / EVA attentions keep a bias-free qkv weight and separate query and value biases;
    `QVBiasSelfAttention.qkv` is one `nn.Linear` with a bias, zero for the keys, which computes the same projection.
    """
    fused = {}
    for key, value in state_dict.items():
        if key.endswith("q_bias") or key.endswith("v_bias"):
            prefix = key[: -len("q_bias")]
            query, values = state_dict.get(prefix + "q_bias"), state_dict.get(prefix + "v_bias")
            if query is None or values is None or query.shape != values.shape:
                raise CheckpointConversionError(
                    f"{source}: {key} has no matching {'v' if key.endswith('q_bias') else 'q'}_bias of its shape"
                )
            fused[prefix + "qkv.bias"] = torch.cat([query, torch.zeros_like(query), values])
        else:
            fused[key] = value
    return fused


def load_into_meta_model(
    build: Callable[[], torch.nn.Module],
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[tuple[str, str]],
    source: str,
    dtype: torch.dtype | None = torch.float32,
    converted: Mapping[str, torch.Tensor] | None = None,
    finish: Callable[[torch.nn.Module], None] | None = None,
) -> torch.nn.Module:
    """The converters' one way to fill a model: build it on the meta device, rename the reference's keys, check every
    shape, load the weights in place, and check that nothing is left unfilled.

    Args:
        build: makes the model (called under `torch.device("meta")`, so nothing is allocated).
        state_dict: the reference's weights; `rules` rename them (see `rename_keys`).
        source: named in errors.
        dtype: the weights' dtype in the model (None keeps each tensor's own dtype).
        converted: weights already in the model's names (e.g. from a converted folder), loaded as they are.
        finish: called on the loaded model before the last check, e.g. to rebuild non-persistent buffers.

    Returns:
        The model in eval mode.
    """
    with torch.device("meta"):
        model = build()
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    converted = dict(converted or {})
    weights = rename_keys(state_dict, rules, set(expected) - set(converted), source)
    weights.update(converted)
    unknown = sorted(set(weights) - set(expected))
    if unknown:
        raise CheckpointConversionError(f"{source}: {unknown[0]} is not a weight of the model")
    wrong = [key for key, value in weights.items() if tuple(value.shape) != expected[key]]
    if wrong:
        key = wrong[0]
        raise CheckpointConversionError(
            f"{source}: {len(wrong)} weights of the wrong shape; {key} is {tuple(weights[key].shape)}, expected "
            f"{expected[key]}"
        )
    model.load_state_dict(
        {key: (value if dtype is None else value.to(dtype)).contiguous() for key, value in weights.items()},
        assign=True,
    )
    if finish is not None:
        finish(model)
    left = [name for name, tensor in (*model.named_parameters(), *model.named_buffers()) if tensor.is_meta]
    if left:
        raise CheckpointConversionError(f"{source}: {len(left)} tensors were not filled (first: {left[:3]})")
    return model.eval()
