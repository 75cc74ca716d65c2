"""Preconditioned conjugate gradient with Martens' (2010) stopping rule and CG-iterate backtracking.

CG minimizes the quadratic phi(x) = 1/2 x^T A x - b^T x for a symmetric A given only as the map
``apply_a: x -> A x`` on flat vectors (Hestenes & Stiefel 1952; Shewchuk 1994, "CG without the
agonizing pain", algorithm B3 for the preconditioned form with M^{-1} diagonal). Three pieces:

- ``relative_progress_stop``: Martens (2010) section 4.4: stop at iteration i when i > k,
  phi(x_i) < 0 and (phi(x_i) - phi(x_{i-k})) / phi(x_i) < k eps, with k = max(10, ceil(0.1 i)).
- ``next_kept_iteration``: the iterations whose iterates are kept for backtracking,
  j_0 = 1, j_{m+1} = max(ceil(1.3 j_m), j_m + 1) (1, 2, 3, 4, 6, 8, 11, 15, ...: section 4.6's
  geometric spacing, with every early iteration kept).
- ``backtrack``: section 4.6: going back from the last kept iterate, take the earliest one whose
  successors only made the true objective f worse.

Examples:
    >>> import torch
    >>> a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> b = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> res = conjugate_gradient(lambda v: a @ v, b, tol=0.0)
    >>> torch.allclose(res.x, torch.linalg.solve(a, b)), res.iterations, res.reason
    (True, 2, 'converged')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from ...validation import check_integer, check_number

__all__ = [
    "BACKTRACK_GAP",
    "CGResult",
    "Choice",
    "Iterate",
    "backtrack",
    "conjugate_gradient",
    "next_kept_iteration",
    "relative_progress_stop",
]

BACKTRACK_GAP = 1.3  # CG iterates kept at ~1.3^m (Martens 2010 section 4.6)


class Iterate(NamedTuple):
    """A kept CG iterate: its ``iteration`` i, ``x`` = x_i and ``value`` = phi(x_i)."""

    iteration: int
    x: Tensor
    value: float


class Choice(NamedTuple):
    """The iterate ``backtrack`` took: its ``iteration``, the ``step`` x_i and ``value`` f there."""

    iteration: int
    step: Tensor
    value: float


@dataclass
class CGResult:
    """``x``: the last iterate; ``iterates``: the kept ``Iterate``s (the last one included);
    ``values``: phi(x_i) for i = 0..iterations; ``iterations``: CG iterations (= products with A
    after the first); ``products``: products with A in all; ``reason``: why it stopped:
    ``progress`` (Martens' rule), ``max_iter``, ``converged`` (residual 0 to rounding) or
    ``negative_curvature``."""

    x: Tensor
    iterates: list[Iterate]
    values: list[float]
    iterations: int
    products: int
    reason: str


def relative_progress_stop(values: Sequence[float], i: int, tol: float) -> bool:
    """Martens (2010) section 4.4: True when i > k, phi_i < 0 and (phi_i - phi_{i-k}) / phi_i < k tol,
    with k = max(10, ceil(0.1 i)) and ``values[j]`` = phi(x_j).

    >>> relative_progress_stop([0.0] + [-1.0] * 11, 11, 5e-4)  # no progress over the last 10
    True
    >>> relative_progress_stop([0.0] + [-1.0] * 10, 10, 5e-4)  # i must exceed k = 10
    False
    """
    k = max(10, math.ceil(0.1 * i))
    return i > k and values[i] < 0 and (values[i] - values[i - k]) / values[i] < k * tol


def next_kept_iteration(kept: int, gap: float = BACKTRACK_GAP) -> int:
    """The iteration kept after ``kept``: max(ceil(gap kept), kept + 1).

    >>> kept = [1]
    >>> while len(kept) < 8:
    ...     kept.append(next_kept_iteration(kept[-1]))
    >>> kept
    [1, 2, 3, 4, 6, 8, 11, 15]
    """
    return max(math.ceil(kept * gap), kept + 1)


def backtrack(iterates: Sequence[Iterate], objective: Callable[[Tensor], float]) -> Choice:
    """Martens (2010) section 4.6: f = ``objective`` at the last iterate, then at the ones before
    it, from the latest back, while f decreases; the earliest of that decreasing run is taken.
    Pass only the last iterate to take it without backtracking (one evaluation).

    >>> its = [Iterate(i, torch.tensor(float(i)), 0.0) for i in (1, 2, 3)]
    >>> backtrack(its, lambda x: (float(x) - 2.0) ** 2).iteration  # f: 1, 0, 1
    2
    """
    last = iterates[-1]
    best = Choice(last.iteration, last.x, objective(last.x))
    for it in reversed(iterates[:-1]):
        value = objective(it.x)
        if value >= best.value:
            break
        best = Choice(it.iteration, it.x, value)
    return best


def _check_arguments(b: Tensor, x0: Tensor | None, precond_inv: Tensor | None, max_iter: int, min_iter: int) -> None:
    if not isinstance(b, Tensor) or b.dim() != 1:
        raise ValueError(f"b must be a flat (1-d) tensor, got {type(b).__name__} {tuple(getattr(b, 'shape', ()))}")
    for name, t in (("x0", x0), ("precond_inv", precond_inv)):
        if t is not None and (not isinstance(t, Tensor) or t.shape != b.shape):
            raise ValueError(f"{name} must be a tensor shaped like b {tuple(b.shape)}, got {getattr(t, 'shape', t)!r}")
    check_integer("max_iter", max_iter, lo=0)
    check_integer("min_iter", min_iter, lo=0)


def _phi(x: Tensor, r: Tensor, b: Tensor) -> float:
    """phi(x) = 1/2 x^T A x - b^T x = 1/2 x^T (r - b), with r = A x - b: one dot product."""
    return float(0.5 * torch.dot(x, r - b))


def conjugate_gradient(
    apply_a: Callable[[Tensor], Tensor],
    b: Tensor,
    x0: Tensor | None = None,
    *,
    precond_inv: Tensor | None = None,
    max_iter: int = 250,
    min_iter: int = 1,
    tol: float = 5e-4,
    gap: float = BACKTRACK_GAP,
) -> CGResult:
    """Preconditioned CG on phi(x) = 1/2 x^T A x - b^T x from ``x0`` (default 0), stopped by
    ``relative_progress_stop`` (with ``tol`` = eps) at iteration i >= ``min_iter``, after
    ``max_iter`` iterations, when the residual vanishes, or at a direction of non-positive
    curvature. ``apply_a`` maps a flat vector to A times it; ``precond_inv`` is the diagonal of
    M^{-1}. Iterates at ``next_kept_iteration`` steps are kept for ``backtrack``.
    """
    _check_arguments(b, x0, precond_inv, max_iter, min_iter)
    check_number("tol", tol, lo=0)
    check_number("gap", gap, lo=1, lo_open=True)
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    warm = x0 is not None and bool(x0.any())
    r = apply_a(x) - b if warm else -b  # the residual A x - b
    products = int(warm)
    y = r if precond_inv is None else r * precond_inv
    p = -y
    ry = torch.dot(r, y)
    values = [_phi(x, r, b)]
    iterates: list[Iterate] = []
    keep, i, reason = 1, 0, "max_iter"
    tiny = float(torch.finfo(b.dtype).eps) ** 2 * max(float(torch.dot(b, b)), float(torch.finfo(b.dtype).tiny))
    while i < max_iter:
        if float(torch.dot(r, r)) <= tiny or not float(ry) > 0:
            reason = "converged"
            break
        ap = apply_a(p)
        products += 1
        pap = torch.dot(p, ap)
        if not float(pap) > 0:
            reason = "negative_curvature"
            break
        alpha = ry / pap
        x = x + alpha * p
        r = r + alpha * ap
        y = r if precond_inv is None else r * precond_inv
        ry_new = torch.dot(r, y)
        p = -y + (ry_new / ry) * p
        ry = ry_new
        i += 1
        values.append(_phi(x, r, b))
        if i >= keep:
            iterates.append(Iterate(i, x, values[-1]))
            keep = next_kept_iteration(keep, gap)
        if i >= min_iter and relative_progress_stop(values, i, tol):
            reason = "progress"
            break
    if not iterates or iterates[-1].iteration != i:
        iterates.append(Iterate(i, x, values[-1]))
    return CGResult(x=x, iterates=iterates, values=values, iterations=i, products=products, reason=reason)
