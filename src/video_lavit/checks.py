"""Checks of user-given values, raising `InvalidInputError` that names the value and what it must be.

- Configuration settings: the configurations run these when they are made (`__post_init__`), so a damaged
  `config.json` or an impossible argument fails at once with the package's error, before any layer is built (a
  zero head count, a negative width or a width that the heads do not divide would otherwise fail deep inside the
  model, or allocate nonsense).
- Input tensors: NaN or infinity in pixel values or motion would flow through every layer and come out as plausible
  looking but meaningless codes (all code 0) or frames (all NaN); the models' entry points refuse them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from .errors import InvalidInputError


class CheckedConfigMixin:
    """Put before `PreTrainedConfig` in a configuration's bases: its `check_values()` runs when the configuration is
    made and whenever transformers validates it (e.g. before saving)."""

    def check_values(self) -> None:
        """Raise `InvalidInputError` for settings the model cannot be built with (each configuration's own)."""

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.check_values()

    def validate_architecture(self):
        super().validate_architecture()
        self.check_values()


def _fail(owner: str, name: str, value, requirement: str) -> InvalidInputError:
    return InvalidInputError(
        f"{owner}.{name} must be {requirement}, got {value!r}; fix the configuration (its config.json, or the "
        "argument)."
    )


def check_positive_ints(owner: str, config, names: Iterable[str]) -> None:
    """Each named attribute of `config` is an int of at least 1."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(owner, name, value, "a positive integer")


def check_positive_numbers(owner: str, config, names: Iterable[str]) -> None:
    """Each named attribute of `config` is a finite number above 0."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise _fail(owner, name, value, "a positive, finite number")


def check_non_negative_numbers(owner: str, config, names: Iterable[str]) -> None:
    """Each named attribute of `config` is a finite number of at least 0."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise _fail(owner, name, value, "a finite number of at least 0")


def check_at_most(owner: str, config, limits: dict[str, int]) -> None:
    """Each named attribute of `config` is at most its limit (layer counts far beyond any released model would take
    minutes just to build, before any weight is read)."""
    for name, limit in limits.items():
        value = getattr(config, name)
        if isinstance(value, (int, float)) and value > limit:
            raise _fail(owner, name, value, f"at most {limit} (the released model has far fewer)")


def check_heads(owner: str, width_name: str, width: int, heads_name: str, heads: int) -> None:
    """`heads` attention heads split `width` evenly (both already checked to be positive)."""
    if width % heads:
        raise InvalidInputError(
            f"{owner}.{width_name} ({width}) must be a multiple of {owner}.{heads_name} ({heads}): every head gets "
            f"the same width; choose a head count that divides it."
        )


def check_finite(tensor: torch.Tensor, name: str) -> None:
    """`tensor` is a floating-point tensor without NaN or infinity."""
    if not isinstance(tensor, torch.Tensor):
        raise InvalidInputError(f"{name} must be a tensor, got {type(tensor).__name__}.")
    if not (tensor.is_floating_point() or tensor.is_complex()):
        raise InvalidInputError(f"{name} must be floating point, got {str(tensor.dtype).removeprefix('torch.')}.")
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InvalidInputError(
            f"{name} holds {bad:,} NaN or infinite values (of {tensor.numel():,}); they would give meaningless codes "
            "or frames. Check how the input was made (e.g. a division by a zero std)."
        )


__all__ = [
    "CheckedConfigMixin",
    "check_at_most",
    "check_finite",
    "check_heads",
    "check_non_negative_numbers",
    "check_positive_ints",
    "check_positive_numbers",
]
