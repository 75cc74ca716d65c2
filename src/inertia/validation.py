"""Checks for numeric and categorical arguments, with one wording for every message.

Every public entry point validates eagerly (DESIGN.md, "Validate eagerly and say exactly what is
wrong"): the message names the argument, says what is accepted and shows the value it got, e.g.
``ValueError("momentum must be a finite number in [0, 1), got 1.5")``. The optimizers, the
initializers, the schedules, configs and the command line all check through these functions, so
they reject the same values the same way. ``where`` (optional) says where the value came from
(``" in param group 1"``, ``" at step 3"``) and is put after the accepted range.

Examples:
    >>> check_number("lr", 0.1, lo=0)
    0.1
    >>> check_number("momentum", 1.5, lo=0, hi=1, hi_open=True)
    Traceback (most recent call last):
    ...
    ValueError: momentum must be a finite number in [0, 1), got 1.5
    >>> check_integer("batch", 0, lo=1)
    Traceback (most recent call last):
    ...
    ValueError: batch must be a positive integer, got 0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = [
    "accepted_number",
    "check_bool",
    "check_choice",
    "check_integer",
    "check_number",
    "is_integer",
    "is_real",
]

T = TypeVar("T")


def is_real(value: Any) -> bool:
    """True for a finite real number (``int`` or ``float``, not ``bool``)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_integer(value: Any) -> bool:
    """True for an ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def accepted_number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> str:
    """The words for what a check accepts: ``"a positive integer"``, ``"a finite number in [0, 1)"``.

    >>> accepted_number(0, lo_open=True)
    'a positive finite number'
    >>> accepted_number(0, 1, hi_open=True)
    'a finite number in [0, 1)'
    """
    kind = "integer" if integer else "finite number"
    if hi is None and lo is not None and lo == 0:
        return f"a positive {kind}" if lo_open else f"a non-negative {kind}"
    if hi is None and lo is not None and integer and lo == 1 and not lo_open:
        return "a positive integer"
    if lo is None and hi is None:
        return "an integer" if integer else "a finite number"
    if hi is None:
        return f"{'an integer' if integer else 'a finite number'} {'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f"{'an' if integer else 'a'} {kind} {'<' if hi_open else '<='} {hi}"
    article = "an" if integer else "a"
    return f"{article} {kind} in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _outside(value: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and (value >= hi if hi_open else value > hi)
    return below or above


def check_number(
    name: str,
    value: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    where: str = "",
) -> float:
    """``value`` as a ``float`` if it is a finite real number within the bounds, else ``ValueError``.

    >>> check_number("damping", 0)
    0.0
    >>> check_number("tol", 0, lo=0, lo_open=True)
    Traceback (most recent call last):
    ...
    ValueError: tol must be a positive finite number, got 0
    """
    if not is_real(value) or _outside(value, lo, hi, lo_open, hi_open):
        accepted = accepted_number(lo, hi, lo_open=lo_open, hi_open=hi_open)
        raise ValueError(f"{name} must be {accepted}{where}, got {value!r}")
    return float(value)


def check_integer(
    name: str,
    value: Any,
    *,
    lo: int | None = None,
    hi: int | None = None,
    where: str = "",
) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``[lo, hi]``, else ``ValueError``.

    >>> check_integer("max_iter", 3, lo=1)
    3
    >>> check_integer("seeds", 2.0, lo=1)
    Traceback (most recent call last):
    ...
    ValueError: seeds must be a positive integer, got 2.0
    """
    if not is_integer(value) or _outside(value, lo, hi, False, False):
        raise ValueError(f"{name} must be {accepted_number(lo, hi, integer=True)}{where}, got {value!r}")
    return int(value)


def check_bool(name: str, value: Any, *, where: str = "") -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0/1 or a string), else ``ValueError``.

    >>> check_bool("line_search", "yes")
    Traceback (most recent call last):
    ...
    ValueError: line_search must be True or False, got 'yes'
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False{where}, got {value!r}")
    return value


def check_choice(name: str, value: T, choices: Iterable[Any], *, where: str = "") -> T:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them.

    >>> check_choice("curvature", "gn", ("ggn", "hessian"))
    Traceback (most recent call last):
    ...
    ValueError: curvature must be one of ['ggn', 'hessian'], got 'gn'
    """
    options = list(choices)
    try:
        known = value in options
    except TypeError:  # an unhashable or oddly comparing value is not one of the choices
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {options}{where}, got {value!r}")
    return value
