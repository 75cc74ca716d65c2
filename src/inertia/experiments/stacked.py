"""Many runs of one shape trained as one: ``train_stacked(configs, run_dirs)``.

The runs of a paper's table (the seeds, the momentum settings, the learning rates of a grid) share
their data set, model and batch size and differ only in what each run chooses: seed,
initialization, optimizer (learning rate, momentum, Nesterov or not, weight decay), the momentum
and learning-rate schedules, gradient clipping, the number of updates and when to evaluate or stop.
:func:`train_stacked` stacks the K runs' parameters along a new leading dimension and makes one
update of all of them at once:

- the K losses are one ``torch.func.vmap`` of ``torch.func.functional_call`` over the stacked
  parameters and the K runs' minibatches ``[K, B, ...]`` (matrix products become batched matrix
  products; the tanh RNN's recurrence runs K recurrences per step, :mod:`inertia.models.rnn`), and
  one backward pass of their sum gives every run its own gradient (the runs share no parameter, so
  d(sum)/d(theta_k) = grad f_k(theta_k));
- Sutskever et al. (2013)'s rule for each run: every run's parameters, gradient and velocity are
  one row of a flat ``[K, N]`` tensor (the forward pass sees per-parameter views of it), and the
  update of row k is :func:`inertia.optim.functional.momentum` with run k's eps_t, mu_t (and
  mu_{t+1} for NAG, whose parameters hold the look-ahead point phi_t = theta_t + mu_t v_t), the
  same function, state (v = -k d) and fused kernel as :class:`~inertia.optim.Momentum`:

      v_{t+1} = mu_t v_t - eps_t g_t;   CM: theta_{t+1} = theta_t + v_{t+1};
      NAG: phi_{t+1} = phi_t - eps_t g_t + mu_{t+1} v_{t+1}.

Everything else is the one training loop's (:mod:`inertia.experiments.train`): each run is built
by the same :func:`~inertia.experiments.train.build_parts` (so its initial parameters are bit-equal
to an unstacked run's), reads the same minibatches (a pure function of its seed and the update),
is evaluated, checkpointed, stopped and recorded in its own run folder by the same code, from its
own model and :class:`~inertia.optim.Momentum` optimizer, into which the stack writes that run's
parameters and velocity first. So a run folder written here is one :func:`train` writes (a stacked
run can be resumed alone by ``train(cfg, folder, resume=True)`` and the other way round), and a run
equals the same run trained alone to float tolerance (the update is ``Momentum``'s, elementwise;
the gradients differ in rounding, batched matrix products summing in another order). A run that
diverges, is solved (``stop_when``) or reaches its ``steps`` leaves the stack; the others go on.
On resume, runs whose checkpoints are at different updates wait for each other: the stack always
trains the runs at the earliest update.

What can be stacked (:func:`stack_key`): first-order runs (``optimizer.name`` ``momentum`` or
``sgd``) without a Monitor, whose forward pass is a pure function of parameters and input (no
dropout, no BatchNorm statistics updated in place). ``wall_s`` is the stack's time so far: K runs
of one stack share it.

Cost: on a GPU (or for small layers, where one run is dominated by per-operation overhead) K
stacked runs take little more than one. On a 2-core CPU a run that is already compute-bound (the
tanh RNN with 100 units, batch 100) gains nothing (docs/BENCHMARKS.md, ``benchmarks/bench_stacked.py``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..optim import functional as momentum_fn
from .config import Config, ConfigError, from_dict
from .store import RunDir, check_resume_config, lock_folder, remove_temporaries
from .train import TrainResult, _diverged_message, _previous_summary, _Run, _stored_config, build_parts, flush_denormals

__all__ = ["stack_key", "group_stackable", "train_stacked", "STACKABLE_OPTIMIZERS"]

STACKABLE_OPTIMIZERS = ("momentum", "sgd")
# what the runs of one stack must share: the rest of a config is each run's own
SHARED_FIELDS = ("data", "model", "loss", "batch_size", "device", "dtype")


def stack_key(cfg: Config) -> str | None:
    """The fields runs must share to be trained in one stack, as a string (equal strings: one
    stack); ``None`` when ``cfg`` cannot be stacked (Hessian-Free, or a Monitor)."""
    if cfg.optimizer.name not in STACKABLE_OPTIMIZERS or cfg.monitor.quantities:
        return None
    d = cfg.to_dict()
    return json.dumps({k: d[k] for k in SHARED_FIELDS}, sort_keys=True, default=str)


def group_stackable(configs: dict, max_stack: int | None = None) -> list[list]:
    """The labels of ``configs`` (``{label: Config}``) in groups that can be trained as one stack
    (in the order they first appear; at most ``max_stack`` to a group), and each label that cannot
    be stacked alone."""
    groups: dict[Any, list] = {}
    for label, cfg in configs.items():
        key = stack_key(cfg)
        groups.setdefault(key if key is not None else ("alone", label), []).append(label)
    out: list[list] = []
    for labels in groups.values():
        step = max_stack or len(labels)
        out.extend(labels[i : i + step] for i in range(0, len(labels), step))
    return out


class _Member:
    """One run of a stack: its config, its own :class:`_Run` (data, model, optimizer, folder) and
    its hyperparameters at an update, read from its own optimizer's param group."""

    def __init__(self, cfg: Config, run: _Run) -> None:
        self.cfg, self.run = cfg, run
        self.group = run.optimizer.param_groups[0]
        self.params = list(run.model.parameters())
        self.result: TrainResult | None = None

    def hypers(self, t: int) -> tuple[float, float, float, bool, float]:
        """(eps_t, mu_t, mu_{t+1}, nesterov, weight decay): what ``Momentum`` uses at update t."""
        g, value = self.group, type(self.run.optimizer)._value
        lr, mu = value(g["lr"], t, "lr"), value(g["momentum"], t, "momentum")
        mu_next = value(g["momentum"], t + 1, "momentum") if g["nesterov"] else mu
        return lr, mu, mu_next, bool(g["nesterov"]), float(g["weight_decay"])

    def velocity_state(self) -> tuple[torch.Tensor, float]:
        """(flat direction d, scale k) with v = -k d for every parameter: ``Momentum``'s own when its
        parameters share one scale (always, unless a parameter skipped updates), else (-v, 1)."""
        states = [self.run.optimizer.state.get(p, {}) for p in self.params]
        scales = {st.get("velocity_scale", 0.0) for st in states}
        if all("velocity_direction" in st for st in states) and len(scales) == 1:
            return torch.cat([st["velocity_direction"].reshape(-1) for st in states]), scales.pop()
        if not any("velocity_direction" in st for st in states):
            return torch.cat([torch.zeros_like(p).reshape(-1) for p in self.params]), 0.0
        return -torch.cat([self.run.optimizer.velocity(p).reshape(-1) for p in self.params]), 1.0

    def applied_momentum(self) -> float | None:
        """The mu the NAG look-ahead point in the parameters was built with (None: no velocity)."""
        st = self.run.optimizer.state.get(self.params[0], {})
        return st.get("applied_momentum")


