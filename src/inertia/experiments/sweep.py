"""Sweeps: every combination of a grid of config overrides times seeds, each trial a
:func:`~inertia.experiments.train.train` run in its own folder.

Layout: ``<out>/<experiment>/<sweep name>/sweep.json`` (the base config, grid and seeds) and
``trials/<trial id>/`` (a run folder). A trial id is derived from its overrides, so re-running or
resuming a sweep finds the same folders. With ``resume=True`` trials whose ``summary.json`` says
``completed`` or ``diverged`` are kept as they are; unfinished ones continue from their last
checkpoint (or start over if they had none). Every file is written atomically, so a sweep killed
at any instant (even ``kill -9``) resumes without corrupt files.

Resume checks before it runs anything: the base config, grid and seeds must equal those in
``sweep.json`` (else a :class:`ConfigError` names the differing keys); a trial folder with a file
that does not parse (``summary.json``, ``config.json``, a line of ``metrics.jsonl``) is moved to
``damaged/`` and the trial runs again; leftover ``.*.tmp`` files of a killed write are removed.
One process at a time holds a sweep folder (a lock); a second one gets a ConfigError.

Backends: ``"local"`` (a process pool, one worker per core, each with one torch thread, each
exiting when the sweep's process dies) and ``"ray"`` (the same trials as Ray tasks on a local or
remote Ray cluster; ``pip install inertia[ray]``, imported only when used) and ``"stacked"`` (the
local pool, with the trials that share data, model and batch size trained as one stack:
:mod:`inertia.experiments.stacked`; the same folders and results).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import math
import os
import shutil
import statistics
import sys
import warnings
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, from_dict, parse_value, set_dotted
from .store import (
    FolderInUseError,
    RunDir,
    atomic_write_json,
    check_resume_config,
    lock_folder,
    read_json,
    read_jsonl,
    remove_temporaries,
    run_path,
)


def parse_grid(items: Sequence[str]) -> dict:
    """``["optimizer.lr=0.05,0.01", "schedule.mu_max=0,0.9"]`` -> {key: [values]}.

    A key given twice, or a value listed twice (also as equal numbers: ``0.1,0.10``), is refused."""
    grid = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"grid entry {item!r} must look like key=v1,v2,... (e.g. optimizer.lr=0.05,0.01)")
        key, values = item.split("=", 1)
        key = key.strip()
        texts = [v.strip() for v in values.split(",") if v.strip()]
        if not texts:
            raise ConfigError(f"grid entry {item!r} has no values")
        if key in grid:
            raise ConfigError(f"grid key {key!r} is given twice; list all its values in one entry ({key}=v1,v2,...)")
        vals = [parse_value(t) for t in texts]
        for i, j in _equal_pairs(vals):
            raise ConfigError(
                f"grid entry {item!r} lists one value twice: {texts[j]!r} and {texts[i]!r} are both "
                f"{vals[i]!r}; each value must appear once"
            )
        grid[key] = vals
    return grid


def _equal_pairs(values: list):
    """Index pairs (i, j), j < i, of equal values (``0.1 == 0.10``, ``1 == 1.0``)."""
    for i, v in enumerate(values):
        for j in range(i):
            if values[j] == v:
                yield i, j


def trial_id(overrides: dict) -> str:
    text = ",".join(f"{k}={overrides[k]!r}" for k in sorted(overrides))
    short = "_".join(f"{k.split('.')[-1]}{overrides[k]}" for k in sorted(overrides))[:60]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in short)
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _check_grid(grid: dict, seeds: int) -> None:
    if not isinstance(grid, dict):
        raise ConfigError(f"grid must be a mapping of key -> list of values, got {grid!r}")
    for key, vals in grid.items():
        if not isinstance(vals, (list, tuple)) or not vals:
            raise ConfigError(f"grid values for {key!r} must be a non-empty list, got {vals!r}")
        for i, _j in _equal_pairs(list(vals)):
            raise ConfigError(
                f"grid key {key!r} lists the value {vals[i]!r} twice ({list(vals)!r}); each value must appear once"
            )
    if "seed" in grid and seeds != 1:
        raise ConfigError(
            f"seeds are given twice: a 'seed' grid key {list(grid['seed'])!r} and seeds={seeds}; "
            f"give either the exact seeds (grid key 'seed') or how many (seeds=N, from the base seed)"
        )


def expand(
    base: Config, grid: dict, seeds: int = 1, points: list[dict] | None = None
) -> list[tuple[str, dict, Config]]:
    """Every (trial id, overrides, config) of the grid times ``points`` (a random search's sampled
    points, :func:`~inertia.experiments.search.sample_points`; keys disjoint from the grid's) times
    seeds 0..seeds-1 (offset by the base seed), or times the grid's own ``seed`` values when it has
    that key. All configs are validated here, before any trial starts."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"seeds must be a positive integer, got {seeds!r}")
    _check_grid(grid, seeds)
    for key in sorted({k for p in points or [] for k in p} & (set(grid) | {"seed"})):
        raise ConfigError(f"key {key!r} is both on the grid and in the search space; give it in one of them")
    seed_values = list(grid["seed"]) if "seed" in grid else [base.seed + s for s in range(seeds)]
    keys = [k for k in grid if k != "seed"]
    trials: list = []
    ids: dict = {}
    for combo, point in itertools.product(itertools.product(*(grid[k] for k in keys)), points or [{}]):
        for seed in seed_values:
            over = {**dict(zip(keys, combo, strict=False)), **point, "seed": seed}
            d = base.to_dict()
            for k, v in over.items():
                set_dotted(d, k, v)
            try:
                cfg = from_dict(d)
            except ConfigError as e:
                raise ConfigError(f"grid point {over}: {e}") from None
            tid = trial_id(over)
            if tid in ids:  # equal reprs of unequal values: two trials must never share a folder
                raise ConfigError(
                    f"grid points {ids[tid]} and {over} would share the trial folder {tid}; make their values distinct"
                )
            ids[tid] = over
            trials.append((tid, over, cfg))
    return trials


PARENT_POLL_S = 0.5  # how often a pool worker checks that the sweep's process is still alive


def _exit_with_parent(parent_pid: int) -> None:
    """Pool-worker initializer: the worker exits when the sweep's process dies, even by ``kill -9``
    (which runs no cleanup, so nothing else would stop an orphaned worker). On Linux the kernel
    sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread polls ``os.getppid()``,
    which changes when the parent dies and the worker is re-parented. Trial files are written
    atomically, so a worker killed mid-trial leaves a resumable folder."""
    import signal
    import threading
    import time

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog thread below still covers it
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="inertia-exit-with-parent", daemon=True).start()


