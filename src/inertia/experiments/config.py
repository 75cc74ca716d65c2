"""Experiment configs: one dataclass that names everything by registry strings.

A config is loadable from YAML, JSON or a Python file defining ``get_config()`` (or
``CONFIG``), can be overridden with dotted keys (``optimizer.lr=0.01``), and is validated
eagerly: every problem is reported with the dotted field name, the bad value and what is
accepted, before any run starts (:class:`ConfigError`, exit code 2 on the command line).
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOSSES = ("auto", "cross_entropy", "mse", "sum_squared", "bce")
OPTIMIZERS = ("momentum", "sgd", "hessian_free")
DTYPES = ("float32", "float64")


class ConfigError(ValueError):
    """A config is wrong: the message names the field, the value and what is accepted."""


@dataclass
class OptimizerConfig:
    name: str = "momentum"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    # hessian_free only: HessianFree keyword options (damping, cg_max_iter, ...) and the training
    # loop's curvature_fraction (the share of each batch used for curvature products, default 0.25);
    # lr and weight_decay are the fields above
    options: dict = field(default_factory=dict)


@dataclass
class MonitorConfig:
    quantities: list = field(default_factory=list)
    every: int = 10
    params: list = field(default_factory=list)  # parameter names for curvature quantities (default: all)
    probe: int = 0  # layer_stats on the first `probe` test examples at each record (0: the training minibatch)


@dataclass
class Config:
    """Everything one training run needs.

    ``data``, ``model`` and ``schedule`` are ``{"name": <registry name>, **kwargs}``; ``init``
    is ``{"scheme": <name>, "bias": float, "rules": {...}, **scheme kwargs}``. ``schedule`` is
    the momentum schedule (``None``: constant ``optimizer.momentum``); ``lr_schedule`` likewise
    for the learning rate.
    """

    experiment: str = "default"
    data: dict = field(default_factory=lambda: {"name": "curves", "n": 2000})
    model: dict = field(default_factory=lambda: {"name": "deep_autoencoder", "sizes": [784, 100, 20]})
    init: dict = field(default_factory=lambda: {"scheme": "glorot_uniform"})
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: dict | None = None
    lr_schedule: dict | None = None
    loss: str = "auto"
    steps: int = 1000
    batch_size: int = 100
    eval_every: int = 100
    checkpoint_every: int | None = None
    # stop (status completed) at the first evaluation where this metric is true, e.g. "test_solved"
    stop_when: str | None = None
    # rescale the gradient to at most this total 2-norm before each update (torch.nn.utils.clip_grad_norm_)
    clip_grad_norm: float | None = None
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not d["optimizer"]["options"]:  # left out when empty, so configs without it keep their hashes
            del d["optimizer"]["options"]
        if isinstance(d["monitor"], dict) and "probe" in d["monitor"] and not d["monitor"]["probe"]:  # likewise
            del d["monitor"]["probe"]
        for key in ("stop_when", "clip_grad_norm"):  # likewise
            if d[key] is None:
                del d[key]
        return d

    def replace(self, **overrides: Any) -> "Config":
        """A validated copy with dotted-key overrides applied (``{"optimizer.lr": 0.01}``)."""
        d = self.to_dict()
        for key, value in overrides.items():
            set_dotted(d, key, value)
        return from_dict(d)


_SECTIONS = {"optimizer": OptimizerConfig, "monitor": MonitorConfig}


def set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for i, p in enumerate(parts[:-1]):
        if cur.get(p) is None:
            cur[p] = {}
        if not isinstance(cur[p], dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a section, cannot set {key}")
        cur = cur[p]
    cur[parts[-1]] = value


def get_dotted(d: dict, key: str) -> Any:
    cur: Any = d
    for p in key.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _number(path: str, v: Any, *, lo: float | None = None, hi: float | None = None,
            lo_open: bool = False, hi_open: bool = False, integer: bool = False) -> Any:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
    _expect(ok_type and not isinstance(v, bool), f"{path} must be {kind}, got {v!r}")
    _expect(math.isfinite(v), f"{path} must be finite, got {v!r}")
    lo_bad = lo is not None and (v <= lo if lo_open else v < lo)
    hi_bad = hi is not None and (v >= hi if hi_open else v > hi)
    if lo_bad or hi_bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        rng = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise ConfigError(f"{path} must be in {rng}, got {v!r}")
    return v


def from_dict(d: dict) -> Config:
    """Build and validate a :class:`Config`; unknown or mistyped fields raise ConfigError."""
    _expect(isinstance(d, dict), f"config must be a mapping, got {type(d).__name__}")
    d = copy.deepcopy(d)
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(d) - names)
    _expect(not unknown, f"unknown config field(s) {unknown}; accepted: {sorted(names)}")
    for sec, cls in _SECTIONS.items():
        if sec in d:
            sub = d[sec]
            _expect(isinstance(sub, dict), f"{sec} must be a mapping, got {sub!r}")
            sub_names = {f.name for f in dataclasses.fields(cls)}
            bad = sorted(set(sub) - sub_names)
            _expect(not bad, f"unknown field(s) {[f'{sec}.{b}' for b in bad]}; accepted: {sorted(sub_names)}")
            d[sec] = cls(**sub)
    cfg = Config(**d)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Structural and range checks, then registry names (imported lazily)."""
    _expect(isinstance(cfg.experiment, str) and cfg.experiment and "/" not in cfg.experiment,
            f"experiment must be a non-empty name without '/', got {cfg.experiment!r}")
    for sec in ("data", "model"):
        v = getattr(cfg, sec)
        _expect(isinstance(v, dict) and isinstance(v.get("name"), str),
                f"{sec} must be a mapping with a 'name', got {v!r}")
    _expect(isinstance(cfg.init, dict) and ("scheme" in cfg.init or "rules" in cfg.init),
            f"init must be a mapping with a 'scheme', got {cfg.init!r}")
    o = cfg.optimizer
    _expect(o.name in OPTIMIZERS, f"optimizer.name must be one of {list(OPTIMIZERS)}, got {o.name!r}")
    _number("optimizer.lr", o.lr, lo=0)
    _number("optimizer.momentum", o.momentum, lo=0, hi=1, hi_open=True)
    _number("optimizer.weight_decay", o.weight_decay, lo=0)
    _expect(isinstance(o.nesterov, bool), f"optimizer.nesterov must be true or false, got {o.nesterov!r}")
    _validate_optimizer_options(cfg)
    for sec in ("schedule", "lr_schedule"):
        v = getattr(cfg, sec)
        _expect(v is None or (isinstance(v, dict) and isinstance(v.get("name"), str)),
                f"{sec} must be null or a mapping with a 'name', got {v!r}")
    if cfg.schedule is not None and "mu_max" in cfg.schedule:
        _number("schedule.mu_max", cfg.schedule["mu_max"], lo=0, hi=1, hi_open=True)
    _expect(cfg.loss in LOSSES, f"loss must be one of {list(LOSSES)}, got {cfg.loss!r}")
    _number("steps", cfg.steps, lo=0, integer=True)
    _number("batch_size", cfg.batch_size, lo=1, integer=True)
    _number("eval_every", cfg.eval_every, lo=1, integer=True)
    if cfg.checkpoint_every is not None:
        _number("checkpoint_every", cfg.checkpoint_every, lo=1, integer=True)
    _expect(cfg.stop_when is None or (isinstance(cfg.stop_when, str) and cfg.stop_when),
            f"stop_when must be null or the name of an evaluation metric (e.g. 'test_solved'), got {cfg.stop_when!r}")
    if cfg.clip_grad_norm is not None:
        _number("clip_grad_norm", cfg.clip_grad_norm, lo=0, lo_open=True)
        _expect(o.name != "hessian_free", "clip_grad_norm is for first-order optimizers, got it with optimizer.name "
                                          "'hessian_free' (HF's damping and line search bound its steps)")
    _number("monitor.every", cfg.monitor.every, lo=1, integer=True)
    _number("monitor.probe", cfg.monitor.probe, lo=0, integer=True)
    _expect(isinstance(cfg.monitor.quantities, list), f"monitor.quantities must be a list, got {cfg.monitor.quantities!r}")
    _number("seed", cfg.seed, lo=0, integer=True)
    _expect(cfg.dtype in DTYPES, f"dtype must be one of {list(DTYPES)}, got {cfg.dtype!r}")
    _expect(isinstance(cfg.device, str) and cfg.device.split(":")[0] in ("cpu", "cuda", "mps"),
            f"device must be cpu, cuda[:N] or mps, got {cfg.device!r}")
    _validate_names(cfg)


