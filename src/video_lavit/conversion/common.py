"""Shared helpers of the checkpoint converters: safe loading and exhaustive key renaming."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import torch

from ..errors import CheckpointConversionError


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
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointConversionError(f"{path}: does not hold a state dict of tensors.")
    return dict(state_dict)


def rename_keys(
    state_dict: Mapping[str, torch.Tensor],
    rules: Sequence[tuple[str, str]],
    expected_keys: set[str],
    source: str,
) -> dict[str, torch.Tensor]:
    """Rename every key by the first matching `(pattern, replacement)` regex rule, and check the result.

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
