"""Checks of configuration values, raising `InvalidInputError` that names the setting and what it must be.

The configurations run them when they are made (`__post_init__`), so a damaged `config.json` or an impossible
argument fails at once with the package's error, before any layer is built (a zero head count, a negative width or
a width that the heads do not divide would otherwise fail deep inside the model, or allocate nonsense).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .errors import InvalidInputError


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


def check_heads(owner: str, width_name: str, width: int, heads_name: str, heads: int) -> None:
    """`heads` attention heads split `width` evenly (both already checked to be positive)."""
    if width % heads:
        raise InvalidInputError(
            f"{owner}.{width_name} ({width}) must be a multiple of {owner}.{heads_name} ({heads}): every head gets "
            f"the same width; choose a head count that divides it."
        )


__all__ = ["check_heads", "check_non_negative_numbers", "check_positive_ints", "check_positive_numbers"]
