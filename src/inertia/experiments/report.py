"""``inertia report DIR``: ``report.md`` and a self-contained ``report.html`` for a run or a sweep.

A run report has the final metrics, the config, loss and error curves, and the monitor's
figures when the run recorded diagnostics. A sweep report has the best-lr table and every
trial's curve. Figures are PNG files beside the report (linked from the Markdown) and embedded
as base64 in the HTML, so the HTML needs nothing else to display.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from .. import progress as _progress
from ..render import Code, Image, Page, Section, Table, legend_outside, save_figure, series_style
from .config import ConfigError
from .store import UnreadableFileError, read_json, read_jsonl

__all__ = ["report_run", "report_sweep", "write_report", "write_tensorboard"]


def _curves_figure(series: dict, title: str, ylabel: str, log: bool = True):
    """series: label -> (steps, values); None when no series has a point. Every series its own
    style and the legend outside the data (a sweep has 12 trials or more)."""
    series = {k: v for k, v in series.items() if v[0]}
    if not series:
        return None
    from ..diagnostics.plots import subplots  # a Figure without pyplot: the user's backend is left alone

    fig, ax = subplots(figsize=(8, 4))
    for i, (label, (xs, ys)) in enumerate(series.items()):
        ax.plot(xs, ys, **series_style(i), label=label)
    if log and all(y > 0 for _, ys in series.values() for y in ys if isinstance(y, float)):
        ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend_outside(ax)
    ax.grid(alpha=0.3)
    return fig


def _curves(series: dict, path: Path, title: str, ylabel: str, log: bool = True) -> Path | None:
    fig = _curves_figure(series, title, ylabel, log)
    return None if fig is None else save_figure(fig, path)


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _series(metrics: list, keys: list) -> dict:
    """key -> (steps, values) of the records where ``key`` is a number."""
    return {
        k: (
            [m["step"] for m in metrics if _num(m.get(k)) is not None],
            [m[k] for m in metrics if _num(m.get(k)) is not None],
        )
        for k in keys
    }


def _monitor_figures(run: Path) -> list[Image]:
    """The monitor's figures, for the quantities the run monitored."""
    diag = read_jsonl(run / "diagnostics.jsonl")
    if not diag:
        return []
    from ..diagnostics import plots

    curvature = ("hessian_frobenius_norm", "hessian_top_eigenvalue", "hessian_trace")
    figs = []
    for title, name, draw in (
        (
            "activations per layer (mean, std, 98th percentile)",
            "activations.png",
            partial(plots.plot_layer_stats, diag),
        ),
        ("curvature over training", "curvature.png", partial(plots.plot_curvature, diag, keys=curvature)),
    ):
        try:
            draw(path=run / name)
        except ValueError:  # that quantity was not monitored
            continue
        figs.append(Image(title, path=run / name))
    return figs


def _run_figures(run: Path, metrics: list) -> list[Image]:
    """Loss and error curves (the metrics the run evaluated), then the monitor's figures."""
    keys = [k for k in ("train_loss", "test_loss", "train_error", "test_error") if any(k in m for m in metrics)]
    figs = []
    for name, kind in (("loss.png", "loss"), ("error.png", "error")):
        path = _curves(_series(metrics, [k for k in keys if kind in k]), run / name, f"{kind} over training", kind)
        if path:
            figs.append(Image(f"{kind} over training", path=path))
    return figs + _monitor_figures(run)


def _read_or_note(path: Path, reader, default, problems: list, kind: type = object):
    """``reader(path)`` (``default`` if the file is absent); an unreadable file, or one holding
    something other than a ``kind``, is noted in ``problems`` and reads as ``default``."""
    if not path.exists():
        return default
    try:
        value = reader(path)
    except UnreadableFileError as e:
        problems.append(str(e))
        return default
    if not isinstance(value, kind):
        problems.append(f"{path}: holds a JSON {type(value).__name__}, not an object")
        return default
    return value


def _problems_section(problems: list) -> list[Section]:
    return [Section("unreadable files", [Table([{"file": p} for p in problems])])] if problems else []