def _check_same_shapes(members: list[_Member]) -> None:
    first = [(n, tuple(p.shape), p.dtype) for n, p in members[0].run.model.named_parameters()]
    for m in members[1:]:
        got = [(n, tuple(p.shape), p.dtype) for n, p in m.run.model.named_parameters()]
        if got != first:
            raise ConfigError(f"runs of one stack must have the same parameters, got {first} and {got}")
    if len({p.dtype for p in members[0].params}) != 1:
        dtypes = sorted({str(d) for *_, d in first})
        raise ConfigError(f"runs of one stack must have parameters of one dtype, got {dtypes}")
    if len({len(m.params) for m in members}) != 1 or any(len(m.run.optimizer.param_groups) != 1 for m in members):
        raise ConfigError("runs of one stack must have one optimizer param group each")


class _Stack:
    """The stacked state of the runs at one update: every run's parameters as one row of a flat
    ``[K, N]`` tensor (the parameters the forward pass sees are views of it, so the backward pass
    leaves every gradient in one ``[K, N]`` tensor and the update is a few whole-stack operations),
    the velocities likewise, and per run the applied NAG momentum."""

    def __init__(self, members: list[_Member], base: nn.Module) -> None:
        self.members, self.base = members, base
        named = list(base.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        with torch.no_grad():
            self.flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in m.params]) for m in members])
            states = [m.velocity_state() for m in members]
            self.direction = torch.stack([d for d, _ in states])  # v_k = -scale_k * direction_k
        self.scale = [k for _, k in states]
        self.flat.requires_grad_(True)
        self.applied = [m.applied_momentum() for m in members]

    @property
    def step(self) -> int:
        return self.members[0].run.step

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-parameter ``[K, *shape]`` views of a flat ``[K, N]`` tensor."""
        k = flat.shape[0]
        return [c.view(k, *shape) for c, shape in zip(flat.split(self.sizes, dim=1), self.shapes, strict=True)]

    def losses(self, xb: torch.Tensor, yb: torch.Tensor, loss_fn: Callable) -> torch.Tensor:
        """The K minibatch losses, [K], from one vmapped forward pass."""
        names = self.names

        def one(params: tuple, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return loss_fn(torch.func.functional_call(self.base, dict(zip(names, params, strict=True)), (x,)), y)

        return torch.func.vmap(one)(tuple(self._views(self.flat)), xb, yb)

    def grads(self) -> torch.Tensor:
        """The stacked gradient ``[K, N]`` of the last backward pass."""
        if self.flat.grad is None:
            raise RuntimeError("the stacked parameters have no gradient: the loss does not depend on them")
        return self.flat.grad

    def _column(self, values: Sequence[float]) -> torch.Tensor:
        """A K-vector as a ``[K, 1]`` column, to broadcast over the flat ``[K, N]`` tensors."""
        return torch.tensor(values, dtype=self.flat.dtype, device=self.flat.device).unsqueeze(1)

    def clip(self) -> None:
        """Each run's gradient rescaled to at most its ``clip_grad_norm`` (as
        ``torch.nn.utils.clip_grad_norm_``: coefficient min(1, c / (||g|| + 1e-6))), its norm recorded."""
        clipping = [m.cfg.clip_grad_norm for m in self.members]
        if all(c is None for c in clipping):
            return
        g = self.grads()
        norms = torch.linalg.vector_norm(g, dim=1)  # [K]
        limit = self._column([math.inf if c is None else c for c in clipping]).squeeze(1)
        g.mul_(torch.clamp(limit / (norms + 1e-6), max=1.0).unsqueeze(1))
        for m, norm in zip(self.members, norms.tolist(), strict=True):
            if m.cfg.clip_grad_norm is not None:
                m.run.clip.record(norm)

    @torch.no_grad()
    def update(self) -> None:
        """One CM or NAG update of every run at update ``self.step``: ``inertia.optim.functional``'s
        rule on each run's row, with that run's eps_t, mu_t, mu_{t+1} (torch's fused SGD kernel
        where it applies: one pass over theta, g and the velocity per run, as ``Momentum`` makes)."""
        t = self.step
        g = self.grads()
        for k, m in enumerate(self.members):
            lr, mu, mu_next, nesterov, wd = m.hypers(t)
            # NAG: the gradient was taken at the point built with the applied mu (mu_t unless skipped)
            built_with = self.applied[k]
            applied = built_with if (nesterov and built_with is not None) else mu
            self.scale[k] = momentum_fn.momentum(
                [self.flat[k]],
                [g[k]],
                [self.direction[k]],
                [self.scale[k]],
                lr=lr,
                momentum=applied,
                next_momentum=mu_next if nesterov else None,
                nesterov=nesterov,
                weight_decay=wd,
                foreach=m.group["foreach"],
                fused=m.group["fused"],
            )[0]
            if nesterov:
                self.applied[k] = mu_next
            m.run.step += 1
        self.flat.grad = None

    @torch.no_grad()
    def store(self, k: int) -> None:
        """Write run k's parameters and velocity into its own model and optimizer (as ``Momentum``
        keeps them: direction -v, scale 1), so the loop's code evaluates, checkpoints and records it."""
        m = self.members[k]
        opt = m.run.optimizer
        params, dirs = self._views(self.flat.detach()[k : k + 1]), self._views(self.direction[k : k + 1])
        for p, src, d in zip(m.params, params, dirs, strict=True):
            p.copy_(src[0])
            state = {"velocity_direction": d[0].clone(), "velocity_scale": self.scale[k]}
            if self.applied[k] is not None and m.group["nesterov"]:
                state["applied_momentum"] = self.applied[k]
            opt.state[p] = state
        m.group["step"] = m.run.step


