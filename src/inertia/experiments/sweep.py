"""Sweeps: every combination of a grid of config overrides times seeds, each trial a
:func:`~inertia.experiments.train.train` run in its own folder.

Layout: ``<out>/<experiment>/<sweep name>/sweep.json`` (the base config, grid and seeds) and
``trials/<trial id>/`` (a run folder). A trial id is derived from its overrides, so re-running or
resuming a sweep finds the same folders. With ``resume=True`` trials whose ``summary.json`` says
``completed`` or ``diverged`` are kept as they are; unfinished ones continue from their last
checkpoint (or start over if they had none). Every file is written atomically, so a sweep killed
at any instant (even ``kill -9``) resumes without corrupt files.

Backends: ``"local"`` (a process pool, one worker per core, each with one torch thread) and
``"ray"`` (the same trials as Ray tasks on a local or remote Ray cluster; ``pip install
inertia[ray]``, imported only when used).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from .config import Config, ConfigError, from_dict, parse_value, set_dotted
from .store import RunDir, atomic_write_json, read_json


def parse_grid(items: Sequence[str]) -> dict:
    """``["optimizer.lr=0.05,0.01", "schedule.mu_max=0,0.9"]`` -> {key: [values]}."""
    grid = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"grid entry {item!r} must look like key=v1,v2,... (e.g. optimizer.lr=0.05,0.01)")
        key, values = item.split("=", 1)
        vals = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        if not vals:
            raise ConfigError(f"grid entry {item!r} has no values")
        grid[key.strip()] = vals
    return grid


def trial_id(overrides: dict) -> str:
    text = ",".join(f"{k}={overrides[k]!r}" for k in sorted(overrides))
    short = "_".join(f"{k.split('.')[-1]}{overrides[k]}" for k in sorted(overrides))[:60]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in short)
    return f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def expand(base: Config, grid: dict, seeds: int = 1) -> list[tuple[str, dict, Config]]:
    """Every (trial id, overrides, config) of the grid times seeds 0..seeds-1 (offset by the base
    seed). All configs are validated here, before any trial starts."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"seeds must be a positive integer, got {seeds!r}")
    keys = list(grid)
    trials = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        for s in range(seeds):
            over = dict(zip(keys, combo))
            over["seed"] = base.seed + s
            d = base.to_dict()
            for k, v in over.items():
                set_dotted(d, k, v)
            try:
                cfg = from_dict(d)
            except ConfigError as e:
                raise ConfigError(f"grid point {over}: {e}") from None
            trials.append((trial_id(over), over, cfg))
    return trials


def _run_trial(args) -> dict:
    cfg_dict, run_dir = args
    import torch

    torch.set_num_threads(1)
    from .train import train

    try:
        res = train(from_dict(cfg_dict), run_dir, resume=True)
        return {"status": res.status, "metrics": dict(res), "message": res.message}
    except Exception as e:  # noqa: BLE001 - a failed trial is recorded; the sweep goes on
        return {"status": "failed", "metrics": {}, "message": f"{type(e).__name__}: {e}"}


@dataclass
class SweepResult:
    directory: Path
    trials: list = field(default_factory=list)  # dicts: id, overrides, status, metrics

    def table(self, metric: str = "train_error", lr_key: str = "optimizer.lr") -> list[dict]:
        """Sutskever et al.'s table form: for each setting of the other grid keys, the best lr
        (lowest mean final ``metric`` over seeds, diverged trials counting as infinite), with the
        mean and standard deviation over seeds."""
        groups: dict = {}
        for t in self.trials:
            over = {k: v for k, v in t["overrides"].items() if k != "seed"}
            setting = tuple(sorted((k, repr(v)) for k, v in over.items() if k != lr_key))
            lr = over.get(lr_key)
            value = t["metrics"].get(metric, t["metrics"].get("train_loss")) if t["status"] == "completed" else math.inf
            groups.setdefault(setting, {}).setdefault(lr, []).append(float(value) if value is not None else math.inf)
        rows = []
        for setting, by_lr in groups.items():
            best_lr, vals = min(by_lr.items(), key=lambda kv: statistics.fmean(kv[1]))
            finite = [v for v in vals if math.isfinite(v)]
            rows.append({**{k: parse_value(v) for k, v in setting}, "best_lr": best_lr,
                         "mean": statistics.fmean(vals) if len(finite) == len(vals) else math.inf,
                         "std": statistics.pstdev(finite) if len(finite) > 1 else 0.0,
                         "seeds": len(vals), "diverged_or_failed": len(vals) - len(finite)})
        return rows


def run_sweep(base: Config, grid: dict, seeds: int = 1, out: str | Path = "runs", name: Optional[str] = None,
              backend: str = "local", workers: Optional[int] = None, resume: bool = False,
              progress: Optional[Callable[[int, int], None]] = None) -> SweepResult:
    """Run every trial of the grid (see the module docstring); return the collected results."""
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend must be 'local' or 'ray', got {backend!r}")
    trials = expand(base, grid, seeds)
    name = name or "sweep-" + hashlib.sha256(repr(sorted(grid.items())).encode()).hexdigest()[:8]
    root = Path(out) / base.experiment / name
    meta = {"base": base.to_dict(), "grid": grid, "seeds": seeds}
    return _execute(root, meta, trials, backend, workers, resume, progress)


