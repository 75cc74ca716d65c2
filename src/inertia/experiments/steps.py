"""What one update of :func:`~inertia.experiments.train.train` does, per optimizer kind.

Each ``optimizer.name`` registers a training-step strategy (:data:`STEPS`): how its optimizer is
built from the config, and the three phases of an update the loop calls in order,

1. ``loss(xb, yb, step)``: the minibatch loss; the loop stops the run as diverged when it is not
   finite, before anything else happens;
2. ``backward(loss)``: gradients (and gradient clipping), which the Monitor's hooks record;
3. ``update()``: the parameter update, after the Monitor's ``step``.

First-order optimizers (``momentum``, ``sgd``) do one phase each. Hessian-Free (Martens 2010) does
its whole iteration in ``loss`` (gradient on the batch, curvature products on a
``curvature_fraction`` share of it, parameters unchanged when the loss is not finite), so its
``backward`` and ``update`` do nothing. A strategy's ``metric_names`` are the entries its
``metrics()`` adds at every evaluation; :func:`loop_metrics` lists everything the loop adds.

Minibatches are a pure function of (seed, step) (:func:`batch_indices`), so a resumed run sees
the batches the uninterrupted one would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from .._registry import Registry
from ..optim import HessianFree, Momentum, PerExample
from ..optim.hessian_free import LOOP_DEFAULTS
from .config import Config

__all__ = [
    "STEPS",
    "FirstOrderStep",
    "GradClip",
    "HessianFreeStep",
    "SGDStep",
    "TrainingStep",
    "batch_indices",
    "loop_metrics",
]


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> torch.Tensor:
    """Indices of the minibatch used at update ``step``: epoch-wise permutations seeded by
    (seed, epoch), so any step's batch can be recomputed without replaying the run.

    Examples:
        >>> batch_indices(10, 4, step=0, seed=0).tolist() == batch_indices(10, 4, step=0, seed=0).tolist()
        True
        >>> len(batch_indices(10, 4, step=1, seed=0)), batch_indices(3, 4, step=5, seed=0).tolist()
        (4, [0, 1, 2])
    """
    if batch_size >= n:
        return torch.arange(n)
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    return perm[k * batch_size : (k + 1) * batch_size]


class GradClip:
    """Rescale the gradient to at most ``max_norm`` total 2-norm (``torch.nn.utils.clip_grad_norm_``)
    and keep, since the last evaluation, the largest norm before clipping and the number of clipped
    updates. ``max_norm=None``: no clipping and no metrics.

    Examples:
        >>> w = torch.nn.Parameter(torch.zeros(2)); w.grad = torch.tensor([3.0, 4.0])
        >>> clip = GradClip(1.0); clip([w]); w.grad.norm().item() <= 1.0 + 1e-6
        True
        >>> clip.metrics(), clip.metrics()
        ({'max_grad_norm': 5.0, 'clipped_steps': 1}, {'max_grad_norm': 0.0, 'clipped_steps': 0})
    """

    METRICS = ("max_grad_norm", "clipped_steps")

    def __init__(self, max_norm: float | None) -> None:
        self.max_norm = max_norm
        self.max, self.clipped = 0.0, 0

    @classmethod
    def metric_names(cls, max_norm: float | None) -> tuple[str, ...]:
        return cls.METRICS if max_norm is not None else ()

    def __call__(self, params: Iterable[torch.Tensor]) -> None:
        if self.max_norm is None:
            return
        self.record(float(torch.nn.utils.clip_grad_norm_(params, self.max_norm)))

    def record(self, norm: float) -> None:
        """Count one update whose gradient had 2-norm ``norm`` before clipping."""
        assert self.max_norm is not None
        self.max = max(self.max, norm) if math.isfinite(norm) else norm
        self.clipped += int(norm > self.max_norm)

    def metrics(self) -> dict:
        """The statistics since the previous call (then reset)."""
        if self.max_norm is None:
            return {}
        m = dict(zip(self.METRICS, (self.max, self.clipped), strict=True))
        self.max, self.clipped = 0.0, 0
        return m

    def state_dict(self) -> dict:
        return {"max": self.max, "clipped": self.clipped}

    def load_state_dict(self, state: dict) -> None:
        self.max, self.clipped = state.get("max", self.max), state.get("clipped", self.clipped)


class TrainingStep:
    """The contract of a training-step strategy (see the module docstring)."""

    metric_names: ClassVar[tuple[str, ...]] = ()
    first_order: ClassVar[bool] = True  # a plain optimizer.step() after backward: dry_build tries one

    def __init__(self, cfg: Config, model: nn.Module, loss_fn: Callable, optimizer: Any, clip: GradClip) -> None:
        self.cfg, self.model, self.loss_fn, self.optimizer, self.clip = cfg, model, loss_fn, optimizer, clip

    @classmethod
    def build_optimizer(cls, cfg: Config, model: nn.Module) -> Any:
        """The optimizer of this kind for ``model``'s parameters, from ``cfg.optimizer``."""
        raise NotImplementedError

    def loss(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> torch.Tensor:
        """The loss on the minibatch ``(xb, yb)`` of update ``step``."""
        raise NotImplementedError

    def backward(self, loss: torch.Tensor) -> None:
        """Nothing by default (the update was made in :meth:`loss`)."""

    def update(self) -> None:
        """Nothing by default (the update was made in :meth:`loss`)."""

    def metrics(self) -> dict:
        return {}


class FirstOrderStep(TrainingStep):
    """Classical momentum or Nesterov's accelerated gradient (:class:`~inertia.optim.Momentum`),
    with the config's momentum and learning-rate schedules and gradient clipping."""

    @classmethod
    def momentum(cls, cfg: Config) -> Any:
        from ..optim import schedules

        return schedules.from_config(cfg.schedule) if cfg.schedule is not None else cfg.optimizer.momentum

    @classmethod
    def build_optimizer(cls, cfg: Config, model: nn.Module) -> Momentum:
        from ..optim import schedules

        o = cfg.optimizer
        lr = schedules.from_config(cfg.lr_schedule) if cfg.lr_schedule else o.lr
        mu = cls.momentum(cfg)
        nesterov = o.nesterov and not (isinstance(mu, (int, float)) and mu == 0)
        return Momentum(model.parameters(), lr=lr, momentum=mu, nesterov=nesterov, weight_decay=o.weight_decay)

    def loss(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> torch.Tensor:
        return self.loss_fn(self.model(xb), yb)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()
        self.clip(self.model.parameters())

    def update(self) -> None:
        self.optimizer.step()


class SGDStep(FirstOrderStep):
    """Plain stochastic gradient descent: momentum 0 whatever the config's momentum or schedule."""

    @classmethod
    def momentum(cls, cfg: Config) -> float:
        return 0.0


class HessianFreeStep(TrainingStep):
    """One Hessian-Free iteration per update (:class:`~inertia.optim.HessianFree`): the gradient on
    the whole batch, curvature products on a ``curvature_fraction`` share (a different subset at
    each step, a pure function of (seed, step)), exact per-case gradients for the Martens
    preconditioner, and with ``structural_damping`` the model's hidden states."""

    metric_names = ("hf_damping", "hf_cg_iters", "hf_curvature_products")
    first_order = False

    @classmethod
    def build_optimizer(cls, cfg: Config, model: nn.Module) -> HessianFree:
        o = cfg.optimizer
        kwargs = {k: v for k, v in o.options.items() if k not in LOOP_DEFAULTS}
        return HessianFree(model.parameters(), lr=o.lr, weight_decay=o.weight_decay, **kwargs)

    def _forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple:
        """(outputs, loss[, hidden]): structural damping penalizes changes of the hidden states."""
        if self.cfg.optimizer.options.get("structural_damping", 0) > 0:
            model: Any = self.model  # a model with forward_with_hidden (checked before the run)
            out, hidden = model.forward_with_hidden(x)
            return out, self.loss_fn(out, y), hidden
        out = self.model(x)
        return out, self.loss_fn(out, y)

    def _curvature_closure(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> Callable[[], tuple] | None:
        """The forward pass on the curvature subset, or None when it is the whole batch."""
        fraction = self.cfg.optimizer.options.get("curvature_fraction", LOOP_DEFAULTS["curvature_fraction"])
        m = max(1, round(fraction * xb.shape[0]))
        if m >= xb.shape[0]:
            return None
        idx = batch_indices(xb.shape[0], m, step, self.cfg.seed + 1).to(xb.device)
        xc, yc = xb[idx], yb[idx]
        return lambda: self._forward(xc, yc)

    def loss(self, xb: torch.Tensor, yb: torch.Tensor, step: int) -> torch.Tensor:
        """The whole iteration; returns the loss before the step."""
        curvature_closure = self._curvature_closure(xb, yb, step)
        per_example = None
        if self.optimizer.param_groups[0]["preconditioner"] == "martens":
            per_example = PerExample(self.model, xb, yb, self.loss_fn)
        return self.optimizer.step(lambda: self._forward(xb, yb), curvature_closure, per_example=per_example)

    def metrics(self) -> dict:
        c = self.optimizer.counters
        values = (self.optimizer.damping, c["cg_iters_total"], c["curvature_products"])
        return dict(zip(self.metric_names, values, strict=True))


STEPS: Registry[type[TrainingStep]] = Registry("optimizer")
STEPS.register("momentum", FirstOrderStep)
STEPS.register("sgd", SGDStep)
STEPS.register("hessian_free", HessianFreeStep)


def loop_metrics(cfg: Config) -> list[str]:
    """The metrics :func:`~inertia.experiments.train.train` adds to the data's own at every
    evaluation: the update, the last batch's loss, the seconds so far, the optimizer kind's own
    (Hessian-Free's counters) and the gradient-clipping statistics when those are used."""
    kind = STEPS.get(cfg.optimizer.name)
    return ["step", "train_batch_loss", "wall_s", *kind.metric_names, *GradClip.metric_names(cfg.clip_grad_norm)]
