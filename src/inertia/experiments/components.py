"""Build a run's pieces from a config's registry names: data, model, init, optimizer, loss,
monitor. Kept apart from the training loop so configs can be checked without building anything."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import (
    INIT_KEYS,
    Config,
    ConfigError,
    check_device,
    check_names,
    data_arguments,
    expect,
    split_name,
)
from .steps import STEPS, loop_metrics

__all__ = [
    "TrainData",
    "apply_init",
    "build_data",
    "build_loss",
    "build_model",
    "build_monitor",
    "build_optimizer",
    "check_names",
    "check_outputs",
    "check_stop_when",
    "check_structural_damping",
    "dry_build",
    "loop_metrics",
    "LOSS_FUNCTIONS",
]


def _classification_errors(pred: torch.Tensor, y: torch.Tensor, task: Any) -> dict:
    return {"error": float((pred.argmax(-1) != y).float().mean())}


def _autoencoder_errors(pred: torch.Tensor, y: torch.Tensor, task: Any) -> dict:
    # summed squared error per case, as Sutskever et al. (2013) report
    return {"error": float(((pred - y) ** 2).sum(-1).mean())}


def _sequence_errors(pred: torch.Tensor, y: torch.Tensor, task: Any) -> dict:
    return {"error": task.error(pred, y), "solved": bool(task.solved(pred, y))}


# The evaluation metrics besides the loss, by the data's kind (regression: the loss only).
_ERRORS: dict[str, Callable[[torch.Tensor, torch.Tensor, Any], dict]] = {
    "classification": _classification_errors,
    "autoencoder": _autoencoder_errors,
    "sequence": _sequence_errors,
}


@dataclass
class TrainData:
    """Tensors of one run, with how to batch and evaluate them.

    ``kind`` (see :class:`inertia.data.DataSplits`): ``classification`` (error = fraction wrong),
    ``autoencoder`` (inputs are targets; error = summed squared error per case, as Sutskever et
    al. report), ``regression``, or ``sequence`` (an RNN task; error and ``solved`` from the task).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    kind: str
    task: Any = None
    eval_examples: int = 2000

    @property
    def n_train(self) -> int:
        return self.x_train.shape[0]

    def batch(self, idx: torch.Tensor):
        return self.x_train[idx], self.y_train[idx]

    def evaluate(self, model: nn.Module, loss_fn: Callable) -> dict:
        out = {}
        errors = _ERRORS.get(self.kind)
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            x, y = x[: self.eval_examples], y[: self.eval_examples]
            pred = model(x)
            out[f"{split}_loss"] = float(loss_fn(pred, y))
            if errors is not None:
                out.update({f"{split}_{k}": v for k, v in errors(pred, y, self.task).items()})
        return out


# Generated data sets, kept per process: a pool worker that trains several configs on the same data
# (the sutskever2013 reproduction: 16 autoencoder runs on 10,000 CURVES images, about 1.2 s to draw)
# generates them once. Sets read from the user's files are not kept (the files may change).
_GENERATED: dict = {}
_GENERATED_MAX = 4


def build_data(cfg: Config, device=None, dtype=torch.float32) -> TrainData:
    """The run's data, built by the data set's registered builder (:meth:`inertia.data.DataSet.build`)
    from ``cfg.data`` and ``cfg.seed`` (or read from files), on ``device`` with floating-point tensors
    in ``dtype``. Generated sets are cached per process and handed out as fresh copies."""
    dataset, kw = data_arguments(cfg)
    key = None if dataset.reads_files else json.dumps([cfg.data, cfg.seed], sort_keys=True, default=str)
    d = _GENERATED.get(key) if key is not None else None
    if d is None:
        s = dataset.build(**kw)
        d = TrainData(s.x_train, s.y_train, s.x_test, s.y_test, s.kind, task=s.task)
        if key is not None:
            while len(_GENERATED) >= _GENERATED_MAX:
                _GENERATED.pop(next(iter(_GENERATED)))
            _GENERATED[key] = d
    fields = ("x_train", "y_train", "x_test", "y_test")
    copies: dict = {}  # one copy per distinct tensor (an autoencoder's inputs are its targets)
    d = dataclasses.replace(d, **{f: copies.setdefault(id(getattr(d, f)), getattr(d, f).clone()) for f in fields})
    for f in fields:
        t = getattr(d, f)
        setattr(d, f, t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype))
    return d


def build_model(cfg: Config, data: TrainData) -> nn.Module:
    from .. import models as M

    name, kw = split_name(cfg.model)
    try:
        return M.get(name)(**kw)
    except TypeError as e:
        raise ConfigError(f"model {name!r}: {e}") from None


