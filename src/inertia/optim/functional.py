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

Both paths compute the same floating-point operations in the same order, so their results are
bitwise identical; the ``foreach`` path batches each operation over all tensors of a
(device, dtype) group with ``torch._foreach_*`` kernels.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Optional

import torch
from torch import Tensor

__all__ = ["momentum", "theta_from_lookahead"]


def momentum(
    params: list[Tensor],
    grads: list[Tensor],
    velocities: list[Tensor],
    *,
    lr: float,
    momentum: float,
    next_momentum: Optional[float] = None,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    foreach: Optional[bool] = None,
) -> None:
    """One CM or NAG update, in place on ``params`` and ``velocities``.

    Args:
        params: parameters (for NAG: the look-ahead points phi_t), updated in place.
        grads: gradients at ``params``.
        velocities: v_t per parameter, updated in place to v_{t+1} (start them at zero).
        lr: eps_t.
        momentum: mu_t.
        next_momentum: mu_{t+1}, used by NAG to place the next look-ahead point (default mu_t).
        nesterov: NAG if true, else CM.
        weight_decay: L2 coefficient, applied at the point where the gradient was taken.
        foreach: use the ``torch._foreach_*`` path (default: when every tensor is dense).
    """
    if not (len(params) == len(grads) == len(velocities)):
        raise ValueError(
            f"params, grads and velocities must have the same length, got {len(params)}, {len(grads)}, {len(velocities)}")
    if next_momentum is None:
        next_momentum = momentum
    if foreach is None:
        foreach = not torch.jit.is_scripting() and all(not g.is_sparse for g in grads)
    fn = _multi_tensor_momentum if foreach else _single_tensor_momentum
    fn(params, grads, velocities, lr=lr, momentum=momentum, next_momentum=next_momentum,
       nesterov=nesterov, weight_decay=weight_decay)


def _single_tensor_momentum(params, grads, velocities, *, lr, momentum, next_momentum, nesterov, weight_decay):
    for p, g, v in zip(params, grads, velocities):
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        v.mul_(momentum).add_(g, alpha=-lr)  # v_{t+1} = mu_t v_t - eps_t g
        if nesterov:
            p.add_(g, alpha=-lr).add_(v, alpha=next_momentum)  # phi_{t+1} = phi_t - eps g + mu_{t+1} v_{t+1}
        else:
            p.add_(v)  # theta_{t+1} = theta_t + v_{t+1}


def _group(params, grads, velocities):
    groups: dict = defaultdict(lambda: ([], [], []))
    for p, g, v in zip(params, grads, velocities):
        ps, gs, vs = groups[(p.device, p.dtype)]
        ps.append(p)
        gs.append(g)
        vs.append(v)
    return groups.values()


def _multi_tensor_momentum(params, grads, velocities, *, lr, momentum, next_momentum, nesterov, weight_decay):
    for ps, gs, vs in _group(params, grads, velocities):
        if weight_decay != 0:
            gs = torch._foreach_add(gs, ps, alpha=weight_decay)
        torch._foreach_mul_(vs, momentum)
        torch._foreach_add_(vs, gs, alpha=-lr)
        if nesterov:
            torch._foreach_add_(ps, gs, alpha=-lr)
            torch._foreach_add_(ps, vs, alpha=next_momentum)
        else:
            torch._foreach_add_(ps, vs)


def theta_from_lookahead(params: list[Tensor], velocities: list[Tensor], momentum: float, *, sign: float = -1.0) -> None:
    """In place: phi <- phi + sign * mu * v (sign -1: look-ahead phi_t to iterate theta_t;
    +1: back). Used by ``Momentum.at_theta``."""
    if momentum == 0:
        return
    for ps, _, vs in _group(params, velocities, velocities):
        torch._foreach_add_(ps, vs, alpha=sign * momentum)
