"""``Momentum``: classical momentum and Nesterov's accelerated gradient exactly as in
Sutskever, Martens, Dahl & Hinton (2013), for any learning-rate and momentum schedule.

See :mod:`inertia.optim.functional` for the update rules. The class holds state and
hyperparameters only:

- per parameter: its velocity v = -k d, stored as a direction tensor ``state[p]["velocity_direction"]``
  and a float scale ``state[p]["velocity_scale"]``, one state for every update path (see
  :mod:`inertia.optim.functional`: the scale is what lets torch's fused SGD kernel, or one lerp
  pass, make the exact update); :meth:`Momentum.velocity` returns v;
- per parameter, for NAG: ``applied_momentum``, the mu that its current look-ahead point
  phi_t = theta_t + mu_t v_t was built with (per parameter, not per group: a parameter without a
  gradient at an update keeps its point, built with the mu before it);
- per group: ``step`` (updates made so far).

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
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from ..validation import accepted_number, check_bool, check_number
from . import functional as momentum_fn

Hyper = float | Callable[[int], float]

_SCHEDULE_PLACEHOLDER = "__schedule__"


def _where(where: str | Callable[[], str]) -> str:
    # a callable builds the text only for the error: under torch.compile a string formatted from
    # the (symbolic) step number at every step would break the graph
    return where() if callable(where) else where


def _check_hyper(name: str, value: float, where: str | Callable[[], str], hi: int | None = None) -> float:
    """``inertia.validation.check_number``'s test (a finite number in [0, hi)) and wording, with
    comparisons for the finiteness: under torch.compile a schedule's value is a symbolic float."""
    real = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (real and value == value and abs(value) != math.inf and value >= 0 and (hi is None or value < hi)):
        raise ValueError(f"{name} must be {accepted_number(0, hi, hi_open=True)}{_where(where)}, got {value!r}")
    return float(value)


def _check_lr(value: float, where: str | Callable[[], str]) -> float:
    return _check_hyper("lr", value, where)


def _check_momentum(value: float, where: str | Callable[[], str]) -> float:
    return _check_hyper("momentum", value, where, hi=1)