def report_run(run: Path) -> tuple[Path, Path]:
    """A run's report. Files that do not parse are listed (named) and the rest is still shown; a
    run whose summary is unreadable has status ``unreadable``."""
    problems: list[str] = []
    summary = _read_or_note(run / "summary.json", read_json, None, problems, dict)
    config = _read_or_note(run / "config.json", read_json, None, problems, dict)
    metrics = _read_or_note(run / "metrics.jsonl", read_jsonl, [], problems)
    final = (summary or {}).get("final", metrics[-1] if metrics else {})
    if summary is None and (run / "summary.json").exists():
        status = [{"status": "unreadable", "updates": "-", "message": problems[0]}]
    else:
        summary = summary or {}
        status = [
            {
                "status": summary.get("status", "unknown"),
                "updates": summary.get("step", "-"),
                "message": summary.get("message", "") or "-",
            }
        ]
    final_rows = [{"metric": k, "value": v} for k, v in final.items()] if isinstance(final, dict) else []
    cfg_text = json.dumps(config, indent=2) if config is not None else "(config.json missing or unreadable)"
    try:
        figs = _run_figures(run, metrics)
    except UnreadableFileError as e:  # diagnostics.jsonl: the run's other parts are still shown
        problems.append(f"{e} (figures skipped)")
        figs = []
    page = Page(
        f"run {run.name}",
        [
            Section("status", [Table(status)]),
            *_problems_section(problems),
            Section("final metrics", [Table(final_rows)]),
            Section("curves", figs),
            Section("config", [Code(cfg_text, "json")]),
        ],
    )
    return page.write(run)


def report_sweep(root: Path, metric: str = "train_error") -> tuple[Path, Path]:
    from .sweep import load_sweep

    res = load_sweep(root)
    table = res.table(metric)
    trials = [
        {
            "trial": t["id"],
            "status": t["status"],
            **{k: v for k, v in t["overrides"].items()},
            metric: t["metrics"].get(metric, "-"),
            "message": t.get("message", "") or "-",
        }
        for t in res.trials
    ]
    series: dict = {}
    problems: list[str] = []
    reporter = _progress.current()
    for i, t in enumerate(res.trials):
        if reporter is not None:
            reporter.update(i, len(res.trials), stage="reading trials", what="trials")
        ms = _read_or_note(root / "trials" / t["id"] / "metrics.jsonl", read_jsonl, [], problems)
        pts = [(m["step"], m[metric]) for m in ms if _num(m.get(metric)) is not None]
        if pts:
            series[t["id"]] = ([p[0] for p in pts], [p[1] for p in pts])
    if reporter is not None:
        reporter.update(len(res.trials), len(res.trials), stage="reading trials", what="trials")
        reporter.note("drawing the figure and writing the report")
    fig = _curves(series, root / "trials.png", f"{metric} of every trial", metric)
    stored = read_json(root / "sweep.json")
    meta = json.dumps(stored.get("grid", stored.get("configs")) if isinstance(stored, dict) else stored, indent=2)
    page = Page(
        f"sweep {root.name}",
        [
            Section(f"best learning rate per setting ({metric})", [Table(table)]),
            *_problems_section(problems),
            Section("trials", [Table(trials), *([Image(f"{metric} of every trial", path=fig)] if fig else [])]),
            Section("grid", [Code(meta, "json")]),
        ],
    )
    return page.write(root)


def write_report(directory: str | Path, metric: str = "train_error") -> tuple[Path, Path]:
    """Write the report for a run folder or a sweep folder; return (report.md, report.html)."""
    d = Path(directory)
    if (d / "sweep.json").exists():
        try:
            return report_sweep(d, metric)
        except UnreadableFileError as e:  # sweep.json or results.json: no table without them
            raise ConfigError(str(e)) from None
    if (d / "config.json").exists() or (d / "summary.json").exists():
        return report_run(d)
    raise ConfigError(f"{d} is neither a run folder (config.json) nor a sweep folder (sweep.json)")


def write_tensorboard(directory: str | Path) -> Path:
    """Write a run's (or every trial's) metrics as TensorBoard event files under
    ``<directory>/tensorboard`` (needs the ``tensorboard`` extra: ``pip install 'inertia[tensorboard]'``)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("--tensorboard needs TensorBoard: pip install 'inertia[tensorboard]'") from None
    d = Path(directory)
    runs = [d] if (d / "config.json").exists() else sorted(p for p in (d / "trials").glob("*") if p.is_dir())
    if not runs:
        raise ConfigError(f"{d} holds no run with metrics")
    out = d / "tensorboard"
    reporter = _progress.current()
    for i, run in enumerate(runs):
        if reporter is not None:
            reporter.update(i, len(runs), stage="TensorBoard", what="runs")
        try:
            metrics = read_jsonl(run / "metrics.jsonl")
        except UnreadableFileError as e:
            raise ConfigError(str(e)) from None
        with SummaryWriter(log_dir=str(out / (run.name if run != d else "run"))) as w:
            for m in metrics:
                for k, v in m.items():
                    if k != "step" and _num(v) is not None:
                        w.add_scalar(k, v, m["step"])
    return out
