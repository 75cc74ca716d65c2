"""Hessian-norm calibrated initialization (Temperoni, Skorski & Theobald 2020).

Principle: choose each layer's initial weight scale so that the Frobenius norm of the loss
Hessian with respect to that layer's weights, ||H_l||_F = ||d^2 L / dW_l^2||_F, equals a target.
At initialization the Hessian is dominated by its Gauss-Newton term, and controlling its norm
keeps the curvature seen by each layer, hence the usable step size, comparable across layers.

Algorithm: start from ``base`` (default Glorot normal), then solve for the per-layer scales
s_l (W_l <- s_l W_l) with ||H_l||_F = target for every calibrated layer at once. The norm of one
layer's Hessian depends mostly on the *other* layers' scales (in a ReLU or linear net the
Gauss-Newton block of layer l scales as prod_{k != l} s_k^2 and not at all with s_l), so the
layers are coupled: Newton's method on log ||H_l|| as a function of (log s_k), with the Jacobian
of that map estimated by finite differences (one extra evaluation per layer) and steps clamped
to a factor e^3. For homogeneous networks the map is linear in log-space and one step suffices.
Estimates reuse the same probes at every evaluation (common random numbers), so the map is
smooth even when it is estimated.

The norm is computed exactly (one HVP per weight) for layers of up to ``exact_limit`` weights
and by Hutchinson's estimator with ``probes`` Rademacher probes otherwise. A target that cannot be
reached (e.g. the cross-entropy Hessian saturates as the logits grow) ends with ``reached``
False in the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..validation import check_number
from .registry import register

__all__ = ["hessian_calibrated_"]

LossFn = Callable[[], torch.Tensor] | tuple[Callable[[], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _layer_norm(
    loss_fn: LossFn, weight: torch.Tensor, probes: int, exact_limit: int, generator: torch.Generator
) -> float:
    from ..diagnostics import curvature

    if isinstance(loss_fn, tuple):  # (outputs_fn, loss_on_outputs): Gauss-Newton term
        outputs_fn, loss_on_outputs = loss_fn
        sq = []
        for _ in range(probes):
            z = (torch.randint(0, 2, weight.shape, generator=generator) * 2 - 1).to(weight.dtype)
            gz = curvature.ggn_vp(outputs_fn, loss_on_outputs, [weight], [z])[0]
            sq.append(float((gz.double() ** 2).sum()))
        return math.sqrt(sum(sq) / len(sq))
    res = curvature.hessian_frobenius_norm(
        loss_fn, [weight], probes=probes, exact=weight.numel() <= exact_limit, generator=generator
    )
    return float(res.value)


def hessian_calibrated_(
    model: nn.Module,
    loss_fn: LossFn,
    target: float = 1.0,
    layers: Sequence[str] | None = None,
    base: str | None = "glorot_normal",
    rtol: float = 0.02,
    max_iter: int = 8,
    probes: int = 30,
    exact_limit: int = 2000,
    generator: torch.Generator | None = None,
) -> list[dict]:
    """Scale each layer's weights so that ||d^2 L / dW_l^2||_F = ``target``; returns a report.

    Args:
        model: the model (its parameters are changed in place).
        loss_fn: zero-argument callable returning the loss on a fixed batch (full Hessian), or a
            pair ``(outputs_fn, loss_on_outputs)`` to calibrate the Gauss-Newton term instead.
        target: the Frobenius norm to reach, > 0.
        layers: module names to calibrate (default: every module with a >= 2-D ``weight``, in
            order). Layers whose weight has no elements (``nn.Linear(4, 0)``) have no curvature
            to calibrate and are left out (of the calibration and of the report).
        base: scheme applied first (``inertia.init.apply``), or None to keep the current weights.
        rtol: stop when every |norm / target - 1| <= rtol.
        max_iter: Newton iterations.
        probes, exact_limit: estimator settings (see the module docstring).
        generator: randomness for ``base`` and the probes.

    Returns one dict per layer: ``layer``, ``scale`` (relative to ``base``), ``hessian_norm``
    (achieved), ``target``, ``iterations``, ``reached``.
    """
    target = check_number("target", target, lo=0, lo_open=True)
    rtol = check_number("rtol", rtol, lo=0, lo_open=True)
    from .apply import apply, iter_weight_layers, weight_of

    if generator is None:
        generator = torch.Generator().manual_seed(0)
    if base is not None:
        apply(model, base, generator=generator)
    named = dict(iter_weight_layers(model))
    if layers is None:
        layers = list(named)
    missing = [n for n in layers if n not in named]
    if missing:
        raise ValueError(f"layers {missing} are not weight layers of the model; known: {list(named)}")
    layers = [n for n in layers if weight_of(named[n]).numel() > 0]
    weights = [weight_of(named[n]) for n in layers]
    base_w = [w.detach().clone() for w in weights]
    seeds = [int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) for _ in weights]
    log_t = math.log(target)

    def log_norms(log_s: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            for w, w0, ls in zip(weights, base_w, log_s.tolist(), strict=False):
                w.copy_(w0 * math.exp(ls))
        vals = [
            _layer_norm(loss_fn, w, probes, exact_limit, torch.Generator().manual_seed(sd))
            for w, sd in zip(weights, seeds, strict=False)
        ]
        bad = [n for n, v in zip(layers, vals, strict=False) if not (v > 0 and math.isfinite(v))]
        if bad:
            raise ValueError(f"the Hessian w.r.t. {bad} has norm 0 or non-finite; cannot calibrate it")
        return torch.tensor([math.log(v) for v in vals], dtype=torch.float64)

    n = len(weights)
    log_s = torch.zeros(n, dtype=torch.float64)
    f = log_norms(log_s)
    it = 0
    h = 0.5
    while bool(((f - log_t).abs() > math.log1p(rtol)).any()) and it < max_iter:
        jac = torch.empty(n, n, dtype=torch.float64)
        for k in range(n):
            e = log_s.clone()
            e[k] += h
            jac[:, k] = (log_norms(e) - f) / h
        step = torch.linalg.lstsq(jac, (log_t - f).unsqueeze(1)).solution.squeeze(1)
        step = step.clamp(-3.0, 3.0)
        log_s = log_s + step
        f = log_norms(log_s)
        it += 1
    reached = bool(((f - log_t).abs() <= math.log1p(rtol)).all())
    return [
        {
            "layer": name,
            "scale": math.exp(float(ls)),
            "hessian_norm": math.exp(float(fv)),
            "target": float(target),
            "iterations": it,
            "reached": reached,
        }
        for name, ls, fv in zip(layers, log_s, f, strict=False)
    ]


hessian_calibrated_.model_level = True  # type: ignore[attr-defined]
register("hessian_calibrated", hessian_calibrated_)