def _check_paths(foreach, fused) -> None:
    for name, value in (("foreach", foreach), ("fused", fused)):
        if value is not None:
            check_bool(name, value, where=" (or None)")
    if foreach and fused:
        raise ValueError("fused=True and foreach=True cannot both be set: choose one path (or leave both None)")


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
        foreach: ``True``: the ``torch._foreach_*`` path for every tensor; ``False``: the
            per-tensor loop.
        fused: ``None`` (the default, with ``foreach=None``) or ``True``: torch's fused SGD kernel
            (``torch._fused_sgd_``) for every tensor and update it applies to, the foreach path
            for the rest; ``False``: never. See :mod:`inertia.optim.functional` and docs/optim.md
            ("The update paths") for when it applies.

    Example::

        opt = Momentum(model.parameters(), lr=0.01,
                       momentum=schedules.sutskever_momentum(0.99), nesterov=True)
        for x, y in data:
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        with opt.at_theta():
            evaluate(model)
    """

    def __init__(
        self,
        params: Iterable,
        lr: Hyper,
        momentum: Hyper = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        self._validate_hypers(lr, momentum, nesterov, weight_decay, " (constructor)")
        defaults = dict(
            lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, foreach=foreach, fused=fused
        )
        super().__init__(params, defaults)

    @staticmethod
    def _validate_hypers(lr, momentum, nesterov, weight_decay, where):
        if not callable(lr):
            _check_lr(lr, where)
        if not callable(momentum):
            _check_momentum(momentum, where)
        check_bool("nesterov", nesterov)
        if nesterov and not callable(momentum) and momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0 (with momentum 0 it is plain SGD: use nesterov=False)")
        check_number("weight_decay", weight_decay, lo=0)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        g = self.param_groups[-1]
        self._validate_hypers(g["lr"], g["momentum"], g["nesterov"], g["weight_decay"], " (param group)")
        _check_paths(g["foreach"], g["fused"])
        g.setdefault("step", 0)
        g["scheduled"] = _scheduled(g)

    # -- hyperparameters at a step -------------------------------------------------------
    @staticmethod
    def _value(h: Hyper, step: int, kind: str) -> float:
        if not callable(h):
            return float(h)
        value = h(step)

        def where():
            return f" (schedule {h!r} at step {step})"

        return _check_lr(value, where) if kind == "lr" else _check_momentum(value, where)

    # -- the update ------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every group; ``closure`` re-evaluates the loss (returned)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_schedules_kept()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _check_schedules_kept(self) -> None:
        # torch's OneCycleLR and CyclicLR (cycle_momentum=True, their default) write numbers into
        # group["momentum"] at every step, and OneCycleLR into group["lr"]: that would silently
        # discard a schedule, so it is refused before anything moves
        for i, group in enumerate(self.param_groups):
            for key in group["scheduled"]:
                if not callable(group[key]):
                    raise ValueError(
                        f"param group {i}'s {key} was a schedule and is now the number {group[key]!r}: something "
                        f"replaced it (torch's OneCycleLR and CyclicLR do so with cycle_momentum=True, OneCycleLR "
                        f"also for lr). Pass cycle_momentum=False to the scheduler, give Momentum a number {key} "
                        f"for a scheduler to drive, or assign a schedule (e.g. schedules.constant({group[key]!r}))"
                    )

    def _update_group(self, group: dict) -> None:
        t = group["step"]
        nesterov = group["nesterov"]
        lr = self._value(group["lr"], t, "lr")
        mu = self._value(group["momentum"], t, "momentum")
        params = [p for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        if any(g.is_sparse for g in grads):
            shape = next(tuple(p.shape) for p, g in zip(params, grads, strict=True) if g.is_sparse)
            raise ValueError(
                f"Momentum does not support sparse gradients (got one for a parameter of shape {shape}); "
                "use dense gradients"
            )
        states = [self.state[p] for p in params]
        for p, state in zip(params, states, strict=True):
            if "velocity_direction" not in state:
                state["velocity_direction"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["velocity_scale"] = 0.0
        dirs = [state["velocity_direction"] for state in states]
        scales = [state["velocity_scale"] for state in states]
        # NAG: the gradient was taken at theta_t + mu v_t with the mu this point was built with, so
        # that mu is this update's (it is mu_t unless the parameter skipped an update at which mu
        # changed); without an applied mu, v_t = 0 and any mu gives the same step
        momenta = [state.get("applied_momentum", mu) for state in states] if nesterov else mu
        mu_next = self._value(group["momentum"], t + 1, "momentum") if nesterov else None
        if params:
            new_scales = momentum_fn.momentum(
                params,
                grads,
                dirs,
                scales,
                lr=lr,
                momentum=momenta,
                next_momentum=mu_next,
                nesterov=nesterov,
                weight_decay=group["weight_decay"],
                foreach=group["foreach"],
                fused=group["fused"],
            )
            if nesterov:
                for state, k in zip(states, new_scales, strict=True):
                    state["velocity_scale"] = k
                    state["applied_momentum"] = mu_next
            else:
                for state, k in zip(states, new_scales, strict=True):
                    state["velocity_scale"] = k
        group["step"] = t + 1

    # -- the actual iterate theta_t ----------------------------------------------------------
    @contextlib.contextmanager
    def at_theta(self):
        """Temporarily put theta_t into the parameters (for NAG they hold theta_t + mu v_t, mu
        each parameter's applied momentum); restores the look-ahead points on exit, exactly (from
        a copy: moving back by mu v would round). A no-op for CM."""
        moved = []
        with torch.no_grad():
            for group in self.param_groups:
                if not group["nesterov"]:
                    continue
                ps = [p for p in group["params"] if "applied_momentum" in self.state.get(p, {})]
                if not ps:
                    continue
                saved = [p.detach().clone() for p in ps]
                ds = [self.state[p]["velocity_direction"] for p in ps]
                ks = [self.state[p]["velocity_scale"] for p in ps]
                momentum_fn.shift_by_velocity(ps, ds, ks, [-self.state[p]["applied_momentum"] for p in ps])
                moved.append((ps, saved))
        try:
            yield self
        finally:
            with torch.no_grad():
                for ps, saved in moved:
                    torch._foreach_copy_(ps, saved)

    def velocity(self, param: torch.Tensor) -> torch.Tensor:
        """The velocity v_t of ``param`` (zeros before its first update)."""
        state = self.state.get(param, {})
        if "velocity_direction" not in state:
            return torch.zeros_like(param)
        return momentum_fn.velocity(state["velocity_direction"], state["velocity_scale"])

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
        """Load a state saved by :meth:`state_dict` (of this or an older version: missing keys get
        their defaults) or by ``torch.optim.SGD``, whose momentum buffers b are converted to the
        velocity v = -lr b (exact for both CM and NAG; see docs/optim.md)."""
        if _is_torch_sgd_state(state_dict):
            state_dict = _from_torch_sgd(state_dict, [g["nesterov"] for g in self.param_groups])
        own = [{k: g[k] for k in ("lr", "momentum") if callable(g[k])} for g in self.param_groups]
        _check_saved_schedules(state_dict, own)  # before anything is replaced
        super().load_state_dict(with_missing_group_keys(state_dict, self.param_groups))
        for group, callables in zip(self.param_groups, own, strict=False):
            for key in ("lr", "momentum"):
                if _is_saved_schedule(group[key]):
                    group[key] = callables[key]
            group["scheduled"] = _scheduled(group)

    def __setstate__(self, state: dict) -> None:
        """Fill what older or partial states lack (``load_state_dict`` and unpickling come here)."""
        super().__setstate__(state)
        for group in self.param_groups:
            for key, default in _OPTIONAL_DEFAULTS.items():
                group.setdefault(key, default)
            group.setdefault("scheduled", _scheduled(group))
            # older states kept NAG's applied momentum per group: it holds for every parameter with
            # a velocity (one that skipped the update at which mu changed cannot be told apart)
            applied = group.pop("applied_momentum", None)
            if group["nesterov"] and applied is not None:
                for p in group["params"]:
                    st = self.state.get(p)
                    if st and "velocity_direction" in st:
                        st.setdefault("applied_momentum", float(applied))


def _is_saved_schedule(value) -> bool:
    return isinstance(value, dict) and _SCHEDULE_PLACEHOLDER in value


def _check_saved_schedules(state_dict: dict, own: list) -> None:
    """A saved schedule (its ``repr``) can only be restored into a group built with a schedule."""
    for i, (g, callables) in enumerate(zip(state_dict.get("param_groups", []), own, strict=False)):
        for key in ("lr", "momentum"):
            if _is_saved_schedule(g.get(key)) and key not in callables:
                raise ValueError(
                    f"the saved state's param group {i} has a {key} schedule ({g[key][_SCHEDULE_PLACEHOLDER]}) "
                    f"but this optimizer's {key} is a number; construct it with the same schedule"
                )


def with_missing_group_keys(state_dict: dict, groups: list) -> dict:
    """``state_dict`` with each saved param group completed by the keys it lacks (an older
    version's state, or one edited by hand, as torch's ``test_can_load_older_state_dict`` makes)
    from the optimizer's own groups, i.e. from what it was constructed with. A shallow copy."""
    saved = state_dict.get("param_groups", [])
    if len(saved) != len(groups):  # torch's load_state_dict says so
        return state_dict
    filled = [
        {**{k: v for k, v in own.items() if k not in ("params", "param_names")}, **g}
        for own, g in zip(groups, saved, strict=False)
    ]
    return {**state_dict, "param_groups": filled}


