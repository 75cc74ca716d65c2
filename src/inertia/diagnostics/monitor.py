"""``Monitor``: record chosen quantities during training without changing it.

What is measured (quantities), when (``every``), and how it is shown (:mod:`.plots`) are
separate. A quantity is a registry name or a callable ``q(monitor, step) -> dict``:

- ``"layer_stats"``: per-layer activation / pre-activation / back-propagated gradient / weight
  gradient statistics from hooks (:class:`.layers.LayerStats`) during the training step itself,
  or, with ``probe=(inputs, loss_fn)``, during a pass on that fixed batch at recorded steps;
- ``"hessian_top_eigenvalue"``, ``"hessian_frobenius_norm"``, ``"hessian_trace"``: curvature of
  ``loss_fn`` (a zero-argument callable on a fixed batch) w.r.t. ``curvature_params`` (default
  all parameters; e.g. the first layer's weight for Temperoni et al.'s diagnostic);
- ``"jacobian_singular_values"``: mean singular value of each layer Jacobian on ``inputs``;
- ``"weight_norms"``: Frobenius norm of every parameter.

Usage, once per training step, after ``backward()`` and before ``optimizer.step()``::

    mon = Monitor(model, ["layer_stats", "hessian_frobenius_norm"], every=10, loss_fn=..., path="diag.jsonl")
    for step in range(steps):
        loss = loss_fn(model(x), y); loss.backward()
        mon.step(step)
        opt.step(); opt.zero_grad()

``step(t)`` stamps the hook records of step t (hooks are armed only at recorded steps, so other
steps cost one flag check per layer), computes the other quantities at recorded steps, and arms
the hooks for step t + 1. It never touches parameters, gradients or the global random state, so
training is identical with and without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from .._json import from_json, to_json
from .._registry import Registry
from . import curvature
from .jacobians import layer_jacobian_singular_values
from .layers import LayerStats
from .state import preserved

QUANTITIES: Registry[Callable] = Registry("monitor quantity")


def _curv_params(mon: Monitor, step: int, loss_fn: Callable) -> curvature.HessianOperator:
    """The Hessian of ``loss_fn`` (the monitor's) w.r.t. ``mon.curvature_params`` at ``step``, shared by the curvature
    quantities recorded at that step: the first of them builds it (one forward pass and one gradient
    graph), the last of them in ``mon.quantities`` lets it go, so no graph outlives the step."""
    users = sum(q in (_top_eig, _frob, _trace) for q in mon.quantities) or 1
    held = mon.__dict__.get("_curvature_operator")
    if held is None or held[0] != step:
        op = curvature.HessianOperator(loss_fn, mon.curvature_params)
        if mon.distributed:  # the global loss's Hessian: products averaged over the processes
            from .distributed import averaged_product

            op.product = averaged_product(op.product)
        held = [step, op, users]
    held[2] -= 1
    mon.__dict__["_curvature_operator"] = held if held[2] > 0 else None
    return held[1]


def _need_loss(mon: Monitor, name: str) -> Callable:
    """``mon.loss_fn``, or a ``ValueError`` naming the quantity that needs it."""
    if mon.loss_fn is None:
        raise ValueError(f"quantity {name!r} needs loss_fn (a zero-argument callable returning the loss)")
    return mon.loss_fn


@QUANTITIES.register("hessian_top_eigenvalue")
def _top_eig(mon: Monitor, step: int) -> dict:
    op = _curv_params(mon, step, _need_loss(mon, "hessian_top_eigenvalue"))
    res = curvature.hessian_eigenvalues(op, k=1, tol=1e-3, max_iter=50, generator=mon.generator)
    return {"hessian_top_eigenvalue": float(res.values[0]), "hessian_top_eigenvalue_hvps": res.num_hvps}


@QUANTITIES.register("hessian_frobenius_norm")
def _frob(mon: Monitor, step: int) -> dict:
    op = _curv_params(mon, step, _need_loss(mon, "hessian_frobenius_norm"))
    res = curvature.hessian_frobenius_norm(op, probes=mon.probes, generator=mon.generator)
    return {"hessian_frobenius_norm": res.value, "hessian_frobenius_norm_stderr": res.stderr}


@QUANTITIES.register("hessian_trace")
def _trace(mon: Monitor, step: int) -> dict:
    op = _curv_params(mon, step, _need_loss(mon, "hessian_trace"))
    res = curvature.hessian_trace(op, probes=mon.probes, generator=mon.generator)
    return {"hessian_trace": res.value, "hessian_trace_stderr": res.stderr}


@QUANTITIES.register("jacobian_singular_values")
def _jac(mon: Monitor, step: int) -> dict:
    if mon.inputs is None:
        raise ValueError("quantity 'jacobian_singular_values' needs inputs (a batch)")
    spectra = layer_jacobian_singular_values(mon.model, mon.inputs)
    return {"jacobian_singular_values": {s.name: s.mean for s in spectra}}


@QUANTITIES.register("weight_norms")
def _norms(mon: Monitor, step: int) -> dict:
    return {"weight_norms": {n: float(p.detach().norm()) for n, p in mon.model.named_parameters()}}


QUANTITIES.register("layer_stats", lambda mon, step: {})  # a placeholder: recorded by the hooks, see Monitor


class Monitor:
    """Records ``quantities`` every ``every`` steps into ``records`` (and JSON lines at ``path``).

    Memory: without ``path`` every record stays in ``records`` (with layer statistics, some KB
    per recorded step). With ``path`` the file is the record and ``records`` holds none of them
    (or the latest ``keep``), so a long run's memory does not grow; :meth:`read_records` reads
    back everything this monitor wrote.

    Args:
        model: the model being trained.
        quantities: names from :data:`QUANTITIES` or callables ``q(monitor, step) -> dict``.
        every: record at steps divisible by ``every``.
        path: optional JSON-lines file, appended one record per recorded step.
        keep: how many of the latest records ``records`` holds; ``None`` (default): all of them
            without ``path``, none with it.
        loss_fn: zero-argument loss on a fixed batch, for the curvature quantities.
        inputs: a fixed batch, for the Jacobian quantity.
        curvature_params: tensors (or name -> tensor) for the curvature quantities (default: all).
        probes: Hutchinson probes for trace / Frobenius norm.
        histograms: record histograms in layer statistics.
        seed: seed of the monitor's own generator (the global RNG is never used).
        probe: ``(inputs, loss_fn)`` of a fixed batch for ``"layer_stats"``, with
            ``loss_fn(outputs) -> loss``: at each recorded step the statistics come from one
            forward and backward pass on this batch (the model in eval mode, the training
            gradients in ``.grad`` kept as they were) instead of from the training step, as Glorot
            & Bengio measure them on 300 fixed test images. ``None``: the training minibatch.
        distributed: under ``torch.distributed`` (data parallel; None: when a process group of
            more than one process is initialized): layer statistics and curvature of the global
            batch and loss (:mod:`.distributed`), records kept and written by rank 0 only. Every
            process must call :meth:`step` at the same steps; give the Monitor the module inside
            ``DistributedDataParallel`` (``ddp.module``) and a ``loss_fn`` that runs it on this
            process's shard (through it, not the wrapper, so no gradient all-reduce fires).
    """

    def __init__(
        self,
        model: nn.Module,
        quantities: Sequence[str | Callable] = ("layer_stats",),
        every: int = 10,
        path: str | Path | None = None,
        loss_fn: Callable | None = None,
        inputs: torch.Tensor | None = None,
        curvature_params=None,
        probes: int = 20,
        histograms: bool = True,
        seed: int = 0,
        probe: tuple | None = None,
        keep: int | None = None,
        distributed: bool | None = None,
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 0):
            raise ValueError(f"keep must be None or a non-negative integer, got {keep!r}")
        if probe is not None and not (
            isinstance(probe, tuple) and len(probe) == 2 and isinstance(probe[0], torch.Tensor) and callable(probe[1])
        ):
            raise ValueError(f"probe must be (inputs tensor, loss_fn) or None, got {type(probe).__name__}")
        from .distributed import world

        place = world() if distributed is None or distributed else None
        if distributed and place is None:
            raise ValueError("distributed=True needs an initialized torch.distributed process group of 2+ processes")
        self.distributed = place is not None
        self.rank = place[0] if place is not None else 0
        if self.rank != 0:  # records of the global batch are the same on every process: rank 0 keeps them
            path, keep = None, 0
        self.probe = probe
        self.model, self.every, self.loss_fn, self.inputs, self.probes = model, every, loss_fn, inputs, probes
        self.curvature_params = (
            curvature_params
            if curvature_params is not None
            else dict((n, p) for n, p in model.named_parameters() if p.requires_grad)
        )
        self.generator = torch.Generator().manual_seed(seed)
        self.quantities: list = []
        self.layer_stats: LayerStats | None = None
        for q in quantities:
            if callable(q):
                self.quantities.append(q)
            elif q == "layer_stats":
                self.layer_stats = LayerStats(model, histograms=histograms, distributed=self.distributed)
            else:
                self.quantities.append(QUANTITIES.get(q))
        self.records: list[dict] = []
        self.path = Path(path) if path is not None else None
        self.keep = keep if keep is not None or self.path is None else 0  # None: unbounded
        if self.layer_stats is not None:
            self.layer_stats.keep_records = self.keep is None  # the monitor's records hold them
        self._file = None
        self._start = 0  # where this monitor's records begin in the file
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")
            self._start = self._file.tell()
        self._arm(0)

    def _arm(self, step: int) -> None:
        if self.layer_stats is not None:  # with a probe batch the training passes are never recorded
            self.layer_stats.active = self.probe is None and step % self.every == 0

    def _probe_layer_stats(self) -> None:
        """One forward/backward pass on the probe batch with the hooks armed; parameter gradients,
        the train/eval mode and the hooks' state are restored afterwards."""
        assert self.probe is not None and self.layer_stats is not None
        inputs, loss_fn = self.probe
        params = [p for p in self.model.parameters() if p.requires_grad]
        saved = [p.grad for p in params]
        was_training = self.model.training
        try:
            for p in params:
                p.grad = None
            self.model.eval()
            self.layer_stats.active = True
            with torch.enable_grad():
                loss_fn(self.model(inputs)).backward()
        finally:
            self.layer_stats.active = False
            self.model.train(was_training)
            for p, g in zip(params, saved, strict=False):
                p.grad = g

    @contextlib.contextmanager
    def paused(self):
        """Disarm the layer hooks inside the block (evaluation passes are not training steps), then
        restore them as they were."""
        ls = self.layer_stats
        was = ls.active if ls is not None else False
        if ls is not None:
            ls.active = False
        try:
            yield self
        finally:
            if ls is not None:
                ls.active = was

    def should_record(self, step: int) -> bool:
        return step % self.every == 0

    def step(self, step: int, **extra) -> dict | None:
        """Finish step ``step``: record it if due, then arm the hooks for ``step + 1``."""
        record = None
        if self.should_record(step):
            record = {"step": step, **extra}
            if self.layer_stats is not None:
                if self.probe is not None:
                    self._probe_layer_stats()
                record["layers"] = self.layer_stats.collect(step)
                self.layer_stats.active = False  # the quantities' own forward passes are not training
            if self.quantities:  # their passes leave no trace: dropout draws, BatchNorm statistics, grads
                with preserved(self.model):
                    for q in self.quantities:
                        record.update(q(self, step))
            self._hold(record)
            if self._file is not None:
                self._file.write(to_json(record) + "\n")
                self._file.flush()
        elif self.layer_stats is not None:
            self.layer_stats.discard()
        self._arm(step + 1)
        return record

    def _hold(self, record: dict) -> None:
        self.records.append(record)
        if self.keep is not None and len(self.records) > self.keep:
            del self.records[: len(self.records) - self.keep]

    def read_records(self) -> list[dict]:
        """Every record this monitor wrote to ``path`` (not what the file held before), as JSON
        read back: non-finite floats are floats again, tensors are lists."""
        if self.path is None:
            raise ValueError("read_records needs a monitor with a path; without one, use .records")
        if self._file is not None:
            self._file.flush()
        out = []
        with open(self.path, encoding="utf-8") as f:
            f.seek(self._start)
            for line in f:
                if not line.endswith("\n"):
                    break  # a partial last line (a write cut off by a kill)
                if line.strip():
                    out.append(from_json(line))
        return out

    def close(self) -> None:
        if self.layer_stats is not None:
            self.layer_stats.remove()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def records_to_jsonl(records: Iterable[dict], path: str | Path) -> None:
    """Write monitor records as JSON lines."""
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(to_json(r) + "\n")