def _run_trial(args, progress: Callable[[int, int, dict], None] | None = None) -> dict:
    cfg_dict, run_dir = args
    import torch

    torch.set_num_threads(1)
    from .train import train

    try:
        res = train(from_dict(cfg_dict), run_dir, resume=True, progress=progress)
        return {"status": res.status, "metrics": dict(res), "message": res.message}
    except Exception as e:  # noqa: BLE001 - a failed trial is recorded; the sweep goes on
        return {"status": "failed", "metrics": {}, "message": f"{type(e).__name__}: {e}"}


@dataclass
class SweepResult:
    directory: Path
    trials: list = field(default_factory=list)  # dicts: id, overrides, status, metrics, message

    @property
    def failed(self) -> list:
        """The trials that raised (status ``failed``): they have no result and are never ranked."""
        return [t for t in self.trials if t["status"] == "failed"]

    def failure_message(self) -> str:
        """How many trials failed and why (each distinct reason once, with its trials' ids)."""
        reasons: dict = {}
        for t in self.failed:
            reasons.setdefault(t.get("message") or "no message", []).append(t["id"])
        why = "; ".join(f"{msg} ({', '.join(ids)})" for msg, ids in reasons.items())
        return f"{len(self.failed)} of {len(self.trials)} trials failed in {self.directory}: {why}"

    def table(self, metric: str = "train_error", lr_key: str = "optimizer.lr") -> list[dict]:
        """Sutskever et al.'s table form: for each setting of the other grid keys, the best lr
        (lowest mean final ``metric`` over seeds, diverged trials counting as infinite), with the
        mean and standard deviation over seeds. Failed trials, and trials a scheduler stopped
        early (``stopped``, a column only when there are any), are left out of the ranking and
        counted; a setting where no lr has a finite mean names no best lr (``None``)."""
        groups: dict = {}
        failed: dict = {}
        stopped: dict = {}
        for t in self.trials:
            over = {k: v for k, v in t["overrides"].items() if k != "seed"}
            setting = tuple(sorted((k, repr(v)) for k, v in over.items() if k != lr_key))
            by_lr = groups.setdefault(setting, {})
            if t["status"] in ("failed", "stopped"):
                counts = failed if t["status"] == "failed" else stopped
                counts[setting] = counts.get(setting, 0) + 1
                continue
            value = t["metrics"].get(metric, t["metrics"].get("train_loss")) if t["status"] == "completed" else math.inf
            by_lr.setdefault(over.get(lr_key), []).append(float(value) if value is not None else math.inf)
        rows = []
        for setting, by_lr in groups.items():
            means = {lr: statistics.fmean(vals) for lr, vals in by_lr.items()}
            ranked = {lr: m for lr, m in means.items() if math.isfinite(m)}
            best_lr = min(ranked, key=lambda lr: ranked[lr]) if ranked else None
            vals = by_lr[best_lr] if ranked else []
            rows.append(
                {
                    **{k: parse_value(v) for k, v in setting},
                    "best_lr": best_lr,
                    "mean": ranked[best_lr] if ranked else None,
                    "std": (statistics.pstdev(vals) if len(vals) > 1 else 0.0) if ranked else None,
                    "seeds": len(vals),
                    "diverged": sum(1 for v in itertools.chain(*by_lr.values()) if not math.isfinite(v)),
                    "failed": failed.get(setting, 0),
                    **({"stopped": stopped.get(setting, 0)} if stopped else {}),
                }
            )
        return rows