def _scheduled(group: dict) -> tuple:
    """The hyperparameters of ``group`` that are schedules (kept in the group as ``"scheduled"``)."""
    return tuple(k for k in ("lr", "momentum") if callable(group[k]))


# keys a group may lack in an unpickled optimizer of an older version
_OPTIONAL_DEFAULTS = dict(nesterov=False, weight_decay=0.0, foreach=None, fused=None, step=0)


_TORCH_SGD_ONLY = ("dampening", "maximize", "differentiable", "fused")


def _is_torch_sgd_state(state_dict: dict) -> bool:
    return any("dampening" in g for g in state_dict.get("param_groups", [])) or any(
        isinstance(s, dict) and "momentum_buffer" in s for s in state_dict.get("state", {}).values()
    )


def _from_torch_sgd(state_dict: dict, nesterov: list) -> dict:
    """A ``torch.optim.SGD`` state dict in inertia's form. SGD keeps b <- mu b + g and steps
    p <- p - lr b (CM) or p <- p - lr (g + mu b) (Nesterov; p is then the look-ahead point);
    with v = -lr b both are inertia's rules for constant lr and mu, so b becomes the velocity
    direction with scale lr (v = -k d), and NAG's applied momentum is the saved mu."""
    groups, state = [], {}
    if len(state_dict["param_groups"]) != len(nesterov):
        raise ValueError(
            f"the saved torch.optim.SGD state has {len(state_dict['param_groups'])} param groups, "
            f"this optimizer {len(nesterov)}"
        )
    for i, (g, ours) in enumerate(zip(state_dict["param_groups"], nesterov, strict=False)):
        where = f"the saved torch.optim.SGD param group {i}"
        if g.get("dampening", 0) != 0:
            raise ValueError(
                f"{where} has dampening={g['dampening']!r}: only dampening=0 is inertia's rule, so "
                "its momentum buffer cannot be converted"
            )
        if g.get("maximize", False):
            raise ValueError(f"{where} has maximize=True; inertia's Momentum minimizes (accepted: maximize=False)")
        if bool(g.get("nesterov", False)) != ours:
            raise ValueError(
                f"{where} has nesterov={g.get('nesterov', False)!r} but this optimizer's group {i} has "
                f"nesterov={ours!r}: the parameters hold theta for CM and the look-ahead point for "
                "NAG, so construct Momentum with the same nesterov"
            )
        lr, mu = float(g["lr"]), float(g.get("momentum", 0.0))
        groups.append({**{k: v for k, v in g.items() if k not in _TORCH_SGD_ONLY}, "lr": lr, "momentum": mu})
        for pid in g["params"]:
            buf = state_dict["state"].get(pid, {}).get("momentum_buffer")
            if buf is None:
                continue
            state[pid] = {"velocity_direction": buf.detach().clone(), "velocity_scale": lr}
            if ours:
                state[pid]["applied_momentum"] = mu
    return {"state": state, "param_groups": groups}
