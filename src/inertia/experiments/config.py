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

    def replace(self, **overrides: Any) -> Config:
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


def expect(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _number(
    path: str,
    v: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> Any:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
    expect(ok_type and not isinstance(v, bool), f"{path} must be {kind}, got {v!r}")
    expect(isinstance(v, int) or math.isfinite(v), f"{path} must be finite, got {v!r}")
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
    expect(isinstance(d, dict), f"config must be a mapping, got {type(d).__name__}")
    check_tree(d)
    d = copy.deepcopy(d)
    names = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(d) - names)
    expect(not unknown, f"unknown config field(s) {unknown}; accepted: {sorted(names)}")
    for sec, cls in _SECTIONS.items():
        if sec in d:
            sub = d[sec]
            expect(isinstance(sub, dict), f"{sec} must be a mapping, got {sub!r}")
            sub_names = {f.name for f in dataclasses.fields(cls)}
            bad = sorted(set(sub) - sub_names)
            expect(not bad, f"unknown field(s) {[f'{sec}.{b}' for b in bad]}; accepted: {sorted(sub_names)}")
            d[sec] = cls(**sub)
    cfg = Config(**d)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Structural and range checks, then registry names (imported lazily)."""
    check_path_component("experiment", cfg.experiment)
    for sec in ("data", "model"):
        v = getattr(cfg, sec)
        expect(
            isinstance(v, dict) and isinstance(v.get("name"), str), f"{sec} must be a mapping with a 'name', got {v!r}"
        )
    expect(
        isinstance(cfg.init, dict) and ("scheme" in cfg.init or "rules" in cfg.init),
        f"init must be a mapping with a 'scheme', got {cfg.init!r}",
    )
    expect(
        cfg.init.get("scheme") is None or isinstance(cfg.init["scheme"], str),
        f"init.scheme must be the name of an init scheme, got {cfg.init.get('scheme')!r}",
    )
    o = cfg.optimizer
    expect(
        isinstance(o.name, str) and o.name in OPTIMIZERS,
        f"optimizer.name must be one of {list(OPTIMIZERS)}, got {o.name!r}",
    )
    _number("optimizer.lr", o.lr, lo=0)
    _number("optimizer.momentum", o.momentum, lo=0, hi=1, hi_open=True)
    _number("optimizer.weight_decay", o.weight_decay, lo=0)
    expect(isinstance(o.nesterov, bool), f"optimizer.nesterov must be true or false, got {o.nesterov!r}")
    _validate_optimizer_options(cfg)
    for sec in ("schedule", "lr_schedule"):
        v = getattr(cfg, sec)
        expect(
            v is None or (isinstance(v, dict) and isinstance(v.get("name"), str)),
            f"{sec} must be null or a mapping with a 'name', got {v!r}",
        )
    if cfg.schedule is not None and "mu_max" in cfg.schedule:
        _number("schedule.mu_max", cfg.schedule["mu_max"], lo=0, hi=1, hi_open=True)
    expect(isinstance(cfg.loss, str) and cfg.loss in LOSSES, f"loss must be one of {list(LOSSES)}, got {cfg.loss!r}")
    _number("steps", cfg.steps, lo=0, integer=True)
    _number("batch_size", cfg.batch_size, lo=1, integer=True)
    _number("eval_every", cfg.eval_every, lo=1, integer=True)
    if cfg.checkpoint_every is not None:
        _number("checkpoint_every", cfg.checkpoint_every, lo=1, integer=True)
    expect(
        cfg.stop_when is None or (isinstance(cfg.stop_when, str) and bool(cfg.stop_when)),
        f"stop_when must be null or the name of an evaluation metric (e.g. 'test_solved'), got {cfg.stop_when!r}",
    )
    if cfg.clip_grad_norm is not None:
        _number("clip_grad_norm", cfg.clip_grad_norm, lo=0, lo_open=True)
        expect(
            o.name != "hessian_free",
            "clip_grad_norm is for first-order optimizers, got it with optimizer.name "
            "'hessian_free' (HF's damping and line search bound its steps)",
        )
    _number("monitor.every", cfg.monitor.every, lo=1, integer=True)
    _number("monitor.probe", cfg.monitor.probe, lo=0, integer=True)
    for key in ("quantities", "params"):
        v = getattr(cfg.monitor, key)
        expect(
            isinstance(v, list) and all(isinstance(q, str) for q in v),
            f"monitor.{key} must be a list of names, got {v!r}",
        )
    check_seed("seed", cfg.seed)
    expect(
        isinstance(cfg.dtype, str) and cfg.dtype in DTYPES, f"dtype must be one of {list(DTYPES)}, got {cfg.dtype!r}"
    )
    _device_kind(cfg.device)
    check_names(cfg)


MAX_SEED = 2**32 - 1  # the run derives further seeds from it (seed * 1_000_003 + epoch) that must fit in 64 bits


def check_seed(name: str, seed: Any) -> int:
    """A seed: an integer in [0, 2**32 - 1]."""
    return _number(name, seed, lo=0, hi=MAX_SEED, integer=True)


def check_path_component(name: str, value: Any) -> str:
    """``value`` can name one folder (:func:`inertia.experiments.store.check_name`: run ids, sweep
    names and experiments become folder names under the runs folder, and a name like '../x' would
    write outside it); ConfigError naming ``name`` otherwise."""
    from .store import check_name

    try:
        return check_name(value, name)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _device_kind(device: Any) -> str:
    kind, sep, index = device.partition(":") if isinstance(device, str) else ("", "", "")
    expect(
        kind in ("cpu", "cuda", "mps") and (not sep or index.isdigit()),
        f"device must be cpu, cuda, cuda:N or mps, got {device!r}",
    )
    return kind


def check_device(device: Any) -> None:
    """``device`` is a torch device this machine has (cpu; cuda[:N] with that many GPUs; mps)."""
    import torch

    kind = _device_kind(device)
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        expect(
            index < count,
            f"device {device!r}: this machine has {count} CUDA device(s)"
            + (" (torch.cuda.is_available() is False); use device: cpu" if not count else ""),
        )
    elif kind == "mps":
        expect(
            torch.backends.mps.is_available(),
            f"device {device!r}: MPS is not available on this machine "
            f"(torch.backends.mps.is_available() is False); use device: cpu",
        )


def _validate_optimizer_options(cfg: Config) -> None:
    o = cfg.optimizer
    expect(isinstance(o.options, dict), f"optimizer.options must be a mapping, got {o.options!r}")
    if o.name != "hessian_free":
        expect(
            not o.options,
            f"optimizer.options is only for optimizer.name 'hessian_free', got {o.options!r} with {o.name!r}",
        )
        return
    from ..optim.hessian_free import DEFAULTS, LOOP_DEFAULTS, HessianFree

    own = {"lr": "optimizer.lr", "weight_decay": "optimizer.weight_decay"}
    for key, where in own.items():
        expect(key not in o.options, f"optimizer.options.{key}: set {where} instead")
    accepted = sorted((set(DEFAULTS) - set(own)) | set(LOOP_DEFAULTS))
    unknown = sorted(set(o.options) - set(accepted))
    expect(not unknown, f"unknown optimizer.options {unknown} for hessian_free; accepted: {accepted}")
    if "curvature_fraction" in o.options:
        _number("optimizer.options.curvature_fraction", o.options["curvature_fraction"], lo=0, hi=1, lo_open=True)
    kwargs = {k: v for k, v in o.options.items() if k not in LOOP_DEFAULTS}
    try:
        HessianFree.check_options(lr=o.lr, weight_decay=o.weight_decay, **kwargs)
    except ValueError as e:  # names the option: lr and weight_decay are optimizer.*, the rest optimizer.options.*
        raise ConfigError(f"optimizer (hessian_free): {e}") from None
    for sec in ("schedule", "lr_schedule"):
        expect(
            getattr(cfg, sec) is None,
            f"{sec} is not used by hessian_free (it has no momentum or learning-rate schedule); set it to null",
        )


INIT_KEYS = ("scheme", "bias", "rules")  # init entries that are not the scheme's own keywords


def split_name(section: dict) -> tuple[str, dict]:
    """``{"name": n, **kwargs}`` as ``(n, kwargs)``."""
    kw = dict(section)
    return kw.pop("name"), kw


def data_arguments(cfg: Config) -> tuple[Any, dict]:
    """How ``cfg.data`` is built: ``(data set, keywords)`` for :meth:`inertia.data.DataSet.build`.
    The seed is ``data.seed`` or else the run's; a set read from files takes none (a ``data.seed``
    given to it is refused by its loader)."""
    from .. import data as D

    name, kw = split_name(cfg.data)
    dataset = D.get(name)
    if dataset.seeded:
        kw.setdefault("seed", cfg.seed)
    return dataset, kw


def check_names(cfg: Config) -> None:
    """Every registry name in the config exists (ConfigError listing the known ones otherwise), and
    the data set, init scheme, model and schedules take the keywords given to them. Cheap: nothing
    is built."""
    _check_registry_names(cfg)
    dataset, kw = data_arguments(cfg)
    train_kw, _ = dataset.calls(**kw)
    check_keywords(f"data {dataset.name!r}", dataset.generate, train_kw, extra=dataset.builder_keywords)
    _check_init_keywords(cfg)
    from .. import models as M
    from ..optim import schedules

    name, kw = split_name(cfg.model)
    check_keywords(f"model {name!r}", M.get(name), kw)
    for sec in ("schedule", "lr_schedule"):
        v = getattr(cfg, sec)
        if v is not None:
            name, kw = split_name(v)
            check_keywords(f"{sec} {name!r}", schedules.get(name), kw)


def _check_registry_names(cfg: Config) -> None:
    from .. import data as D
    from .. import init as I
    from .. import models as M
    from ..diagnostics import QUANTITIES
    from ..optim import schedules

    checks: list[tuple[str, Any, Any]] = [
        ("data.name", D.REGISTRY, cfg.data["name"]),
        ("model.name", M.REGISTRY, cfg.model["name"]),
    ]
    if cfg.init.get("scheme") not in (None, "torch_default"):
        checks.append(("init.scheme", I.REGISTRY, cfg.init["scheme"]))
    for sec in ("schedule", "lr_schedule"):
        v = getattr(cfg, sec)
        if v is not None:
            checks.append((f"{sec}.name", schedules.REGISTRY, v["name"]))
    checks += [("monitor.quantities", QUANTITIES, q) for q in cfg.monitor.quantities]
    for where, registry, name in checks:
        if not isinstance(name, str) or name not in registry:
            raise ConfigError(f"{where}: unknown name {name!r}; accepted: {', '.join(registry.available())}")


def _check_init_keywords(cfg: Config) -> None:
    from .. import init as I

    scheme = cfg.init.get("scheme")
    if scheme in (None, "torch_default"):
        return
    fn = I.get(scheme)
    supplied = (
        ("model", "loss_fn", "generator") if getattr(fn, "model_level", False) else ("tensor", "generator", "fans")
    )
    check_keywords(f"init {scheme!r}", fn, {k: v for k, v in cfg.init.items() if k not in INIT_KEYS}, supplied)


def check_keywords(where: str, fn: Any, kwargs: dict, supplied: tuple = (), extra: tuple = ()) -> None:
    """``fn`` can be called with ``kwargs`` plus the arguments named in ``supplied`` (which the
    run passes itself, so the config may not): no unknown keyword, none required missing.
    ``extra``: keywords the caller takes besides ``fn``'s (listed as accepted)."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to check (a builtin): the call will tell
        return
    accepted = [
        p.name
        for p in sig.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in supplied
    ] + list(extra)
    taken = sorted(set(kwargs) & set(supplied))
    expect(not taken, f"{where}: {taken} are set by the run, not the config; accepted: {', '.join(accepted)}")
    try:
        sig.bind(**dict.fromkeys(p for p in supplied if p in sig.parameters), **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}; accepted: {', '.join(accepted)}") from None