BACKENDS = ("local", "ray", "stacked")
FINISHED = ("completed", "diverged", "stopped")  # statuses a resumed sweep keeps as they are
SCHEDULERS = ("asha", "median")
RESOURCE_NAMES = ("cpu", "gpu", "memory")


@dataclass(frozen=True)
class TuneOptions:
    """What the ``ray`` backend asks of Ray Tune beyond running the trials.

    Attributes:
        scheduler: ``"asha"`` (asynchronous successive halving) or ``"median"`` (the median
            stopping rule) stops trials whose ``metric`` is poor at an evaluation; every
            evaluation is reported to Tune. A stopped trial has status ``stopped``, its metrics
            those of its last evaluation; it is never ranked and a resumed sweep keeps it.
            ``None``: every trial runs to its end.
        metric, mode: what the scheduler compares (``"min"`` or ``"max"``); a non-finite value
            (a diverged trial) counts as the worst.
        grace_period: updates a trial runs before it can be stopped (default: two evaluations).
        address: an existing Ray cluster (``HOST:PORT``); ``None`` starts a local one.
        resources: per trial, e.g. ``{"cpu": 2, "gpu": 0.5}`` (default one CPU).
    """

    scheduler: str | None = None
    metric: str = "train_error"
    mode: str = "min"
    grace_period: int | None = None
    address: str | None = None
    resources: dict | None = None

    def __post_init__(self) -> None:
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler must be one of {', '.join(SCHEDULERS)} (or none), got {self.scheduler!r}")
        if self.mode not in ("min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max', got {self.mode!r}")
        if self.grace_period is not None and (
            not isinstance(self.grace_period, int) or isinstance(self.grace_period, bool) or self.grace_period < 1
        ):
            raise ConfigError(f"grace_period must be a positive number of updates, got {self.grace_period!r}")
        for name, amount in (self.resources or {}).items():
            ok = isinstance(amount, (int, float)) and not isinstance(amount, bool) and math.isfinite(amount)
            if not isinstance(name, str) or not name or not ok or amount < 0:
                raise ConfigError(
                    f"resources per trial must map names ({', '.join(RESOURCE_NAMES)} or a custom resource) to "
                    f"non-negative numbers, got {name!r}: {amount!r}"
                )
        if self.resources is not None and not any(self.resources.values()):
            raise ConfigError(f"resources per trial ask for nothing ({self.resources!r}); give at least cpu=1")


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """A ConfigError, before any work, unless something answers at ``address`` (``HOST:PORT`` or
    ``ray://HOST:PORT``; ``auto`` is left to Ray): Ray itself retries an unreachable address for
    minutes."""
    import socket

    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"a Ray cluster address must be HOST:PORT (e.g. 127.0.0.1:6379) or auto, got {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise ConfigError(f"cannot connect to the Ray cluster at {address!r}: {e.strerror or e}") from None


