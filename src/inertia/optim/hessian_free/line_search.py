"""A backtracking (Armijo) line search along the Hessian-Free step, as in Martens' released code.

With f0 = f(theta), the slope g^T p of f along the step p and the trial step sizes
alpha_0 = lr, alpha_{j+1} = 0.8 alpha_j, the first alpha_j that satisfies the sufficient-decrease
(Armijo) condition

    f(theta + alpha p) <= f0 + c alpha g^T p,      c = 0.01,

is taken; after 60 shrinks without it the step is rejected (alpha = 0, f stays f0).

Examples:
    >>> f = lambda alpha: (alpha - 0.5) ** 2  # f along p, f0 = 0.25, slope -1 at alpha = 0
    >>> armijo_line_search(f, f0=0.25, slope=-1.0)
    LineSearchResult(alpha=0.8, value=0.09000000000000002, evaluations=2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ...validation import check_integer, check_number

__all__ = ["ARMIJO_C", "LINE_SEARCH_MAX", "LINE_SEARCH_SHRINK", "LineSearchResult", "armijo_line_search"]

ARMIJO_C = 1e-2  # sufficient decrease
LINE_SEARCH_SHRINK = 0.8
LINE_SEARCH_MAX = 60  # shrinks before the step is rejected


class LineSearchResult(NamedTuple):
    """``alpha``: the step size taken (0: rejected); ``value``: f there; ``evaluations``: calls of f."""

    alpha: float
    value: float
    evaluations: int


def armijo_line_search(
    objective: Callable[[float], float],
    f0: float,
    slope: float,
    alpha: float = 1.0,
    value: float | None = None,
    *,
    c: float = ARMIJO_C,
    shrink: float = LINE_SEARCH_SHRINK,
    max_shrinks: int = LINE_SEARCH_MAX,
) -> LineSearchResult:
    """The first alpha of ``alpha``, ``shrink`` alpha, ``shrink``^2 alpha, ... with
    ``objective(alpha) <= f0 + c alpha slope``; alpha = 0 (``value`` f0) after ``max_shrinks``
    shrinks. ``objective(alpha)`` is f(theta + alpha p); ``value``, if known, is f at the first
    alpha (it is then not evaluated again). A non-finite f never satisfies the condition.
    """
    check_number("alpha", alpha, lo=0, lo_open=True)
    check_number("shrink", shrink, lo=0, hi=1, lo_open=True, hi_open=True)
    check_integer("max_shrinks", max_shrinks, lo=0)
    evaluations = 0
    if value is None:
        value, evaluations = objective(alpha), 1
    shrinks = 0
    while not value <= f0 + c * alpha * slope:
        if shrinks == max_shrinks:
            return LineSearchResult(0.0, f0, evaluations)
        alpha *= shrink
        shrinks += 1
        value, evaluations = objective(alpha), evaluations + 1
    return LineSearchResult(alpha, value, evaluations)
