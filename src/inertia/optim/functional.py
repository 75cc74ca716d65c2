"""The momentum update rules as pure functions over lists of tensors (the style of torch's sgd.py).

Sutskever, Martens, Dahl & Hinton (2013), eqs. 1-4, with theta the parameters, v the velocity
(v_0 = 0), mu_t the momentum and eps_t the learning rate at update t:

    CM:   v_{t+1} = mu_t v_t - eps_t grad f(theta_t)
          theta_{t+1} = theta_t + v_{t+1}
    NAG:  v_{t+1} = mu_t v_t - eps_t grad f(theta_t + mu_t v_t)
          theta_{t+1} = theta_t + v_{t+1}

The parameter tensors always hold the point where the next gradient is taken. For CM that is
theta_t. For NAG it is the look-ahead point phi_t = theta_t + mu_t v_t, so NAG needs one
gradient per update, like CM. Substituting theta_{t+1} = phi_t - mu_t v_t + v_{t+1}:

    phi_{t+1} = theta_{t+1} + mu_{t+1} v_{t+1}
              = phi_t - mu_t v_t + (1 + mu_{t+1}) v_{t+1}
              = phi_t - eps_t g_t + mu_{t+1} v_{t+1}          (using v_{t+1} = mu_t v_t - eps_t g_t)

which needs mu_{t+1}, known at the end of update t from the schedule. Per tensor this is three
in-place passes: v <- mu_t v - eps_t g (two ops), phi <- phi - eps_t g, phi <- phi + mu_{t+1} v.
torch's ``SGD(nesterov=True)`` makes the same number of passes plus a temporary tensor.

Weight decay ``wd`` adds the gradient of (wd / 2) ||w||^2 at the point where the gradient is taken
(theta_t for CM, phi_t for NAG): g <- g + wd * w.

Memory traffic. A momentum update must read theta, g, v and write theta, v: 5 tensor transfers
(the "floor"). torch's SGD makes 8 for CM (v *= mu; v += g; theta -= lr v) and 11 plus a
temporary for Nesterov. inertia stores the velocity as v = -k d, a direction tensor d and a
per-tensor scalar scale k, and updates them as

    k_{t+1} = mu_t k_t + eps_t,      d_{t+1} = lerp(d_t, g_t, eps_t / k_{t+1})

(then -k_{t+1} d_{t+1} = -(mu_t k_t d_t + eps_t g_t) = mu_t v_t - eps_t g_t = v_{t+1} exactly).
The lerp is one pass (3 transfers), so CM costs 6 transfers (lerp, then theta -= k d) and NAG 9
(lerp, phi -= eps g, phi -= mu_{t+1} k d). When k_{t+1} = 0 (eps = 0 and v = 0) the velocity is 0.

Both paths compute the same floating-point operations in the same order, so their results are
bitwise identical; the ``foreach`` path batches each operation over all tensors of a
(device, dtype, scale, momentum) group with ``torch._foreach_*`` kernels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["momentum", "velocity", "shift_by_velocity"]


def momentum(
    params: list[Tensor],
    grads: list[Tensor],
    directions: list[Tensor],
    scales: list[float],
    *,
    lr: float,
    momentum: float | Sequence[float],
    next_momentum: float | None = None,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    foreach: bool | None = None,
) -> list[float]:
    """One CM or NAG update, in place on ``params`` and ``directions``; returns the new scales.

    The velocity of parameter i is ``v_i = -scales[i] * directions[i]`` (start with zero
    directions and scales 0.0; :func:`velocity` converts).

    Args:
        params: parameters (for NAG: the look-ahead points phi_t), updated in place.
        grads: gradients at ``params``.
        directions: velocity directions d_t, updated in place to d_{t+1}.
        scales: velocity scales k_t (floats).
        lr: eps_t.
        momentum: mu_t, one number or one per tensor (for NAG: the mu each look-ahead point
            phi_t = theta_t + mu_t v_t was built with, which differs between tensors when some
            of them skipped an update at which the schedule changed mu).
        next_momentum: mu_{t+1}, used by NAG to place the next look-ahead point (default mu_t).
        nesterov: NAG if true, else CM.
        weight_decay: L2 coefficient, applied at the point where the gradient was taken.
        foreach: use the ``torch._foreach_*`` path (default: when every gradient is dense).
    """
    if not (len(params) == len(grads) == len(directions) == len(scales)):
        raise ValueError(
            "params, grads, directions and scales must have the same length, got "
            f"{len(params)}, {len(grads)}, {len(directions)}, {len(scales)}"
        )
    momenta = _per_tensor(momentum, len(params), "momentum")
    if foreach is None:
        foreach = all(not g.is_sparse for g in grads)
    fn = _multi_tensor_momentum if foreach else _single_tensor_momentum
    return fn(
        params,
        grads,
        directions,
        scales,
        lr=lr,
        momenta=momenta,
        next_momentum=next_momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
    )


def _per_tensor(value: float | Sequence[float], n: int, name: str) -> list[float]:
    if not isinstance(value, (list, tuple)):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"{name} must be one number or one per tensor ({n}), got {len(value)} values")
    return list(value)


def _single_tensor_momentum(params, grads, directions, scales, *, lr, momenta, next_momentum, nesterov, weight_decay):
    new_scales = []
    for p, g, d, k, mu in zip(params, grads, directions, scales, momenta, strict=False):
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        k_new = mu * k + lr
        if k_new == 0:  # eps = 0 and v = 0: the velocity stays 0
            d.zero_()
        else:
            d.lerp_(g, lr / k_new)  # v_{t+1} = -k_{t+1} d_{t+1} = mu_t v_t - eps_t g
        if nesterov:
            mu_next = mu if next_momentum is None else next_momentum
            p.add_(g, alpha=-lr).add_(d, alpha=-mu_next * k_new)  # phi_t - eps g + mu_{t+1} v_{t+1}
        else:
            p.add_(d, alpha=-k_new)  # theta_t + v_{t+1}
        new_scales.append(k_new)
    return new_scales


def _group(keys: list, *lists):
    """Buckets of the tensors that share device, dtype and key (a tuple of floats), as
    ``(key, (*lists, indices))``.

    Keys are compared, not hashed: under ``torch.compile`` a hashed float is specialized to its
    value (a new graph whenever it changes, i.e. at every step, since the velocity scale does),
    while a comparison between two floats is a guard that keeps holding from step to step."""
    buckets: dict = defaultdict(list)  # (device, dtype) -> [(key, bucket)]
    for i, items in enumerate(zip(*lists, strict=False)):
        same_kind = buckets[(items[0].device, items[0].dtype)]
        for key, bucket in same_kind:
            if key == keys[i]:
                break
        else:
            bucket = tuple([] for _ in range(len(lists) + 1))
            same_kind.append((keys[i], bucket))
        for lst, item in zip(bucket, items, strict=False):
            lst.append(item)
        bucket[-1].append(i)
    return [kb for same_kind in buckets.values() for kb in same_kind]


def _multi_tensor_momentum(params, grads, directions, scales, *, lr, momenta, next_momentum, nesterov, weight_decay):
    new_scales = [0.0] * len(params)
    for (k, mu), (ps, gs, ds, idx) in _group(list(zip(scales, momenta, strict=False)), params, grads, directions):
        if weight_decay != 0:
            gs = torch._foreach_add(gs, ps, alpha=weight_decay)
        k_new = mu * k + lr
        if k_new == 0:
            torch._foreach_zero_(ds)
        else:
            torch._foreach_lerp_(ds, gs, lr / k_new)
        if nesterov:
            mu_next = mu if next_momentum is None else next_momentum
            torch._foreach_add_(ps, gs, alpha=-lr)
            torch._foreach_add_(ps, ds, alpha=-mu_next * k_new)
        else:
            torch._foreach_add_(ps, ds, alpha=-k_new)
        for i in idx:
            new_scales[i] = k_new
    return new_scales


def velocity(direction: Tensor, scale: float) -> Tensor:
    """The velocity v = -scale * direction (a new tensor)."""
    return direction * (-scale)


def shift_by_velocity(
    params: list[Tensor], directions: list[Tensor], scales: list[float], factor: float | Sequence[float]
) -> None:
    """In place: p <- p + factor * v for each parameter (v = -k d), ``factor`` one number or one
    per tensor. ``Momentum.at_theta`` uses factor -mu to move from the look-ahead point phi_t to
    theta_t, and +mu to move back."""
    factors = _per_tensor(factor, len(params), "factor")
    for (k, c), (ps, ds, _) in _group(list(zip(scales, factors, strict=False)), params, directions):
        if k != 0 and c != 0:
            torch._foreach_add_(ps, ds, alpha=-c * k)
