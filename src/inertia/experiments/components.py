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

from .config import Config, ConfigError, _expect


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


def _data_calls(cfg: Config) -> tuple[Callable, dict, dict | None, str]:
    """How ``cfg.data`` is generated: (factory, keyword arguments for the training set, those for
    the test set or ``None`` when one call gives both, the kind of result). The test set of a
    generated set is drawn with ``seed + 1_000_003``; ``n_test`` defaults to n // 5 (1000 for RNN
    tasks)."""
    from .. import data as D

    name, kw = _kwargs(cfg.data)
    seed = kw.pop("seed", cfg.seed)
    factory = D.get(name)
    if name in _FILE_SETS:
        return factory, kw, None, "split"
    if name in ("mnist1d", "digits"):
        return factory, dict(kw, seed=seed), None, "split"
    if name == "deep_linear_regression":
        return factory, dict(kw, seed=seed), None, "regression"
    sequence = name in D.TASKS
    n_test = kw.pop("n_test", None)
    n = kw.pop("n", 1000 if sequence else 2000)
    if sequence:
        kw["seq_len"] = kw.pop("seq_len", 40)
        n_test = 1000 if n_test is None else n_test
    elif n_test is None:
        n_test = max(n // 5, 1) if isinstance(n, int) else n  # a bad n is reported by the factory
    test_seed = seed + 1_000_003 if isinstance(seed, int) else seed
    kind = "sequence" if sequence else "autoencoder" if name == "curves" else "classification"
    return factory, dict(kw, n=n, seed=seed), dict(kw, n=n_test, seed=test_seed), kind


def _train_data(kind: str, tr: Any, te: Any) -> TrainData:
    """A factory's results (see :func:`_data_calls`) as :class:`TrainData`."""
    if kind == "classification":  # (x, y) pairs
        return TrainData(tr[0], tr[1], te[0], te[1], "classification")
    if kind == "autoencoder":  # images are their own targets
        return TrainData(tr, tr, te, te, "autoencoder")
    if kind == "sequence":
        return TrainData(tr.inputs, tr.targets, te.inputs, te.targets, "sequence", task=tr)
    if kind == "regression":  # Hu et al. fit the training set: test = train
        return TrainData(tr.inputs, tr.targets, tr.inputs, tr.targets, "regression")
    return TrainData(tr.x_train, tr.y_train, tr.x_test, tr.y_test, "classification")  # a Split


def _generate_data(cfg: Config) -> TrainData:
    factory, train_kw, test_kw, kind = _data_calls(cfg)
    tr = factory(**train_kw)
    return _train_data(kind, tr, factory(**test_kw) if test_kw is not None else None)


def build_model(cfg: Config, data: TrainData) -> nn.Module:
    from .. import models as M

    name, kw = _kwargs(cfg.model)
    try:
        return M.get(name)(**kw)
    except TypeError as e:
        raise ConfigError(f"model {name!r}: {e}") from None


_INIT_KEYS = ("scheme", "bias", "rules")  # init entries that are not the scheme's own keywords


def apply_init(
    model: nn.Module,
    cfg: Config,
    generator: torch.Generator,
    data: TrainData | None = None,
    loss_fn: Callable | None = None,
):
    from .. import init as I

    kw = {k: v for k, v in cfg.init.items() if k not in _INIT_KEYS}
    scheme, bias, rules = cfg.init.get("scheme"), cfg.init.get("bias", 0.0), cfg.init.get("rules")
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


def build_loss(name: str, data: TrainData | None = None) -> Callable:
    if name == "auto":
        if data is not None and data.kind == "sequence":
            return data.task.loss_fn
        name = {"classification": "cross_entropy", "autoencoder": "sum_squared"}.get(
            data.kind if data is not None else "", "mse"
        )
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


def check_names(cfg: Config) -> None:
    """Every registry name in the config exists (ConfigError listing the known ones otherwise), and
    the data set, model and schedules take the keywords given to them. Cheap: nothing is built."""
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
        if not isinstance(name, str) or name not in reg:
            raise ConfigError(f"{field}: unknown name {name!r}; accepted: {', '.join(reg.available())}")
    factory, train_kw, _, _ = _data_calls(cfg)
    _check_keywords(f"data {cfg.data['name']!r}", factory, train_kw)
    scheme = cfg.init.get("scheme")
    if scheme not in (None, "torch_default"):
        fn = I.get(scheme)
        supplied = (
            ("model", "loss_fn", "generator") if getattr(fn, "model_level", False) else ("tensor", "generator", "fans")
        )
        _check_keywords(f"init {scheme!r}", fn, {k: v for k, v in cfg.init.items() if k not in _INIT_KEYS}, supplied)
    name, kw = _kwargs(cfg.model)
    _check_keywords(f"model {name!r}", M.get(name), kw)
    for sec in ("schedule", "lr_schedule"):
        v = getattr(cfg, sec)
        if v is not None:
            name, kw = _kwargs(v)
            _check_keywords(f"{sec} {name!r}", schedules.get(name), kw)


def _check_keywords(where: str, fn: Callable, kwargs: dict, supplied: tuple = ()) -> None:
    """``fn`` can be called with ``kwargs`` plus the arguments named in ``supplied`` (which the
    run passes itself, so the config may not): no unknown keyword, none required missing."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to check (a builtin): the call will tell
        return
    accepted = [
        p.name
        for p in sig.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in supplied
    ]
    taken = sorted(set(kwargs) & set(supplied))
    _expect(not taken, f"{where}: {taken} are set by the run, not the config; accepted: {', '.join(accepted)}")
    try:
        sig.bind(**dict.fromkeys(p for p in supplied if p in sig.parameters), **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}; accepted: {', '.join(accepted)}") from None


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


def loop_metrics(cfg: Config) -> list[str]:
    """The metrics :func:`~inertia.experiments.train.train` adds to the data's own at every
    evaluation: the update, the last batch's loss, the seconds so far, Hessian-Free's counters
    and the gradient-clipping statistics when those are used."""
    names = ["step", "train_batch_loss", "wall_s"]
    if cfg.optimizer.name == "hessian_free":
        names += ["hf_damping", "hf_cg_iters", "hf_curvature_products"]
    if cfg.clip_grad_norm is not None:
        names += ["max_grad_norm", "clipped_steps"]
    return names


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
    from .config import check_device

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
        if cfg.optimizer.name != "hessian_free":  # one update on two examples: the schedules' values at step 0
            xb, yb = data.batch(torch.arange(min(2, data.n_train)))
            loss_fn(model(xb), yb).backward()
            optimizer.step()
    check_structural_damping(cfg, model)
    with _building("monitor"):
        monitor = build_monitor(cfg, model, data, loss_fn, None)
        if monitor is not None:
            monitor.close()
    if cfg.stop_when is not None and cfg.stop_when not in names:
        raise ConfigError(
            f"stop_when {cfg.stop_when!r} is not an evaluation metric of this run; its metrics are {sorted(names)}"
        )
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
        "sequence" if data.kind == "sequence" else None,
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
    _expect(isinstance(out, torch.Tensor), f"model {model_name!r} returns {type(out).__name__}, not a tensor")
    if kind == "sequence":
        return out
    if not y.is_floating_point() and y.dim() == 1:
        classes = classes if classes is not None else int(y.max()) + 1
        _expect(
            out.dim() == 2 and out.shape[-1] >= classes,
            f"model {model_name!r} gives outputs of shape {list(out.shape[1:])} per example; data "
            f"{data_name!r} has {classes} classes, so it needs {classes} outputs",
        )
    elif y.is_floating_point():
        _expect(
            out.shape[1:] == y.shape[1:],
            f"model {model_name!r} gives outputs of shape {list(out.shape[1:])} "
            f"per example; the targets of data {data_name!r} have shape "
            f"{list(y.shape[1:])}",
        )
    return out