def _open_member(cfg: Config, run_dir, resume: bool, stack: contextlib.ExitStack) -> _Member:
    """Build one run as :func:`train` does, lock and open its folder, load its checkpoint."""
    parts = build_parts(cfg)
    rd = RunDir(run_dir) if run_dir is not None else None
    if rd is not None:
        stack.enter_context(lock_folder(rd.root))
        remove_temporaries(rd.root)
        if resume and rd.config.exists():
            check_resume_config(_stored_config(rd), cfg.to_dict(), str(rd.root))
    run = _Run(cfg, rd, parts, previous=_previous_summary(rd) if resume else None)
    run.open(resume)
    if run.monitor is not None:
        raise ConfigError("a run with a Monitor cannot be stacked: train it alone")
    return _Member(cfg, run)


def _first_evaluation(m: _Member) -> TrainResult | None:
    """What :func:`train` does before its first update: evaluate at update 0 (or, resumed, end a
    run whose last evaluation already met ``stop_when``)."""
    run = m.run
    if run.start == 0:
        run.record(run.evaluate(float("nan")))
    if run.history and run.should_stop(run.history[-1]):
        return run.finish("completed", run.stopped_message())
    if run.step >= m.cfg.steps:
        return run.finish("completed")
    return None


def _minibatches(members: list[_Member]) -> tuple[torch.Tensor, torch.Tensor]:
    batches = [m.run.batch() for m in members]
    return torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])