_DEFAULT_BACKEND: ContextVar[tuple[str, TuneOptions | None]] = ContextVar(
    "inertia_sweep_backend", default=("local", None)
)


@contextlib.contextmanager
def default_backend(backend: str, tune: TuneOptions | None = None):
    """Inside the block, :func:`run_sweep` and :func:`run_configs` called without a ``backend`` use
    this one (and ``tune``): how ``inertia reproduce --backend ray --address HOST:PORT`` spreads
    every pool of a paper over a cluster without an option threaded through each paper."""
    _resolve_backend(backend, tune)  # checked (the cluster's address too) before the block's work
    token = _DEFAULT_BACKEND.set((backend, tune))
    try:
        yield
    finally:
        _DEFAULT_BACKEND.reset(token)


def _resolve_backend(backend: str | None, tune: TuneOptions | None) -> tuple[str, TuneOptions | None]:
    """The backend and Tune options to use, checked; those of :func:`default_backend` (checked when
    it was entered) when ``backend`` is None."""
    if backend is None:
        backend, default_tune = _DEFAULT_BACKEND.get()
        if tune is None:
            return backend, default_tune
    _check_backend(backend)
    if tune is not None and backend != "ray":
        raise ConfigError(f"a scheduler, cluster address or resources per trial need backend 'ray', got {backend!r}")
    if tune is not None and tune.address is not None:
        check_ray_address(tune.address)
    return backend, tune


def parse_resources(text: str) -> dict:
    """``"cpu=2,gpu=0.5"`` -> {"cpu": 2.0, "gpu": 0.5} (checked by :class:`TuneOptions`)."""
    out: dict = {}
    for item in (t.strip() for t in text.split(",")):
        name, eq, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = None
        if not eq or not name.strip() or amount is None:
            raise ConfigError(f"resources {text!r}: each entry must be NAME=NUMBER, e.g. cpu=2,gpu=0.5; got {item!r}")
        if name.strip() in out:
            raise ConfigError(f"resources {text!r} give {name.strip()!r} twice")
        out[name.strip()] = amount
    TuneOptions(resources=out)
    return out


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(repr(b) for b in BACKENDS)}, got {backend!r}")


def run_sweep(
    base: Config,
    grid: dict,
    seeds: int = 1,
    out: str | Path = "runs",
    name: str | None = None,
    backend: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    space: dict | None = None,
    samples: int | None = None,
    search_seed: int = 0,
    tune: TuneOptions | None = None,
) -> SweepResult:
    """Run every trial of the grid (see the module docstring); return the collected results.

    With ``space`` (``{key: Distribution}``, :func:`~inertia.experiments.search.parse_space`) the
    sweep is a random search: ``samples`` points drawn with ``search_seed``, times the grid (which
    may be empty) and the seeds. ``tune`` (``backend="ray"`` only) adds a Tune scheduler, a
    cluster address and resources per trial (:class:`TuneOptions`).

    Failed trials (an exception in ``train``) are recorded and the sweep goes on; check
    :attr:`SweepResult.failed` (the command line exits 1 when there are any)."""
    backend, tune = _resolve_backend(backend, tune)
    meta: dict = {"base": base.to_dict(), "grid": grid, "seeds": seeds}
    points = None
    if space or samples is not None:
        from .search import sample_points

        points = sample_points(space or {}, samples if samples is not None else 0, search_seed)
        meta.update(space={k: repr(v) for k, v in (space or {}).items()}, samples=samples, search_seed=search_seed)
    trials = expand(base, grid, seeds, points)
    key = repr(sorted(grid.items()))
    if points:
        key += repr(sorted(meta["space"].items())) + f"{samples},{search_seed}"
    name = name or "sweep-" + hashlib.sha256(key.encode()).hexdigest()[:8]
    root = run_path(out, base.experiment, name, what=("experiment", "sweep name"))
    runner = functools.partial(_run_ray, tune=tune) if tune is not None else None
    return _execute(root, meta, trials, backend, workers, resume, progress, same_meta=True, runner=runner)