def load(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load a config from ``.yaml``/``.yml``, ``.json`` or ``.py`` (``get_config()`` or ``CONFIG``).

    A config file must set at least ``data`` and ``model`` (after ``overrides``): a file that sets
    neither would silently train the defaults. YAML is read with :func:`yaml_load` (numbers such
    as ``1e-3`` are numbers; alias expansion is bounded)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} " + ("is not a file" if path.exists() else "does not exist"))
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        d = yaml_load(_read_text(path), str(path))
    elif suffix == ".json":
        try:
            d = json.loads(_read_text(path))
        except RecursionError:
            raise ConfigError(f"{path}: nested too deeply") from None
        except ValueError as e:  # JSONDecodeError, and integers too long to convert
            raise ConfigError(f"{path}: not valid JSON: {e}") from None
    elif suffix == ".py":
        d = _python_config(path)
    else:
        raise ConfigError(f"config file {str(path)!r}: unknown extension {suffix!r}; accepted: .yaml, .yml, .json, .py")
    d = {} if d is None else d
    expect(isinstance(d, dict), f"{path}: a config must be a mapping of fields, got {type(d).__name__}")
    for k, v in (overrides or {}).items():
        set_dotted(d, k, v)
    check_tree(d, str(path))
    missing = [k for k in ("data", "model") if k not in d]
    expect(
        not missing,
        f"{path}: a config must set data and model (e.g. data: {{name: curves}}, "
        f"model: {{name: deep_autoencoder, sizes: [784, 100, 20]}}); missing: {', '.join(missing)}",
    )
    return from_dict(d)


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def _python_config(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"_inertia_config_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be loaded as a Python module")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        if hasattr(mod, "get_config"):
            d = mod.get_config()
        elif hasattr(mod, "CONFIG"):
            d = mod.CONFIG
        else:
            raise ConfigError(f"{path}: a Python config must define get_config() or CONFIG")
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's code: report it in one line
        raise ConfigError(f"{path}: raised {type(e).__name__}: {e}") from None
    return d.to_dict() if isinstance(d, Config) else d