def _after_update(stack: _Stack, k: int, loss: float, progress, stop_after: int | None) -> TrainResult | None:
    """Run k's evaluation, checkpoint and early stop after an update, as :func:`train`'s loop does."""
    m = stack.members[k]
    run, cfg = m.run, m.cfg
    touched = run.step % cfg.eval_every == 0 or run.step == cfg.steps or run.step % run.checkpoint_every == 0
    if touched or (stop_after is not None and stop_after <= run.step < cfg.steps):
        stack.store(k)
    if run.step % cfg.eval_every == 0 or run.step == cfg.steps:
        ended = run.evaluate_and_record(loss, progress)
        if ended is not None:
            return ended
    if run.step % run.checkpoint_every == 0 or run.step == cfg.steps:
        run.checkpoint()
    if run.step >= cfg.steps:
        return run.finish("completed")
    if stop_after is not None and stop_after <= run.step < cfg.steps:
        return run.pause()
    return None


def _train_stack(members: list[_Member], loss_fn: Callable, progress, stop_after) -> None:
    """Update the runs at the earliest update together until every run has ended; a run resumed
    from a later update joins the stack when the stack reaches it."""
    base = copy.deepcopy(members[0].run.model)  # the skeleton functional_call runs (its parameters unused)
    while True:
        alive = [m for m in members if m.result is None]
        if not alive:
            return
        t = min(m.run.step for m in alive)
        later = [m.run.step for m in alive if m.run.step > t]
        stack = _Stack([m for m in alive if m.run.step == t], base)
        _run_stack(stack, loss_fn, progress, stop_after, join_at=min(later) if later else None)