def run_configs(
    configs: dict,
    out: str | Path = "runs",
    name: str = "configs",
    backend: str | None = None,
    workers: int | None = None,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    tune: TuneOptions | None = None,
) -> SweepResult:
    """Run explicitly listed configs (``{label: Config or dict}``) as one pool of trials.

    The same machinery as :func:`run_sweep` (folders, resume, backends) for trials that do not
    form a grid: different data, models or optimizers side by side. The folder is
    ``<out>/<name>``; each trial's overrides are ``{"label": label}`` and its id is derived from
    the label and the config, so a changed config never reuses an old folder (and resuming with
    changed configs is allowed: ``sweep.json`` then lists the new ones). ``backend`` defaults to
    ``"local"`` or the one :func:`default_backend` made current; ``tune`` as for :func:`run_sweep`.
    """
    backend, tune = _resolve_backend(backend, tune)
    if not isinstance(configs, dict) or not configs:
        raise ConfigError(f"configs must be a non-empty mapping of label -> config, got {configs!r}")
    trials = []
    for label, cfg in configs.items():
        try:
            cfg = cfg if isinstance(cfg, Config) else from_dict(cfg)
        except ConfigError as e:
            raise ConfigError(f"config {label!r}: {e}") from None
        tid = trial_id({"label": label, "config": hashlib.sha256(repr(cfg.to_dict()).encode()).hexdigest()[:8]})
        trials.append((tid, {"label": label}, cfg))
    meta = {"configs": {label: (c if isinstance(c, dict) else c.to_dict()) for label, c in configs.items()}}
    runner = functools.partial(_run_ray, tune=tune) if tune is not None else None
    return _execute(
        run_path(out, name, what=("name",)), meta, trials, backend, workers, resume, progress, False, runner
    )


def _remove_tmp_files(root: Path) -> None:
    """Delete the ``.*.tmp`` files of atomic writes cut off by a kill, in the sweep folder and
    its trial folders (only called while holding the sweep's lock)."""
    for folder in [root, *sorted((root / "trials").glob("*"))]:
        if folder.is_dir():
            remove_temporaries(folder)


def _move_aside(root: Path, path: Path, why: str) -> Path:
    """Move a damaged file or trial folder to ``<root>/damaged/`` (never delete what a run wrote)."""
    dest_dir = root / "damaged"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / path.name
    n = 1
    while dest.exists():
        dest = dest_dir / f"{path.name}.{n}"
        n += 1
    shutil.move(str(path), str(dest))
    warnings.warn(f"{why}; moved it to {dest}", stacklevel=3)
    return dest


def _read_trial(rd: RunDir) -> tuple[dict | None, dict | None, str | None]:
    """(summary, stored config, why the folder is damaged or None) of a trial folder."""
    read: dict[str, Any] = {}
    for path, reader in ((rd.summary, read_json), (rd.config, read_json), (rd.metrics, read_jsonl)):
        try:
            read[path.name] = reader(path) if path.exists() else None
        except ValueError as e:
            return None, None, f"{e}; trial {rd.root.name} runs again"
    return read["summary.json"], read["config.json"], None


def _plan_resume(root: Path, meta: dict, trials: list, same_meta: bool) -> dict:
    """On resume, check first, change nothing until every check passed: the sweep must be the
    one ``sweep.json`` describes and every trial's ``config.json`` its trial's config (else a
    ConfigError names the differing keys). Then tidy up: an unreadable ``sweep.json`` or trial
    folder is moved to ``damaged/`` (those trials run again from scratch) and leftover ``.tmp``
    files are removed. Returns the finished trials' results by id."""
    meta_path, meta_damage = root / "sweep.json", None
    if same_meta and meta_path.exists():
        try:
            stored = read_json(meta_path)
        except ValueError as e:
            meta_damage = f"{e}; it is rewritten"
        else:
            _refuse_changes(stored, meta, meta_path, "the stored base config, grid and seeds")
    done, damaged = {}, []
    for tid, _, cfg in trials:
        rd = RunDir(root / "trials" / tid)
        if not rd.root.exists():
            continue
        summary, stored_cfg, damage = _read_trial(rd)
        if damage:
            damaged.append((rd.root, damage))
            continue
        if stored_cfg is not None:
            _refuse_changes(stored_cfg, cfg.to_dict(), rd.config, "the stored config")
        if isinstance(summary, dict) and summary.get("status") in FINISHED:
            done[tid] = {
                "status": summary["status"],
                "metrics": summary.get("final", {}),
                "message": summary.get("message", ""),
            }
    if meta_damage:
        _move_aside(root, meta_path, meta_damage)
    for folder, why in damaged:
        _move_aside(root, folder, why)
    _remove_tmp_files(root)
    return done


