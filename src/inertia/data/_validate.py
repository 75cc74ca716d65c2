"""Eager argument checks shared by the generators: each names the bad value and what is accepted."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["check_count", "make_rng"]


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools are rejected: ``True`` is not a count)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def make_rng(seed: object) -> np.random.Generator:
    """``numpy.random.default_rng(seed)`` for a non-negative integer seed (None, which would draw
    fresh entropy, is refused: every generator here is deterministic)."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))
