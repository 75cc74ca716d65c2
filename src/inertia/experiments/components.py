"""Build a run's pieces from a config's registry names: data, model, init, optimizer, loss,
monitor. Kept apart from the training loop so configs can be checked without building anything."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config, ConfigError


@dataclass
class TrainData:
    """Tensors of one run, with how to batch and evaluate them.

    ``kind``: ``classification`` (error = fraction wrong), ``autoencoder`` (inputs are targets;
    error = summed squared error per case, as Sutskever et al. report), ``regression``, or
    ``sequence`` (an RNN task; error and ``solved`` from the task).
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
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            x, y = x[: self.eval_examples], y[: self.eval_examples]
            pred = model(x)
            out[f"{split}_loss"] = float(loss_fn(pred, y))
            if self.kind == "classification":
                out[f"{split}_error"] = float((pred.argmax(-1) != y).float().mean())
            elif self.kind == "autoencoder":
                out[f"{split}_error"] = float(((pred - y) ** 2).sum(-1).mean())
            elif self.kind == "sequence":
                out[f"{split}_error"] = self.task.error(pred, y)
                out[f"{split}_solved"] = bool(self.task.solved(pred, y))
        return out


def _kwargs(section: dict) -> tuple[str, dict]:
    kw = dict(section)
    return kw.pop("name"), kw


# Generated data sets, kept per process: a pool worker that trains several configs on the same data
# (the sutskever2013 reproduction: 16 autoencoder runs on 10,000 CURVES images, about 1.2 s to draw)
# generates them once. Sets read from the user's files are not kept (the files may change).
_GENERATED: dict = {}
_GENERATED_MAX = 4
_FILE_SETS = ("mnist", "cifar10")


def build_data(cfg: Config, device=None, dtype=torch.float32) -> TrainData:
    """The run's data: generated from ``cfg.data`` and ``cfg.seed`` (or read from files), on
    ``device`` with floating-point tensors in ``dtype``. Generated sets are cached per process and
    handed out as fresh copies."""
    key = None
    if cfg.data["name"] not in _FILE_SETS:
        key = json.dumps([cfg.data, cfg.seed], sort_keys=True, default=str)
    d = _GENERATED.get(key) if key is not None else None
    if d is None:
        d = _generate_data(cfg)
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