# Bounds on what a config may hold once YAML aliases are expanded: a few hundred bytes of nested
# aliases ("billion laughs") expand to billions of values, and every later step (validation
# messages, to_dict, the config hash) would walk them all.
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_DEPTH = 32
INT64_MAX = 2**63 - 1


def check_tree(d: Any, where: str = "config") -> None:
    """Refuse configs that cannot be a config: more than :data:`MAX_CONFIG_VALUES` values (aliases
    counted each time they are used) or deeper than :data:`MAX_CONFIG_DEPTH`, mapping keys that
    are not strings, integers outside 64 bits. The walk stops at the bound, so it is cheap even
    on an alias bomb."""
    stack = [(d, 0, "")]
    count = 0
    while stack:
        v, depth, at = stack.pop()
        count += 1
        expect(
            count <= MAX_CONFIG_VALUES,
            f"{where}: more than {MAX_CONFIG_VALUES} values (after expanding YAML aliases); a config is a few dozen",
        )
        expect(depth <= MAX_CONFIG_DEPTH, f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels at {at or 'top'}")
        if isinstance(v, dict):
            for k, sub in v.items():
                expect(isinstance(k, str), f"{where}: keys must be strings, got {k!r} in {at or 'the top level'}")
                stack.append((sub, depth + 1, f"{at}.{k}" if at else k))
        elif isinstance(v, (list, tuple)):
            stack.extend((sub, depth + 1, f"{at}[{i}]") for i, sub in enumerate(v))
        elif isinstance(v, int) and not isinstance(v, bool):
            expect(
                -INT64_MAX - 1 <= v <= INT64_MAX,
                f"{at or where} must fit in 64 bits, got an integer of {len(str(abs(v)))} digits",
            )


def _yaml_loader():
    """``yaml.SafeLoader`` that also reads ``1e-3``, ``1E5`` and ``2.5e3`` as floats (YAML 1.1, which
    PyYAML follows, wants a dot and a signed exponent: ``1.0e-3``)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    return Loader


def _parse_yaml(text: str) -> Any:
    import yaml

    return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass


def yaml_load(text: str, where: str = "YAML") -> Any:
    """Parse YAML text safely (no Python objects), with numbers in scientific notation read as
    numbers and the size after alias expansion bounded by :func:`check_tree`."""
    import yaml

    try:
        value = _parse_yaml(text)
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    except (yaml.YAMLError, ValueError) as e:  # ValueError: an integer too long to convert
        raise ConfigError(f"{where}: not valid YAML: {' '.join(str(e).split())}") from None
    check_tree(value, where)
    return value


def parse_value(text: str) -> Any:
    """Parse a command-line value: YAML scalars and lists (``0.1``, ``1e-3``, ``true``, ``[1,2]``),
    else the string itself. Its size is bounded when it becomes part of a config (:func:`check_tree`)."""
    import yaml

    try:
        return _parse_yaml(text)
    except (yaml.YAMLError, ValueError, RecursionError):
        return text
