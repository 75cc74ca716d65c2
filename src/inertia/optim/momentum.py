"""``Momentum``: classical momentum and Nesterov's accelerated gradient exactly as in
Sutskever, Martens, Dahl & Hinton (2013), for any learning-rate and momentum schedule.

See :mod:`inertia.optim.functional` for the update rules. The class holds state and
hyperparameters only:

- per parameter: its velocity v = -k d, stored as a direction tensor ``state[p]["velocity_direction"]``
  and a float scale ``state[p]["velocity_scale"]`` (see :mod:`inertia.optim.functional` for why:
  it saves a quarter of the memory traffic); :meth:`Momentum.velocity` returns v;
- per group: ``step`` (updates made so far) and, for NAG, ``applied_momentum``: the mu that
  the current look-ahead point phi_t = theta_t + mu_t v_t was built with.

How this differs from ``torch.optim.SGD(momentum=mu, nesterov=True)``: SGD keeps a buffer
``b <- mu b + g`` and steps ``p <- p - lr (g + mu b)``. Writing v = -lr b, this is NAG for the
look-ahead point only while lr and mu never change: SGD's buffer accumulates raw gradients, so
when lr changes, SGD rescales the whole past velocity by the new lr, and when mu changes, the
look-ahead point it has already moved to was built with the old mu. inertia's rule keeps
v_{t+1} = mu_t v_t - eps_t g exactly for any schedule (docs/optim.md has a worked example).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable, Iterable, Optional, Union

import torch
from torch.optim import Optimizer

from . import functional as F

Hyper = Union[float, Callable[[int], float]]

_SCHEDULE_PLACEHOLDER = "__schedule__"


def _check_lr(value: float, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"lr must be a non-negative finite number{where}, got {value!r}")
    return float(value)


def _check_momentum(value: float, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not 0 <= value < 1:
        raise ValueError(f"momentum must be in [0, 1){where}, got {value!r}")
    return float(value)


class Momentum(Optimizer):
    """Classical momentum (CM) or Nesterov's accelerated gradient (NAG), Sutskever et al. 2013.

    Args:
        params: iterable of parameters or of param-group dicts.
        lr: eps, a number or a schedule ``step -> float`` (step counts this group's updates from
            0). A number can also be driven by ``torch.optim.lr_scheduler`` as usual.
        momentum: mu in [0, 1), a number or a schedule (e.g.
            ``schedules.sutskever_momentum(0.99)``).
        nesterov: NAG if true (the parameters then hold the look-ahead point
            theta_t + mu_t v_t; use :meth:`at_theta` to evaluate theta_t itself).
        weight_decay: L2 coefficient, added to the gradient where it is taken.
        foreach: use the ``torch._foreach_*`` path (default: yes when gradients are dense).

    Example::

        opt = Momentum(model.parameters(), lr=0.01,
                       momentum=schedules.sutskever_momentum(0.99), nesterov=True)
        for x, y in data:
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        with opt.at_theta():
            evaluate(model)
    """

    def __init__(self, params: Iterable, lr: Hyper, momentum: Hyper = 0.9, nesterov: bool = False,
                 weight_decay: float = 0.0, foreach: Optional[bool] = None) -> None:
        self._validate_hypers(lr, momentum, nesterov, weight_decay, " (constructor)")
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, foreach=foreach)
        super().__init__(params, defaults)

    @staticmethod
    def _validate_hypers(lr, momentum, nesterov, weight_decay, where):
        if not callable(lr):
            _check_lr(lr, where)
        if not callable(momentum):
            _check_momentum(momentum, where)
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and not callable(momentum) and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0 (with momentum 0 it is plain SGD: use nesterov=False)")
        if (not isinstance(weight_decay, (int, float)) or isinstance(weight_decay, bool)
                or not math.isfinite(weight_decay) or weight_decay < 0):
            raise ValueError(f"weight_decay must be a non-negative finite number, got {weight_decay!r}")

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        self._validate_hypers(g["lr"], g["momentum"], g["nesterov"], g["weight_decay"], " (param group)")
        g.setdefault("step", 0)
        g.setdefault("applied_momentum", 0.0)

    # -- hyperparameters at a step -------------------------------------------------------
    @staticmethod
    def _value(h: Hyper, step: int, kind: str) -> float:
        if not callable(h):
            return float(h)
        value = h(step)
        where = f" (schedule {h!r} at step {step})"
        return _check_lr(value, where) if kind == "lr" else _check_momentum(value, where)

    # -- the update ------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None):
        """One update of every group; ``closure`` re-evaluates the loss (returned)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, dirs, scales = [], [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError("Momentum does not support sparse gradients (got one for a parameter of shape "
                                     f"{tuple(p.shape)}); use dense gradients")
                state = self.state[p]
                if "velocity_direction" not in state:
                    state["velocity_direction"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["velocity_scale"] = 0.0
                params.append(p)
                grads.append(p.grad)
                dirs.append(state["velocity_direction"])
                scales.append(state["velocity_scale"])
            t = group["step"]
            lr = self._value(group["lr"], t, "lr")
            nesterov = group["nesterov"]
            if nesterov:
                mu = group["applied_momentum"] if t > 0 else self._value(group["momentum"], t, "momentum")
                mu_next = self._value(group["momentum"], t + 1, "momentum")
            else:
                mu = self._value(group["momentum"], t, "momentum")
                mu_next = mu
            if params:
                new_scales = F.momentum(params, grads, dirs, scales, lr=lr, momentum=mu, next_momentum=mu_next,
                                        nesterov=nesterov, weight_decay=group["weight_decay"],
                                        foreach=group["foreach"])
                for p, k in zip(params, new_scales):
                    self.state[p]["velocity_scale"] = k
            group["step"] = t + 1
            group["applied_momentum"] = mu_next if nesterov else 0.0
        return loss

    # -- the actual iterate theta_t ----------------------------------------------------------
    @contextlib.contextmanager
    def at_theta(self):
        """Temporarily put theta_t into the parameters (for NAG they hold theta_t + mu_t v_t);
        restores the look-ahead point on exit. A no-op for CM."""
        moved = []
        with torch.no_grad():
            for group in self.param_groups:
                mu = group["applied_momentum"]
                if not group["nesterov"] or mu == 0:
                    continue
                ps = [p for p in group["params"] if "velocity_direction" in self.state[p]]
                ds = [self.state[p]["velocity_direction"] for p in ps]
                ks = [self.state[p]["velocity_scale"] for p in ps]
                if ps:
                    F.shift_by_velocity(ps, ds, ks, -mu)
                    moved.append((ps, ds, ks, mu))
        try:
            yield self
        finally:
            with torch.no_grad():
                for ps, ds, ks, mu in moved:
                    F.shift_by_velocity(ps, ds, ks, +mu)

    def velocity(self, param: torch.Tensor) -> torch.Tensor:
        """The velocity v_t of ``param`` (zeros before its first update)."""
        state = self.state.get(param, {})
        if "velocity_direction" not in state:
            return torch.zeros_like(param)
        return F.velocity(state["velocity_direction"], state["velocity_scale"])

    # -- serialisation -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Like torch's, with schedules replaced by their ``repr`` so the dict always pickles
        (lambdas included); :meth:`load_state_dict` keeps this optimizer's own schedules."""
        sd = super().state_dict()
        for g in sd["param_groups"]:
            for key in ("lr", "momentum"):
                if callable(g[key]):
                    g[key] = {_SCHEDULE_PLACEHOLDER: repr(g[key])}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        own = [{k: g[k] for k in ("lr", "momentum") if callable(g[k])} for g in self.param_groups]
        super().load_state_dict(state_dict)
        for group, callables in zip(self.param_groups, own):
            for key in ("lr", "momentum"):
                if isinstance(group[key], dict) and _SCHEDULE_PLACEHOLDER in group[key]:
                    if key not in callables:
                        raise ValueError(
                            f"the saved state has a {key} schedule ({group[key][_SCHEDULE_PLACEHOLDER]}) but this "
                            f"optimizer's {key} is a number; construct it with the same schedule")
                    group[key] = callables[key]