def run_configs(configs: dict, out: str | Path = "runs", name: str = "configs", backend: str = "local",
                workers: Optional[int] = None, resume: bool = False,
                progress: Optional[Callable[[int, int], None]] = None) -> SweepResult:
    """Run explicitly listed configs (``{label: Config or dict}``) as one pool of trials.

    The same machinery as :func:`run_sweep` (folders, resume, backends) for trials that do not
    form a grid: different data, models or optimizers side by side. The folder is
    ``<out>/<name>``; each trial's overrides are ``{"label": label}`` and its id is derived from
    the label and the config, so a changed config never reuses an old folder.
    """
    if backend not in ("local", "ray"):
        raise ConfigError(f"backend must be 'local' or 'ray', got {backend!r}")
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
    return _execute(Path(out) / name, meta, trials, backend, workers, resume, progress)


def _execute(root: Path, meta: dict, trials: list, backend: str, workers: Optional[int], resume: bool,
             progress: Optional[Callable[[int, int], None]]) -> SweepResult:
    if (root / "sweep.json").exists() and not resume:
        raise ConfigError(f"{root} already holds a sweep; pass --resume to continue it or choose another --name")
    atomic_write_json(root / "sweep.json", meta)
    todo, done = [], {}
    for tid, over, cfg in trials:
        rd = RunDir(root / "trials" / tid)
        s = rd.read_summary() if rd.summary.exists() else None
        if s and s.get("status") in ("completed", "diverged"):
            done[tid] = {"status": s["status"], "metrics": s.get("final", {}), "message": s.get("message", "")}
        else:
            todo.append((tid, cfg.to_dict(), str(rd.root)))
    finished = len(done)
    if progress:
        progress(finished, len(trials))
    if todo:
        if backend == "local":
            import concurrent.futures as cf
            import multiprocessing as mp

            n = min(workers or os.cpu_count() or 1, len(todo))
            with cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn")) as pool:
                futs = {pool.submit(_run_trial, (c, d)): tid for tid, c, d in todo}
                for fut in cf.as_completed(futs):
                    done[futs[fut]] = fut.result()
                    finished += 1
                    if progress:
                        progress(finished, len(trials))
        else:
            for tid, res in _run_ray(todo, workers):
                done[tid] = res
                finished += 1
                if progress:
                    progress(finished, len(trials))
    result = SweepResult(root, [{"id": tid, "overrides": over, **done[tid]} for tid, over, _ in trials])
    atomic_write_json(root / "results.json", {"trials": result.trials, "table": result.table()})
    return result


def _tune_trainable(config: dict) -> dict:
    """A Ray Tune function trainable: one inertia trial; its return value is the final result."""
    res = _run_trial((config["trial"]["cfg"], config["trial"]["run_dir"]))
    return {"inertia_status": res["status"], "inertia_message": res["message"],
            **{k: v for k, v in res["metrics"].items() if isinstance(v, (int, float))}}


def _run_ray(todo, workers):
    """Run the trials as Ray Tune trials (one CPU each) and yield (trial id, result)."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray Tune: pip install 'inertia[ray]'") from None
    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        started = True
    try:
        storage = Path(todo[0][2]).parent.parent.resolve() / "ray"
        space = [{"id": tid, "cfg": c, "run_dir": str(Path(d).resolve())} for tid, c, d in todo]
        tuner = tune.Tuner(
            tune.with_resources(_tune_trainable, {"cpu": 1}),
            param_space={"trial": tune.grid_search(space)},
            tune_config=tune.TuneConfig(max_concurrent_trials=workers or os.cpu_count()),
            run_config=tune.RunConfig(storage_path=str(storage), name="tune", verbose=0),
        )
        grid = tuner.fit()
        for r in grid:
            tid = r.config["trial"]["id"]
            m = r.metrics or {}
            if r.error is not None or "inertia_status" not in m:
                yield tid, {"status": "failed", "metrics": {}, "message": str(r.error)}
                continue
            metrics = {k: v for k, v in m.items() if k in ("step", "train_batch_loss") or k.startswith(("train_", "test_"))}
            yield tid, {"status": m["inertia_status"], "metrics": metrics, "message": m.get("inertia_message", "")}
    finally:
        if started:
            ray.shutdown()


def load_sweep(root: str | Path) -> SweepResult:
    """A sweep's results from its folder (``results.json``)."""
    root = Path(root)
    if not (root / "results.json").exists():
        raise ConfigError(f"{root} has no results.json (run or resume the sweep first)")
    return SweepResult(root, read_json(root / "results.json")["trials"])
