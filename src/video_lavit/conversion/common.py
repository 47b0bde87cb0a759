"""Shared helpers of the checkpoint converters: safe loading, exhaustive key renaming, and safe writing.

- Reference `.bin` files are read with `torch.load(weights_only=True)` (no pickled code runs), and every tensor is
  checked: string keys, floating-point values (every weight of these models is), at least one dimension and one
  element, no NaN or infinity. A damaged checkpoint fails here, naming the tensor, instead of converting to a model
  that computes garbage.
- `write_folder` writes the converted folder into a temporary folder beside the target and moves it into place only
  when complete, so an interrupted conversion leaves no folder that loads; an existing folder with files in it is
  replaced only with `overwrite=True`, and never when it is (or holds) one of the conversion's inputs.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError

from ..errors import CheckpointConversionError, InvalidInputError, OutputError


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
        if not value.is_floating_point():
            raise CheckpointConversionError(
                f"{source}: {key} holds {str(value.dtype).removeprefix('torch.')} values, but every weight of this "
                "model is floating point; the checkpoint is damaged or not the reference's."
            )
        if value.ndim == 0 or value.numel() == 0:
            raise CheckpointConversionError(
                f"{source}: {key} has shape {tuple(value.shape)}, which no weight of this model has; the checkpoint "
                "is damaged or not the reference's."
            )
        finite = torch.isfinite(value)
        if not bool(finite.all()):
            raise CheckpointConversionError(
                f"{source}: {key} holds {int((~finite).sum()):,} NaN or infinite values; the checkpoint is damaged "
                "(re-download it)."
            )


def build_config(config_class, source: str, **values):
    """`config_class(**values)`, with an impossible value (e.g. a head count) reported against `source`."""
    try:
        return config_class(**values)
    except InvalidInputError as error:
        raise CheckpointConversionError(f"{source}: cannot build the model's configuration: {error}") from error


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def write_folder(
    output_dir: str | os.PathLike,
    write: Callable[[Path], None],
    *,
    overwrite: bool = False,
    sources: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Run `write(folder)` on a new temporary folder beside `output_dir`, then move it to `output_dir`.

    Raises:
        `OutputError`: `output_dir` is a file, holds files and `overwrite` is False, is (or holds) one of `sources`,
            or cannot be written (read-only, disk full); nothing is left behind then.
    """
    target = Path(output_dir).expanduser()
    resolved = _resolved(target)
    for source in sources:
        if source is None:
            continue
        source_path = _resolved(source)
        if resolved == source_path or resolved in source_path.parents:
            raise OutputError(
                f"{target}: is the conversion's input {source} (or holds it); writing there would overwrite the "
                "source. Choose another output folder."
            )
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: exists and is a file; choose a folder to write the converted model to.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise OutputError(
            f"{target}: exists and holds files; choose a new or empty folder, or pass overwrite=True (--overwrite) "
            "to replace the whole folder once the conversion has succeeded."
        )
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=parent))
    except OSError as error:
        raise OutputError(
            f"{target}: cannot write in {parent} ({error.strerror or error}); choose a writable folder."
        ) from error
    try:
        write(staging)
    except (OSError, SafetensorError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        reason = getattr(error, "strerror", None) or str(error)
        raise OutputError(
            f"{target}: writing the converted model failed ({reason}); check that the disk has room and the folder "
            "is writable. Nothing was written."
        ) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        if target.exists():
            previous = Path(tempfile.mkdtemp(prefix=f".{target.name}.previous-", dir=parent))
            os.replace(target, previous / target.name)
            os.replace(staging, target)
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(staging, target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(
            f"{target}: moving the converted model into place failed ({error.strerror or error})."
        ) from error
    return target


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