HF_LOOP_OPTIONS = {"curvature_fraction": 0.25}  # options the training loop reads, not HessianFree


def _validate_optimizer_options(cfg: Config) -> None:
    o = cfg.optimizer
    _expect(isinstance(o.options, dict), f"optimizer.options must be a mapping, got {o.options!r}")
    if o.name != "hessian_free":
        _expect(not o.options, f"optimizer.options is only for optimizer.name 'hessian_free', got {o.options!r} "
                               f"with {o.name!r}")
        return
    import inspect

    from ..optim import HessianFree

    own = {"lr": "optimizer.lr", "weight_decay": "optimizer.weight_decay"}
    for key, where in own.items():
        _expect(key not in o.options, f"optimizer.options.{key}: set {where} instead")
    sig = inspect.signature(HessianFree.__init__).parameters
    accepted = sorted({k for k in sig if k not in ("self", "params", *own)} | set(HF_LOOP_OPTIONS))
    unknown = sorted(set(o.options) - set(accepted))
    _expect(not unknown, f"unknown optimizer.options {unknown} for hessian_free; accepted: {accepted}")
    if "curvature_fraction" in o.options:
        _number("optimizer.options.curvature_fraction", o.options["curvature_fraction"], lo=0, hi=1, lo_open=True)
    kwargs = {k: v for k, v in o.options.items() if k not in HF_LOOP_OPTIONS}
    try:
        HessianFree.check_options(lr=o.lr, weight_decay=o.weight_decay, **kwargs)
    except ValueError as e:  # names the option: lr and weight_decay are optimizer.*, the rest optimizer.options.*
        raise ConfigError(f"optimizer (hessian_free): {e}") from None
    for sec in ("schedule", "lr_schedule"):
        _expect(getattr(cfg, sec) is None, f"{sec} is not used by hessian_free (it has no momentum or learning-rate "
                                           f"schedule); set it to null")


def _validate_names(cfg: Config) -> None:
    from . import components

    components.check_names(cfg)


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load a config from ``.yaml``/``.yml``, ``.json`` or ``.py`` (``get_config()`` or ``CONFIG``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            d = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
    elif suffix == ".json":
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}") from None
    elif suffix == ".py":
        spec = importlib.util.spec_from_file_location(f"_inertia_config_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        if hasattr(mod, "get_config"):
            d = mod.get_config()
        elif hasattr(mod, "CONFIG"):
            d = mod.CONFIG
        else:
            raise ConfigError(f"{path}: a Python config must define get_config() or CONFIG")
        if isinstance(d, Config):
            d = d.to_dict()
    else:
        raise ConfigError(f"config file {str(path)!r}: unknown extension {suffix!r}; accepted: .yaml, .yml, .json, .py")
    d = d or {}
    for k, v in (overrides or {}).items():
        set_dotted(d, k, v)
    return from_dict(d)


def parse_value(text: str) -> Any:
    """Parse a command-line value: JSON/YAML scalars and lists (``0.1``, ``true``, ``[1,2]``), else the string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