def _refuse_changes(stored: dict, new: dict, where: Path, what: str) -> None:
    try:
        check_resume_config(stored, new, str(where))
    except ValueError as e:
        raise ConfigError(f"{e}; resume with {what} or choose another --name") from None


@contextlib.contextmanager
def _hold(root: Path):
    """The sweep folder's lock (one process at a time); a ConfigError if another process has it."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock_folder(root))
        except FolderInUseError as e:
            raise ConfigError(str(e)) from None
        yield root


def _execute(
    root: Path,
    meta: dict,
    trials: list,
    backend: str,
    workers: int | None,
    resume: bool,
    progress: Callable[[int, int], None] | None,
    same_meta: bool,
    runner: Callable | None = None,
) -> SweepResult:
    if (root / "sweep.json").exists() and not resume:
        raise ConfigError(f"{root} already holds a sweep; pass --resume to continue it or choose another --name")
    root.mkdir(parents=True, exist_ok=True)
    with _hold(root):
        done = _plan_resume(root, meta, trials, same_meta) if resume else {}
        todo = [(tid, cfg.to_dict(), str(root / "trials" / tid)) for tid, _, cfg in trials if tid not in done]
        atomic_write_json(root / "sweep.json", meta)
        if progress is None:  # the caller's reporter, if it made one current (inertia.progress)
            from .. import progress as _progress

            reporter = _progress.current()
            if reporter is not None:
                progress = lambda done, total: reporter.update(done, total, stage=root.name)  # noqa: E731
        _run_todo(todo, done, len(trials), backend, workers, progress, runner)
        result = SweepResult(root, [{"id": tid, "overrides": over, **done[tid]} for tid, over, _ in trials])
        atomic_write_json(root / "results.json", {"trials": result.trials, "table": result.table()})
    return result


def _run_todo(
    todo: list,
    done: dict,
    total: int,
    backend: str,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
    runner: Callable | None = None,
) -> None:
    """Run the unfinished trials on the backend (or ``runner``), filling ``done`` (trial id -> result)."""
    if progress:
        progress(len(done), total)
    if not todo:
        return
    runner = runner or {"local": _run_local, "ray": _run_ray, "stacked": _run_stacked}[backend]
    results = runner(todo, workers)
    for tid, res in results:
        done[tid] = res
        if progress:
            progress(len(done), total)


def _in_pool(jobs: list, workers: int | None):
    """Run ``jobs`` (``(function, args, key)``) in a spawn process pool of ``workers`` processes
    (default one per core, at most one per job) whose workers exit with the sweep's process;
    yield (key, result) as they finish."""
    import concurrent.futures as cf
    import multiprocessing as mp

    n = min(workers or os.cpu_count() or 1, len(jobs))
    with cf.ProcessPoolExecutor(
        max_workers=n, mp_context=mp.get_context("spawn"), initializer=_exit_with_parent, initargs=(os.getpid(),)
    ) as pool:
        futs = {pool.submit(fn, args): key for fn, args, key in jobs}
        for fut in cf.as_completed(futs):
            yield futs[fut], fut.result()


def _run_local(todo, workers):
    """Run the trials in a process pool and yield (trial id, result) as they finish."""
    yield from _in_pool([(_run_trial, (c, d), tid) for tid, c, d in todo], workers)


def _run_stack_of_trials(args) -> list:
    """Pool job of the ``stacked`` backend: trials that share a stack key, trained as one stack
    (:func:`~inertia.experiments.stacked.train_stacked`); one result per trial, as ``_run_trial``'s."""
    cfg_dicts, run_dirs = args
    if len(cfg_dicts) == 1:  # alone (it cannot be stacked, or nothing shares its stack): train()
        return [_run_trial((cfg_dicts[0], run_dirs[0]))]
    import torch

    torch.set_num_threads(1)
    from .stacked import train_stacked

    cfgs = [from_dict(c) for c in cfg_dicts]
    try:
        results = train_stacked(cfgs, run_dirs, resume=True)
        return [{"status": r.status, "metrics": dict(r), "message": r.message} for r in results]
    except Exception as e:  # noqa: BLE001 - a failed stack is recorded for each of its trials
        return [{"status": "failed", "metrics": {}, "message": f"{type(e).__name__}: {e}"} for _ in cfgs]


