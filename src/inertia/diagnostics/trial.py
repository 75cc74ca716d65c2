"""A short trial run: a few updates of the user's optimizer on a copy of the model.

The quadratic stability bound lr * lam_max < 2 (1 + mu) / (1 + 2 mu) at initialization is a
sufficient condition on a quadratic, not a prediction for a network: the sharpness falls quickly
early in training (the "catapult" phase; Lewkowycz et al. 2020), and a normalization layer makes
the loss scale-invariant in the weights before it, so the effective step is not lr. What a step
size does is measured directly instead: ``trial_run`` trains a deep copy of the model (and of the
optimizer, with its state) for a few updates on one batch and returns the losses. The user's
model, optimizer, gradients, buffers and the global RNG are untouched.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Linear(3, 1)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> run = trial_run(model, lambda m: nn.functional.mse_loss(m(x), y), lr=0.1, steps=5)
    >>> len(run.losses), run.diverged
    (6, False)
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..validation import check_integer, check_number
from .state import rng_state, set_rng_state

__all__ = ["TrialRun", "constant_prediction_loss", "trial_run"]


@dataclass
class TrialRun:
    """``losses``: the loss before each update and after the last (``steps + 1`` values, fewer
    when it diverged); ``diverged``: a loss was non-finite or above ``blowup`` times the first."""

    losses: list[float]
    steps: int
    diverged: bool
    blowup: float
    out_of_time: bool = False  # stopped by ``max_seconds`` before ``steps`` updates
    settled: bool = False  # stopped early: the last ``patience`` losses were all below ``stop_below``

    @property
    def steps_run(self) -> int:
        return len(self.losses) - 1

    @property
    def initial(self) -> float:
        return self.losses[0]

    @property
    def final(self) -> float:
        return self.losses[-1]

    @property
    def ratio(self) -> float:
        """Final over initial loss (``inf`` when it diverged or started at zero)."""
        if self.diverged or not self.initial > 0:
            return math.inf
        return self.final / self.initial


def _copies(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    lr: float | None,
    momentum: float,
    nesterov: bool,
    overrides: dict[str, float] | None = None,
) -> tuple[nn.Module, torch.optim.Optimizer]:
    if optimizer is not None:
        # one deepcopy of both keeps the optimizer's references pointing at the copied parameters
        twin_model, twin_opt = copy.deepcopy((model, optimizer))
        for g in twin_opt.param_groups:  # what `for g in optimizer.param_groups: g[k] = v` does to the user's
            g.update(overrides or {})
        return twin_model, twin_opt
    if overrides:
        lr, momentum = overrides.get("lr", lr), overrides.get("momentum", momentum)
    if lr is None:
        raise ValueError("trial_run needs an optimizer or lr")
    twin = copy.deepcopy(model)
    # at a constant lr and momentum, torch's SGD is Sutskever et al.'s CM / NAG (v = -lr * buffer)
    sgd = torch.optim.SGD(twin.parameters(), lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    return twin, sgd


def trial_run(
    model: nn.Module,
    loss_of: Callable[[nn.Module], torch.Tensor],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    lr: float | None = None,
    momentum: float = 0.0,
    nesterov: bool = False,
    steps: int = 20,
    blowup: float = 10.0,
    max_seconds: float | None = None,
    overrides: dict[str, float] | None = None,
    stop_below: float | None = None,
    patience: int = 20,
) -> TrialRun:
    """Train a copy of ``model`` for ``steps`` updates and return the losses.

    Args:
        model: the user's model (never modified: a deep copy is trained).
        loss_of: ``loss_of(m)`` is the scalar loss of the model ``m`` on a fixed batch.
        optimizer: the user's optimizer (copied with its state and hyperparameters), or None to
            use classical momentum or Nesterov with ``lr``, ``momentum``, ``nesterov`` (at
            constant values these are ``torch.optim.SGD``'s updates).
        steps: number of updates (>= 1).
        blowup: the run has diverged when a loss exceeds ``blowup`` times the first (> 1).
        max_seconds: wall-clock cap: no update is started that, as long as the last one, would end
            past it (``out_of_time`` in the result).
        overrides: hyperparameters set in every parameter group of the copied optimizer (e.g.
            ``{"lr": 0.01, "momentum": 0.9}``): the trial of a proposed fix.
        stop_below: stop early (``settled`` in the result) once the last ``patience`` losses are
            all below this value: the trial of a fix needs to know that it trains, not how far.
        patience: see ``stop_below`` (>= 1).
    """
    check_integer("steps", steps, lo=1)
    check_integer("patience", patience, lo=1)
    if stop_below is not None:
        check_number("stop_below", stop_below)
    check_number("blowup", blowup, lo=1, lo_open=True)
    if lr is not None:
        check_number("lr", lr, lo=0)
    if max_seconds is not None:
        check_number("max_seconds", max_seconds, lo=0, lo_open=True)
    rng = rng_state()
    start = time.perf_counter()
    out_of_time = settled = False
    below = 0  # how many of the latest losses are below stop_below
    last = start  # when the latest update began
    try:
        twin, opt = _copies(model, optimizer, lr, momentum, nesterov, overrides)
        losses: list[float] = []
        diverged = False
        for step in range(steps + 1):
            opt.zero_grad(set_to_none=True)
            loss = loss_of(twin)
            value = float(loss.detach())
            losses.append(value)
            if not math.isfinite(value) or (losses[0] > 0 and value > blowup * losses[0]):
                diverged = True
                break
            below = below + 1 if stop_below is not None and value < stop_below else 0
            if step == steps:
                break
            if below >= patience:
                settled = True
                break
            now = time.perf_counter()
            if max_seconds is not None and now - start + (now - last if step else 0.0) > max_seconds:
                out_of_time = True  # the next update, as long as the last one, would end past the cap
                break
            last = now
            loss.backward()
            opt.step()
    finally:
        set_rng_state(rng)
    return TrialRun(losses, steps, diverged, blowup, out_of_time, settled)


def constant_prediction_loss(
    outputs: torch.Tensor,
    targets: torch.Tensor | None,
    loss_fn: Callable[..., torch.Tensor],
    steps: int = 100,
) -> float:
    """The smallest loss a prediction that ignores the input reaches: min over c of
    ``loss_fn(c, targets)`` with c one output (``outputs[:1]``) broadcast over the batch, found by
    L-BFGS from the mean output. It is the entropy of the label marginal for cross-entropy and
    the targets' variance for squared error: the loss a network reaches without learning anything
    about its inputs, and so the yardstick for "does it train".

    >>> y = torch.tensor([0, 0, 0, 1])
    >>> round(constant_prediction_loss(torch.zeros(4, 2), y, torch.nn.functional.cross_entropy), 4)
    0.5623
    """
    check_integer("steps", steps, lo=1)
    out = outputs.detach()
    c = out.mean(0, keepdim=True).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([c], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def loss_of_constant() -> torch.Tensor:
        pred = c.expand_as(out)
        return loss_fn(pred, targets) if targets is not None else loss_fn(pred)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_of_constant()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
        with torch.no_grad():
            return float(loss_of_constant())