def _run_stack(stack: _Stack, loss_fn: Callable, progress, stop_after, join_at: int | None) -> None:
    """Update the stack until one of its runs ends (or diverges) or it reaches update ``join_at``;
    then every run still going has its state stored in its own model and optimizer."""
    members = stack.members
    while True:
        xb, yb = _minibatches(members)  # [K, B, ...]
        losses = stack.losses(xb, yb, loss_fn)  # [K]
        values = losses.detach().tolist()
        bad = [k for k, v in enumerate(values) if not math.isfinite(v)]
        if bad:  # as train does: the run ends before its backward pass; the others redo this update
            for k in bad:
                m = members[k]
                m.result = m.run.finish("diverged", _diverged_message(losses[k].detach(), m.run.step))
            break
        losses.sum().backward()
        stack.clip()
        stack.update()
        for k, m in enumerate(members):
            m.result = _after_update(stack, k, values[k], progress, stop_after)
        if any(m.result is not None for m in members) or stack.step == join_at:
            break
    for k, m in enumerate(members):
        if m.result is None:
            stack.store(k)


def train_stacked(
    configs: Sequence[Config | dict],
    run_dirs: Sequence[str | Path | None] | None = None,
    *,
    resume: bool = False,
    progress: Callable[[int, int, dict], None] | None = None,
    stop_after: int | None = None,
) -> list[TrainResult]:
    """Train the runs ``configs`` as one stack (module docstring); return each run's result.

    Args:
        configs: :class:`Config` objects (or dicts) with equal :func:`stack_key`.
        run_dirs: one folder per run (or ``None`` for each, in memory), written as :func:`train`
            writes them.
        resume: continue each run from its folder's checkpoint, if it has one.
        progress: called as ``progress(step, total, last_metrics)`` after each run's evaluations.
        stop_after: stop every run (status ``running``, checkpoint written) after this many updates.

    Examples:
        >>> from inertia.experiments import Config
        >>> base = dict(data={"name": "addition", "n": 200, "seq_len": 5, "n_test": 50},
        ...             model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 8, "output_size": 1,
        ...                    "output": "last"}, steps=20, eval_every=10, batch_size=20)
        >>> runs = [Config(**base, seed=s) for s in (0, 1)]
        >>> [r.status for r in train_stacked(runs)]
        ['completed', 'completed']
    """
    cfgs = [c if isinstance(c, Config) else from_dict(c) for c in configs]
    if not cfgs:
        raise ConfigError("train_stacked needs at least one config, got none")
    dirs = list(run_dirs) if run_dirs is not None else [None] * len(cfgs)
    if len(dirs) != len(cfgs):
        raise ConfigError(f"train_stacked needs one run folder per config, got {len(dirs)} for {len(cfgs)} configs")
    keys = {stack_key(c) for c in cfgs}
    if None in keys:
        bad = next(c for c in cfgs if stack_key(c) is None)
        raise ConfigError(
            f"optimizer {bad.optimizer.name!r} with monitor {bad.monitor.quantities!r} cannot be stacked: "
            f"stacked runs use one of {', '.join(STACKABLE_OPTIMIZERS)} and no Monitor"
        )
    if len(keys) != 1:
        raise ConfigError(f"the runs of one stack must share {', '.join(SHARED_FIELDS)}; these configs differ there")
    with flush_denormals(), contextlib.ExitStack() as held:
        members = [_open_member(c, d, resume, held) for c, d in zip(cfgs, dirs, strict=True)]
        _check_same_shapes(members)
        loss_fn = members[0].run.loss_fn
        for m in members:
            m.result = _first_evaluation(m)
        try:
            _train_stack(members, loss_fn, progress, stop_after)
        except Exception as e:
            for m in members:
                if m.result is None:
                    m.run.fail(e)
            raise
    return [m.result for m in members if m.result is not None]