def _run_stacked(todo, workers):
    """The ``stacked`` backend: the trials that can share a stack (same data, model, loss, batch
    size, device, dtype; first-order, no Monitor) are trained as one, the others alone, in a pool
    of ``workers`` processes (default: one per core); yields (trial id, result)."""
    from .stacked import group_stackable

    by_id = {tid: (c, d) for tid, c, d in todo}
    groups = group_stackable({tid: from_dict(c) for tid, c, _ in todo})
    jobs = [(_run_stack_of_trials, ([by_id[t][0] for t in g], [by_id[t][1] for t in g]), tuple(g)) for g in groups]
    for group, results in _in_pool(jobs, workers):
        yield from zip(group, results, strict=True)


def _tune_value(v: Any, mode: str) -> Any:
    """A metric as Tune's schedulers can compare it: a non-finite float is the worst value."""
    if isinstance(v, float) and not math.isfinite(v):
        return math.inf if mode == "min" else -math.inf
    return v


def _tune_trainable(config: dict) -> None:
    """A Ray Tune function trainable: one inertia trial, every evaluation reported to Tune (so its
    scheduler can stop the trial between evaluations), then its final result with its status."""
    from ray import get_runtime_context, tune

    mode = config["mode"]

    def numbers(m: dict) -> dict:
        return {k: _tune_value(v, mode) for k, v in m.items() if isinstance(v, (int, float))}

    def report(step: int, total: int, m: dict) -> None:
        if step < total:  # the last evaluation is reported below, with the status, as one result
            tune.report(numbers(m))

    res = _run_trial((config["trial"]["cfg"], config["trial"]["run_dir"]), progress=report)
    tune.report(
        {
            **numbers(res["metrics"]),
            "inertia_status": res["status"],
            "inertia_message": res["message"],
            "inertia_node": get_runtime_context().get_node_id(),
        }
    )


def _kept_metrics(m: dict) -> dict:
    kept = ("step", "train_batch_loss", "wall_s")
    return {k: v for k, v in m.items() if k in kept or k.startswith(("train_", "test_"))}


def _tune_scheduler(tune_opts: TuneOptions, todo: list):
    """Tune's scheduler for the options, with updates (``step``) as its time axis."""
    if tune_opts.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    cfgs = [from_dict(c) for _, c, _ in todo]
    grace = tune_opts.grace_period or 2 * min(c.eval_every for c in cfgs)
    metric, mode = tune_opts.metric, tune_opts.mode
    if tune_opts.scheduler == "asha":
        max_t = max(c.steps for c in cfgs)
        return ASHAScheduler(
            time_attr="step", metric=metric, mode=mode, max_t=max_t, grace_period=min(grace, max_t), reduction_factor=3
        )
    return MedianStoppingRule(time_attr="step", metric=metric, mode=mode, grace_period=grace, min_samples_required=3)


def _record_stopped(run_dir: str, cfg: dict, metrics: dict, tune_opts: TuneOptions) -> dict:
    """Write the ``stopped`` summary of a trial Tune's scheduler stopped (its actor is gone, so its
    folder's lock is free; waited for a few seconds if not yet) and return its result. A trial
    whose folder says it finished (stopped as its last result arrived) keeps that result."""
    import time

    rd = RunDir(run_dir)
    summary, _, _ = _read_trial(rd)
    if isinstance(summary, dict) and summary.get("status") in FINISHED:
        return {"status": summary["status"], "metrics": summary.get("final", {}), "message": summary.get("message", "")}
    step = metrics.get("step", 0)
    value = metrics.get(tune_opts.metric)
    shown = f"{value:.4g}" if isinstance(value, (int, float)) else repr(value)
    message = f"stopped early by the {tune_opts.scheduler} scheduler at update {step} ({tune_opts.metric} {shown})"
    for attempt in range(50):
        try:
            with lock_folder(rd.root):
                rd.write_summary(
                    status="stopped", step=step, experiment=cfg.get("experiment"), final=metrics, message=message
                )
            break
        except FolderInUseError:
            if attempt == 49:
                raise
            time.sleep(0.2)
    return {"status": "stopped", "metrics": metrics, "message": message}


