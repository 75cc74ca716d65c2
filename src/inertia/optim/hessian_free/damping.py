"""Levenberg-Marquardt damping by the reduction ratio (Martens 2010, section 4.1).

The reduction ratio compares what the step p did to the objective with what the undamped
quadratic model q predicted:

    rho = (f(theta + p) - f(theta)) / (q(p) - q(0)),    q(p) - q(0) = g^T p + 1/2 p^T G p,

and the damping follows it: lambda <- 3/2 lambda when rho < 1/4 (the model was too optimistic:
trust it less), lambda <- 2/3 lambda when rho > 3/4, else unchanged.

Examples:
    >>> reduction_ratio(f_old=1.0, f_new=0.5, model_change=-0.5)
    1.0
    >>> adapt_damping(2.0, 0.1), adapt_damping(3.0, 0.9), adapt_damping(2.0, 0.5)
    (3.0, 2.0, 2.0)
"""

from __future__ import annotations

import math

__all__ = ["DAMPING_BOOST", "DAMPING_DROP", "RHO_HIGH", "RHO_LOW", "adapt_damping", "reduction_ratio"]

DAMPING_BOOST = 3.0 / 2.0  # lambda <- 3/2 lambda when rho < 1/4
DAMPING_DROP = 2.0 / 3.0  # lambda <- 2/3 lambda when rho > 3/4
RHO_LOW, RHO_HIGH = 0.25, 0.75


def reduction_ratio(f_old: float, f_new: float, model_change: float) -> float:
    """rho = (f_new - f_old) / model_change, with ``model_change`` = q(p) - q(0); -inf when the
    step raised f (as Martens' code: such a step counts as a failure, whatever the model said),
    NaN when the model predicts no decrease (``model_change >= 0``).

    >>> reduction_ratio(1.0, 1.5, -0.5)
    -inf
    """
    if f_new > f_old:
        return -math.inf
    if model_change < 0:
        return (f_new - f_old) / model_change
    return math.nan


def adapt_damping(damping: float, rho: float, bounds: tuple[float, float] = (0.0, math.inf)) -> float:
    """Martens (2010) section 4.1: ``damping`` x 3/2 when rho < 1/4 (or rho is NaN: the loss is
    not finite or the model predicted no decrease), x 2/3 when rho > 3/4, else unchanged; then
    clamped to ``bounds``.

    >>> adapt_damping(1.0, float("nan"), bounds=(0.0, 1.2))
    1.2
    """
    if not rho >= RHO_LOW:  # catches NaN
        damping *= DAMPING_BOOST
    elif rho > RHO_HIGH:
        damping *= DAMPING_DROP
    return min(max(damping, bounds[0]), bounds[1])
