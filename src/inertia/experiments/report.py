"""``inertia report DIR``: ``report.md`` and a self-contained ``report.html`` for a run or a sweep.

A run report has the final metrics, the config, loss and error curves, and the monitor's
figures when the run recorded diagnostics. A sweep report has the best-lr table and every
trial's curve. Figures are PNG files beside the report (linked from the Markdown) and embedded
as base64 in the HTML, so the HTML needs nothing else to display.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from .._atomic import atomic_write_bytes
from .config import ConfigError
from .store import UnreadableFileError, read_json, read_jsonl


def _curves(series: dict, path: Path, title: str, ylabel: str, log: bool = True) -> Path | None:
    """series: label -> (steps, values)."""
    series = {k: v for k, v in series.items() if v[0]}
    if not series:
        return None
    from ..diagnostics.plots import subplots  # a Figure without pyplot: the user's backend is left alone

    fig, ax = subplots(figsize=(7, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, label=label)
    if log and all(y > 0 for _, ys in series.values() for y in ys if isinstance(y, float)):
        ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _run_figures(run: Path, metrics: list, label_prefix: str = "") -> list:
    figs = []
    keys = [k for k in ("train_loss", "test_loss", "train_error", "test_error") if any(k in m for m in metrics)]
    loss = {
        k: (
            [m["step"] for m in metrics if _num(m.get(k)) is not None],
            [m[k] for m in metrics if _num(m.get(k)) is not None],
        )
        for k in keys
        if "loss" in k
    }
    err = {
        k: (
            [m["step"] for m in metrics if _num(m.get(k)) is not None],
            [m[k] for m in metrics if _num(m.get(k)) is not None],
        )
        for k in keys
        if "error" in k
    }
    for name, series, ylabel in (("loss.png", loss, "loss"), ("error.png", err, "error")):
        p = _curves(series, run / name, f"{label_prefix}{ylabel} over training", ylabel)
        if p:
            figs.append((f"{ylabel} over training", p))
    diag = read_jsonl(run / "diagnostics.jsonl")
    if diag:
        from ..diagnostics import plots

        for title, fn, fname in (
            (
                "activations per layer (mean, std, 98th percentile)",
                lambda p: plots.plot_layer_stats(diag, "activation", path=p),
                "activations.png",
            ),
            (
                "curvature over training",
                lambda p: plots.plot_curvature(
                    diag, keys=("hessian_frobenius_norm", "hessian_top_eigenvalue", "hessian_trace"), path=p
                ),
                "curvature.png",
            ),
        ):
            try:
                fn(run / fname)
                figs.append((title, run / fname))
            except ValueError:  # that quantity was not monitored
                pass
    return figs


def _md_cell(v) -> str:
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    return text.replace("|", "\\|").replace("\n", " ")  # a message must not end or split the table


def _md_table(rows: list) -> str:
    if not rows:
        return "_(no rows)_\n"
    cols = list(rows[0])
    out = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    for r in rows:
        out += "| " + " | ".join(_md_cell(r[c]) for c in cols) + " |\n"
    return out


def _html_table(rows: list) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(f'{r[c]:.4g}' if isinstance(r[c], float) else str(r[c]))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _write(directory: Path, title: str, sections: list) -> tuple[Path, Path]:
    """sections: (heading, markdown text, html text, figures)."""
    md = f"# {title}\n\n"
    body = f"<h1>{html.escape(title)}</h1>"
    for heading, md_text, html_text, figs in sections:
        md += f"## {heading}\n\n{md_text}\n"
        body += f"<h2>{html.escape(heading)}</h2>{html_text}"
        for cap, path in figs:
            rel = path.relative_to(directory) if path.is_relative_to(directory) else path
            md += f"![{cap}]({rel})\n\n"
            b64 = base64.b64encode(path.read_bytes()).decode()
            body += (
                f"<figure><img alt='{html.escape(cap)}' src='data:image/png;base64,{b64}'>"
                f"<figcaption>{html.escape(cap)}</figcaption></figure>"
            )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}pre{background:#f6f6f6;padding:1em;overflow:auto}"
        "img{max-width:700px}</style></head><body>" + body + "</body></html>"
    )
    atomic_write_bytes(directory / "report.md", md.encode("utf-8"))
    atomic_write_bytes(directory / "report.html", page.encode("utf-8"))
    return directory / "report.md", directory / "report.html"


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


def _problems_section(problems: list) -> list:
    if not problems:
        return []
    rows = [{"file": p} for p in problems]
    return [("unreadable files", _md_table(rows), _html_table(rows), [])]


def report_run(run: Path) -> tuple[Path, Path]:
    """A run's report. Files that do not parse are listed (named) and the rest is still shown; a
    run whose summary is unreadable has status ``unreadable``."""
    problems: list = []
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
    return _write(
        run,
        f"run {run.name}",
        [
            ("status", _md_table(status), _html_table(status), []),
            *_problems_section(problems),
            ("final metrics", _md_table(final_rows), _html_table(final_rows), []),
            ("curves", "", "", figs),
            ("config", f"```json\n{cfg_text}\n```\n", f"<pre>{html.escape(cfg_text)}</pre>", []),
        ],
    )


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
    series, problems = {}, []
    for t in res.trials:
        ms = _read_or_note(root / "trials" / t["id"] / "metrics.jsonl", read_jsonl, [], problems)
        pts = [(m["step"], m[metric]) for m in ms if _num(m.get(metric)) is not None]
        if pts:
            series[t["id"]] = ([p[0] for p in pts], [p[1] for p in pts])
    fig = _curves(series, root / "trials.png", f"{metric} of every trial", metric)
    stored = read_json(root / "sweep.json")
    meta = json.dumps(stored.get("grid", stored.get("configs")) if isinstance(stored, dict) else stored, indent=2)
    return _write(
        root,
        f"sweep {root.name}",
        [
            (f"best learning rate per setting ({metric})", _md_table(table), _html_table(table), []),
            *_problems_section(problems),
            ("trials", _md_table(trials), _html_table(trials), [(f"{metric} of every trial", fig)] if fig else []),
            ("grid", f"```json\n{meta}\n```\n", f"<pre>{html.escape(meta)}</pre>", []),
        ],
    )


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
    for run in runs:
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