def _run_ray(todo, workers, tune: TuneOptions | None = None):
    """Run the trials as Ray Tune trials (``tune.resources`` each, default one CPU) on a local Ray
    or the cluster at ``tune.address``, with ``tune.scheduler`` if any; yield (trial id, result)."""
    opts = tune or TuneOptions()
    try:
        import ray
        from ray import tune as ray_tune
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray Tune: pip install 'inertia[ray]'") from None
    resources = dict(opts.resources or {"cpu": 1})
    started = False
    if not ray.is_initialized():
        kwargs: dict = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if opts.address is not None:
            kwargs["address"] = opts.address
        else:  # "local": a new Ray of our own, never a cluster that happens to run on this machine
            kwargs["address"] = "local"
            kwargs["num_cpus"] = max(1, math.ceil((workers or os.cpu_count() or 1) * resources.get("cpu", 1)))
        try:
            ray.init(**kwargs)
        except ConnectionError as e:
            raise ConfigError(f"cannot connect to the Ray cluster at {opts.address!r}: {e}") from None
        started = True
    try:
        storage = Path(todo[0][2]).parent.parent.resolve() / "ray"
        space = [{"id": tid, "cfg": c, "run_dir": str(Path(d).resolve())} for tid, c, d in todo]
        by_id = {tid: (c, str(Path(d).resolve())) for tid, c, d in todo}
        tuner = ray_tune.Tuner(
            ray_tune.with_resources(_tune_trainable, resources),
            param_space={"trial": ray_tune.grid_search(space), "mode": opts.mode},
            tune_config=ray_tune.TuneConfig(
                max_concurrent_trials=workers, scheduler=_tune_scheduler(opts, todo), reuse_actors=False
            ),
            run_config=ray_tune.RunConfig(storage_path=str(storage), name="tune", verbose=0),
        )
        storage.mkdir(parents=True, exist_ok=True)
        with (storage / "tune-output.log").open("a") as log, contextlib.redirect_stdout(log):
            grid = tuner.fit()  # Tune's own tables and hints go to the log, not the user's terminal
        for r in grid:  # type: ignore[attr-defined]  # ResultGrid supports iteration
            tid = r.config["trial"]["id"]
            m = r.metrics or {}
            if r.error is not None:
                yield tid, {"status": "failed", "metrics": {}, "message": str(r.error)}
            elif "inertia_status" in m:
                yield (
                    tid,
                    {
                        "status": m["inertia_status"],
                        "metrics": _kept_metrics(m),
                        "message": m.get("inertia_message", ""),
                        "node": m.get("inertia_node"),
                    },
                )
            elif opts.scheduler is not None and "step" in m:
                yield tid, _record_stopped(by_id[tid][1], by_id[tid][0], _kept_metrics(m), opts)
            else:
                yield tid, {"status": "failed", "metrics": {}, "message": "the Ray trial ended without a result"}
    finally:
        if started:
            ray.shutdown()


def load_sweep(root: str | Path) -> SweepResult:
    """A sweep's results from its folder (``results.json``)."""
    root = Path(root)
    path = root / "results.json"
    if not path.exists():
        raise ConfigError(f"{root} has no results.json (run or resume the sweep first)")
    rebuild = "resume the sweep (--resume) to rebuild it from the trial folders"
    try:
        trials = read_json(path)["trials"]
    except ValueError as e:  # names the file
        raise ConfigError(f"{e}; {rebuild}") from None
    except (KeyError, TypeError):
        raise ConfigError(f"{path} holds no list of trials; {rebuild}") from None
    return SweepResult(root, trials)