def _generate_data(cfg: Config) -> TrainData:
    from .. import data as D

    name, kw = _kwargs(cfg.data)
    n_test = kw.pop("n_test", None)
    seed = kw.pop("seed", cfg.seed)
    factory = D.get(name)
    if name in ("shapeset", "shapeset_easy"):
        n = kw.pop("n", 2000)
        xtr, ytr = factory(n, seed=seed, **kw)
        xte, yte = factory(n_test or max(n // 5, 1), seed=seed + 1_000_003, **kw)
        d = TrainData(xtr, ytr, xte, yte, "classification")
    elif name == "curves":
        n = kw.pop("n", 2000)
        xtr = factory(n, seed=seed, **kw)
        xte = factory(n_test or max(n // 5, 1), seed=seed + 1_000_003, **kw)
        d = TrainData(xtr, xtr, xte, xte, "autoencoder")
    elif name in ("addition", "multiplication", "memorization5", "memorization20", "temporal_order"):
        n = kw.pop("n", 1000)
        seq_len = kw.pop("seq_len", 40)
        tr = factory(n=n, seq_len=seq_len, seed=seed, **kw)
        te = factory(n=n_test or 1000, seq_len=seq_len, seed=seed + 1_000_003, **kw)
        d = TrainData(tr.inputs, tr.targets, te.inputs, te.targets, "sequence", task=tr)
    elif name == "deep_linear_regression":
        r = factory(seed=seed, **kw)
        d = TrainData(r.inputs, r.targets, r.inputs, r.targets, "regression")
    else:  # Split-returning sets: mnist1d, digits, mnist, cifar10
        s = factory(**kw) if name in _FILE_SETS else factory(seed=seed, **kw)
        d = TrainData(s.x_train, s.y_train, s.x_test, s.y_test, "classification")
    return d


def build_model(cfg: Config, data: TrainData) -> nn.Module:
    from .. import models as M

    name, kw = _kwargs(cfg.model)
    try:
        return M.get(name)(**kw)
    except TypeError as e:
        raise ConfigError(f"model {name!r}: {e}") from None


def apply_init(model: nn.Module, cfg: Config, generator: torch.Generator, data: Optional[TrainData] = None,
               loss_fn: Optional[Callable] = None):
    from .. import init as I

    kw = dict(cfg.init)
    scheme = kw.pop("scheme", None)
    bias = kw.pop("bias", 0.0)
    rules = kw.pop("rules", None)
    if scheme in (None, "torch_default"):
        return None  # keep the modules' own initialization
    if scheme == "hessian_calibrated":  # model-level: needs the loss on a fixed batch
        xb, yb = data.x_train[:256], data.y_train[:256]
        return I.hessian_calibrated_(model, lambda: loss_fn(model(xb), yb), generator=generator, **kw)
    spec = (scheme, kw) if kw else scheme
    return I.apply(model, spec, bias=bias, rules=rules, generator=generator)


def build_optimizer(cfg: Config, model: nn.Module):
    from ..optim import Momentum, schedules

    o = cfg.optimizer
    lr = schedules.from_config(cfg.lr_schedule) if cfg.lr_schedule else o.lr
    if cfg.schedule is not None:
        mu = schedules.from_config(cfg.schedule)
    else:
        mu = o.momentum
    if o.name == "sgd":
        mu = 0.0
    nesterov = o.nesterov and not (isinstance(mu, (int, float)) and mu == 0)
    if o.name == "hessian_free":
        from ..optim import HessianFree
        from .config import HF_LOOP_OPTIONS

        kwargs = {k: v for k, v in o.options.items() if k not in HF_LOOP_OPTIONS}
        return HessianFree(model.parameters(), lr=o.lr, weight_decay=o.weight_decay, **kwargs)
    return Momentum(model.parameters(), lr=lr, momentum=mu, nesterov=nesterov, weight_decay=o.weight_decay)


def build_loss(name: str, data: Optional[TrainData] = None) -> Callable:
    if name == "auto":
        if data is not None and data.kind == "sequence":
            return data.task.loss_fn
        name = {"classification": "cross_entropy", "autoencoder": "sum_squared"}.get(
            data.kind if data is not None else "", "mse")
    if name == "cross_entropy":
        return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    if name == "mse":
        return F.mse_loss
    if name == "sum_squared":  # summed over outputs, averaged over cases (Sutskever et al. 2013)
        return lambda out, y: ((out - y) ** 2).reshape(out.shape[0], -1).sum(1).mean()
    if name == "bce":
        return F.binary_cross_entropy
    raise ConfigError(f"unknown loss {name!r}")


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
    return Monitor(model, cfg.monitor.quantities, every=cfg.monitor.every, path=path,
                   loss_fn=lambda: loss_fn(model(xb), yb), inputs=xb, curvature_params=params, probe=probe)


def check_names(cfg: Config) -> None:
    """Every registry name in the config exists (ConfigError listing the known ones otherwise)."""
    from .. import data as D
    from .. import init as I
    from .. import models as M
    from ..diagnostics import QUANTITIES
    from ..optim import schedules

    checks = [("data.name", D.REGISTRY, cfg.data["name"]), ("model.name", M.REGISTRY, cfg.model["name"])]
    if cfg.init.get("scheme") not in (None, "torch_default"):
        checks.append(("init.scheme", I.REGISTRY, cfg.init["scheme"]))
    for sec in ("schedule", "lr_schedule"):
        v = getattr(cfg, sec)
        if v is not None:
            checks.append((f"{sec}.name", schedules.REGISTRY, v["name"]))
    for q in cfg.monitor.quantities:
        checks.append(("monitor.quantities", QUANTITIES, q))
    for field, reg, name in checks:
        if name not in reg:
            raise ConfigError(f"{field}: unknown name {name!r}; accepted: {', '.join(reg.available())}")

