"""Hessian-Free's options: their defaults (written here once) and their checks.

``HessianFreeOptions`` is the one place the defaults are written: ``HessianFree``'s signature
reads them from it, ``DEFAULTS`` is its mapping form (what ``load_state_dict`` and unpickling fill
an older state with, what a config accepts), and constructing it validates every value through
``inertia.validation``, so the optimizer, ``HessianFree.check_options`` and a config reject the
same values with the same words. ``LOOP_DEFAULTS`` are the options a training loop around
``HessianFree`` reads (``inertia.experiments.train``): the share of each batch given to the
curvature products (Martens 2010, section 4.3: the curvature batch is smaller than the gradient
batch).

Examples:
    >>> DEFAULTS["cg_max_iter"], DEFAULTS["preconditioner_exponent"]
    (250, 0.75)
    >>> check_options(damping=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: damping must be a non-negative finite number, got -1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from functools import partial
from types import MappingProxyType
from typing import Any

from ...validation import check_bool, check_choice, check_integer, check_number, is_integer

__all__ = [
    "CURVATURES",
    "DEFAULTS",
    "LOOP_DEFAULTS",
    "PRECONDITIONERS",
    "HessianFreeOptions",
    "check_options",
]

PRECONDITIONERS = ("martens", "none")
CURVATURES = ("ggn", "hessian")


@dataclass(frozen=True)
class HessianFreeOptions:
    """``HessianFree``'s keyword options with their defaults (Martens 2010's values where he gives
    one); constructing one checks every value (``ValueError`` naming it and what is accepted).

    Args:
        lr: the step multiplier; the line search starts from it (Martens: 1).
        damping: the initial Levenberg-Marquardt lambda (adapted unless ``adapt_damping=False``).
        cg_max_iter: CG iterations per HF iteration at most (Martens: 250).
        cg_init_decay: zeta, CG starts from zeta times the previous HF iteration's last CG iterate
            (Martens: 0.95; 0 starts from zero).
        structural_damping: mu of Martens & Sutskever (2011): adds mu lambda J_h^T J_h to the
            curvature, with h the ``hidden`` the curvature closure returns.
        preconditioner: ``"martens"``: M = (diag(F) + lambda + weight_decay)^exponent, F the
            empirical Fisher; ``"none"`` or None: no preconditioner.
        preconditioner_exponent: xi (Martens: 0.75).
        cg_min_iter: CG iterations at least before the progress rule may stop it.
        cg_tol: eps of the progress rule (Martens: 5e-4).
        backtracking: CG-iteration backtracking on the gradient batch's loss.
        line_search: the Armijo line search on the gradient batch's loss (else alpha = lr).
        adapt_damping: adapt lambda by the reduction ratio rho.
        damping_bounds: lambda is kept in [low, high].
        curvature: ``"ggn"`` (positive semi-definite; needs the model outputs) or ``"hessian"``
            (the true Hessian of the loss by double backward; CG stops at negative curvature).
        weight_decay: wd, the objective is loss + wd/2 ||theta||^2 (exact in gradient and curvature).
        preconditioner_examples: cases used by the graph estimate of the preconditioner when
            ``step`` gets no ``per_example``.
    """

    lr: float = 1.0
    damping: float = 1.0
    cg_max_iter: int = 250
    cg_init_decay: float = 0.95
    structural_damping: float = 0.0
    preconditioner: str | None = "martens"
    preconditioner_exponent: float = 0.75
    cg_min_iter: int = 1
    cg_tol: float = 5e-4
    backtracking: bool = True
    line_search: bool = True
    adapt_damping: bool = True
    damping_bounds: tuple[float, float] = (1e-8, 1e8)
    curvature: str = "ggn"
    weight_decay: float = 0.0
    preconditioner_examples: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):
            _CHECKS[f.name](f.name, getattr(self, f.name))
        if self.cg_min_iter > self.cg_max_iter:
            raise ValueError(f"cg_min_iter must be <= cg_max_iter, got {self.cg_min_iter} > {self.cg_max_iter}")
        if self.curvature == "hessian" and self.structural_damping > 0:
            raise ValueError(
                "structural_damping needs curvature='ggn' (it is a Gauss-Newton term), got curvature='hessian'"
            )

    def as_dict(self) -> dict[str, Any]:
        """The options by name (a param group's keys)."""
        return asdict(self)


def _check_bounds(name: str, value: Any) -> None:
    def number(v: Any) -> bool:  # +inf is a fine upper bound
        return (is_integer(v) or isinstance(v, float)) and not math.isnan(v)

    pair = isinstance(value, (tuple, list)) and len(value) == 2 and all(number(v) for v in value)
    if not pair or not 0 <= value[0] <= value[1]:
        raise ValueError(f"{name} must be a pair (low, high) with 0 <= low <= high, got {value!r}")


_CHECKS: dict[str, Callable[[str, Any], object]] = {
    "lr": partial(check_number, lo=0, lo_open=True),
    "damping": partial(check_number, lo=0),
    "cg_max_iter": partial(check_integer, lo=1),
    "cg_init_decay": partial(check_number, lo=0, hi=1),
    "structural_damping": partial(check_number, lo=0),
    "preconditioner": partial(check_choice, choices=(*PRECONDITIONERS, None)),
    "preconditioner_exponent": partial(check_number, lo=0, hi=1),
    "cg_min_iter": partial(check_integer, lo=1),
    "cg_tol": partial(check_number, lo=0),
    "backtracking": check_bool,
    "line_search": check_bool,
    "adapt_damping": check_bool,
    "damping_bounds": _check_bounds,
    "curvature": partial(check_choice, choices=CURVATURES),
    "weight_decay": partial(check_number, lo=0),
    "preconditioner_examples": partial(check_integer, lo=1),
}

DEFAULTS: Mapping[str, Any] = MappingProxyType(HessianFreeOptions().as_dict())

LOOP_DEFAULTS: Mapping[str, Any] = MappingProxyType({"curvature_fraction": 0.25})


def check_options(**options: Any) -> HessianFreeOptions:
    """The options (the defaults completed by ``options``), checked; ``ValueError`` for an unknown
    name (listing the accepted ones) or a bad value.

    >>> check_options(cg_iters=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown HessianFree option(s) ['cg_iters']; accepted: ['adapt_damping', ...]
    """
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown HessianFree option(s) {unknown}; accepted: {sorted(DEFAULTS)}")
    bounds = options.get("damping_bounds")
    if isinstance(bounds, list):  # a config's YAML list
        options["damping_bounds"] = tuple(bounds)
    return HessianFreeOptions(**options)