def apply_init(
    model: nn.Module,
    cfg: Config,
    generator: torch.Generator,
    data: TrainData | None = None,
    loss_fn: Callable | None = None,
):
    """Initialize ``model`` as ``cfg.init`` says: a scheme for every layer (with per-parameter
    ``rules`` and ``bias``), or a model-level scheme (``hessian_calibrated``), which calibrates on
    the loss of the first 256 training examples. ``torch_default`` keeps the modules' own."""
    from .. import init as I

    kw = {k: v for k, v in cfg.init.items() if k not in INIT_KEYS}
    scheme, bias, rules = cfg.init.get("scheme"), cfg.init.get("bias", 0.0), cfg.init.get("rules")
    if scheme in (None, "torch_default"):
        return None  # keep the modules' own initialization
    fn = I.get(scheme)
    if getattr(fn, "model_level", False):  # needs the loss on a fixed batch
        if data is None or loss_fn is None:
            raise ConfigError(f"init {scheme!r} calibrates on the loss: it needs the run's data and loss")
        xb, yb = data.x_train[:256], data.y_train[:256]
        return fn(model, lambda: loss_fn(model(xb), yb), generator=generator, **kw)
    spec = (scheme, kw) if kw else scheme
    return I.apply(model, spec, bias=bias, rules=rules, generator=generator)


def build_optimizer(cfg: Config, model: nn.Module):
    """The optimizer of ``cfg.optimizer.name``, built by its training-step strategy
    (:data:`inertia.experiments.steps.STEPS`)."""
    return STEPS.get(cfg.optimizer.name).build_optimizer(cfg, model)


def _cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _sum_squared(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed over outputs, averaged over cases (Sutskever et al. 2013)."""
    return ((out - y) ** 2).reshape(out.shape[0], -1).sum(1).mean()


LOSS_FUNCTIONS: dict[str, Callable] = {
    "cross_entropy": _cross_entropy,
    "mse": F.mse_loss,
    "sum_squared": _sum_squared,
    "bce": F.binary_cross_entropy,
}
_AUTO_LOSS = {"classification": "cross_entropy", "autoencoder": "sum_squared"}  # by kind; else mse


def build_loss(name: str, data: TrainData | None = None) -> Callable:
    """The loss ``name`` (:data:`LOSS_FUNCTIONS`); ``"auto"``: the RNN task's own for sequences,
    cross-entropy for classification, summed squared error for autoencoders, else MSE."""
    if name == "auto":
        if data is not None and data.kind == "sequence":
            return data.task.loss_fn
        name = _AUTO_LOSS.get(data.kind if data is not None else "", "mse")
    if name not in LOSS_FUNCTIONS:
        raise ConfigError(f"unknown loss {name!r}; accepted: auto, {', '.join(LOSS_FUNCTIONS)}")
    return LOSS_FUNCTIONS[name]


def build_monitor(cfg: Config, model: nn.Module, data: TrainData, loss_fn: Callable, run_dir):
    if not cfg.monitor.quantities:
        return None
    from ..diagnostics import Monitor

    xb, yb = data.x_train[:256], data.y_train[:256]
    path = run_dir.diagnostics if run_dir is not None else None
    named = dict(model.named_parameters())
    missing = [n for n in cfg.monitor.params if n not in named]
    if missing:
        raise ConfigError(f"monitor.params: {missing} are not parameters of the model; known: {sorted(named)}")
    params = {n: named[n] for n in cfg.monitor.params} or None
    probe = None
    if cfg.monitor.probe:  # a fixed batch of test examples for the layer statistics
        xp, yp = data.x_test[: cfg.monitor.probe], data.y_test[: cfg.monitor.probe]
        probe = (xp, lambda out: loss_fn(out, yp))
    return Monitor(
        model,
        cfg.monitor.quantities,
        every=cfg.monitor.every,
        path=path,
        loss_fn=lambda: loss_fn(model(xb), yb),
        inputs=xb,
        curvature_params=params,
        probe=probe,
    )


# What dry_build turns into a ConfigError naming the piece that failed: the pieces are built from the
# user's config only, so any of these means the config asks for something that cannot be built.
_BUILD_ERRORS = (
    ValueError,
    TypeError,
    RuntimeError,
    OverflowError,
    MemoryError,
    IndexError,
    ZeroDivisionError,
    OSError,
)


@contextlib.contextmanager
def _building(what: str):
    try:
        yield
    except ConfigError:
        raise
    except _BUILD_ERRORS as e:
        detail = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        raise ConfigError(f"{what}: {' '.join(detail.split())}") from None


def check_stop_when(cfg: Config, metrics) -> None:
    """``cfg.stop_when`` (when set) is one of ``metrics``, the names of the run's evaluation metrics
    (checked by :func:`dry_build` before a run, and by the run at its first evaluation)."""
    if cfg.stop_when is not None and cfg.stop_when not in metrics:
        raise ConfigError(
            f"stop_when {cfg.stop_when!r} is not an evaluation metric of this run; its metrics are {sorted(metrics)}"
        )


def check_structural_damping(cfg: Config, model: nn.Module) -> None:
    """Hessian-Free's structural damping needs the model's hidden states (``forward_with_hidden``)."""
    if cfg.optimizer.options.get("structural_damping", 0) > 0 and not hasattr(model, "forward_with_hidden"):
        raise ConfigError(
            f"optimizer.options.structural_damping needs a model that returns its hidden states "
            f"(forward_with_hidden, e.g. tanh_rnn); model {cfg.model['name']!r} does not"
        )


def dry_build(cfg: Config) -> list[str]:
    """Build every piece of the run ``cfg`` describes, on the CPU, and check that they fit
    together, so that a run or a sweep fails before any work starts rather than at its first
    update or evaluation: the device exists; the data set; the model, which must accept the data's
    inputs and give outputs the loss and the error can use (as many logits as classes, the targets'
    shape for autoencoders and regression); the initialization; the schedules and the optimizer
    (a first-order one makes one update on two examples); the monitor; ``stop_when`` names a
    metric of this run. Every failure is a ConfigError naming the piece. Generated data sets are
    cached per process (:func:`build_data`), so a run in the same process reuses them (a sweep's
    pool workers build their own). Returns the names of the run's evaluation
    metrics."""
    from ..optim import schedules

    check_device(cfg.device)
    dtype = getattr(torch, cfg.dtype)
    data_name, model_name = cfg.data["name"], cfg.model["name"]
    with _building(f"data {data_name!r}"):
        data = build_data(cfg, dtype=dtype)
    with _building(f"model {model_name!r}"):
        model = build_model(cfg, data).to(dtype=dtype)
    loss_fn = build_loss(cfg.loss, data)
    names = _check_fit(cfg, model, data, loss_fn) + loop_metrics(cfg)
    with _building(f"init {cfg.init.get('scheme', 'rules')!r}"):
        apply_init(model, cfg, generator=torch.Generator().manual_seed(cfg.seed), data=data, loss_fn=loss_fn)
    for sec in ("schedule", "lr_schedule"):
        spec = getattr(cfg, sec)
        if spec is not None:
            with _building(f"{sec} {spec['name']!r}"):
                schedules.from_config(spec)
    with _building(f"optimizer {cfg.optimizer.name!r}"):
        optimizer = build_optimizer(cfg, model)
        if STEPS.get(cfg.optimizer.name).first_order:  # one update on two examples: the schedules' values at step 0
            xb, yb = data.batch(torch.arange(min(2, data.n_train)))
            loss_fn(model(xb), yb).backward()
            optimizer.step()
    check_structural_damping(cfg, model)
    with _building("monitor"):
        monitor = build_monitor(cfg, model, data, loss_fn, None)
        if monitor is not None:
            monitor.close()
    check_stop_when(cfg, names)
    return names


def _check_fit(cfg: Config, model: nn.Module, data: TrainData, loss_fn: Callable) -> list[str]:
    """The model takes the data's inputs and its outputs fit the loss and the error (on two
    examples); returns the names of the data's evaluation metrics."""
    data_name, model_name = cfg.data["name"], cfg.model["name"]
    classes = int(max(data.y_train.max(), data.y_test.max())) + 1 if data.kind == "classification" else None
    out = check_outputs(
        model,
        data.x_train[:2],
        data.y_train[:2],
        model_name,
        data_name,
        data.kind,
        classes,
    )
    try:
        with torch.no_grad():
            metrics = dataclasses.replace(data, eval_examples=2).evaluate(model, loss_fn)
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        raise ConfigError(
            f"loss {cfg.loss!r} does not fit model {model_name!r} (outputs {list(out.shape[1:])} "
            f"per example) and data {data_name!r} (targets {list(data.y_train.shape[1:])}): "
            f"{' '.join(str(e).split())}"
        ) from None
    return list(metrics)


def check_outputs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    model_name: str,
    data_name: str,
    kind: str | None = None,
    classes: int | None = None,
) -> torch.Tensor:
    """``model(x)`` runs and its outputs fit the targets ``y``: class labels (integer targets of
    shape [n]) need outputs [n, C] with C at least the number of classes (``classes``, default
    ``y.max() + 1``); float targets need outputs of their shape. ``kind="sequence"``: only the
    forward pass is checked (an RNN task's loss checks its shapes). Returns the outputs."""
    with torch.no_grad():
        try:
            out = model(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as e:
            raise ConfigError(
                f"model {model_name!r} does not take the inputs of data {data_name!r} (shape "
                f"{list(x.shape[1:])} per example): {' '.join(str(e).split())}"
            ) from None
    expect(isinstance(out, torch.Tensor), f"model {model_name!r} returns {type(out).__name__}, not a tensor")
    if kind == "sequence":
        return out
    if not y.is_floating_point() and y.dim() == 1:
        classes = classes if classes is not None else int(y.max()) + 1
        expect(
            out.dim() == 2 and out.shape[-1] >= classes,
            f"model {model_name!r} gives outputs of shape {list(out.shape[1:])} per example; data "
            f"{data_name!r} has {classes} classes, so it needs {classes} outputs",
        )
    elif y.is_floating_point():
        expect(
            out.shape[1:] == y.shape[1:],
            f"model {model_name!r} gives outputs of shape {list(out.shape[1:])} "
            f"per example; the targets of data {data_name!r} have shape "
            f"{list(y.shape[1:])}",
        )
    return out
