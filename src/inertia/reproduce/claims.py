"""Claims and the reproduction report.

A claim is a statement from the paper, the value we measured, the paper's value where one
exists, the test that decides it (a direction or a threshold), and PASS/FAIL. A failing claim is
reported as failing, never hidden.
"""

from __future__ import annotations

import base64
import html
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_bytes
from .._json import to_json


@dataclass
class Claim:
    statement: str
    measured: Any
    test: str
    passed: bool
    paper: Any | None = None

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass
class Figure:
    path: Path
    caption: str  # the paper's description of what the figure should show


@dataclass
class PaperResult:
    paper: str
    title: str
    setting: str  # quick or full, and what was reduced
    claims: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    tables: dict = field(default_factory=dict)  # name -> list of row dicts
    wall_time_s: float = 0.0

    def to_dict(self) -> dict:
        return {
            "paper": self.paper,
            "title": self.title,
            "setting": self.setting,
            "wall_time_s": self.wall_time_s,
            "claims": [dict(asdict(c), verdict=c.verdict) for c in self.claims],
            "figures": [{"path": str(f.path), "caption": f.caption} for f in self.figures],
            "tables": self.tables,
        }


def pyplot():
    """pyplot's ``subplots`` and ``close`` without pyplot: figures are ``matplotlib.figure.Figure``
    objects, so the user's backend and pyplot's global figures are left alone (nothing to close)."""
    from types import SimpleNamespace

    from ..diagnostics.plots import subplots

    return SimpleNamespace(subplots=subplots, close=lambda fig: None)


def save_figure(fig, path: Path) -> Path:
    """Lay out and write ``fig``; return ``path`` (what a :class:`Figure` points to)."""
    fig.tight_layout()
    fig.savefig(path)
    return path


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _table_md(rows: list) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    return (
        "| "
        + " | ".join(cols)
        + " |\n|"
        + "---|" * len(cols)
        + "\n"
        + "".join("| " + " | ".join(_fmt(r.get(c)).replace("|", "\\|") for c in cols) + " |\n" for r in rows)
    )


def _table_html(rows: list) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    return (
        "<table><tr>"
        + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        + "</tr>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
        + "</table>"
    )


def write_report(results: list, out: Path) -> tuple[Path, Path, Path]:
    """``results.json``, ``report.md`` and a self-contained ``report.html`` for one or more papers:
    the claims tables first, then each figure beside the paper's description of it."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "results.json", to_json([r.to_dict() for r in results], indent=2).encode())
    md = "# inertia reproductions\n\n"
    body = "<h1>inertia reproductions</h1>"
    claim_rows = [
        {
            "paper": r.paper,
            "claim": c.statement,
            "measured": c.measured,
            "paper value": c.paper,
            "test": c.test,
            "verdict": c.verdict,
        }
        for r in results
        for c in r.claims
    ]
    passed = sum(c.passed for r in results for c in r.claims)
    md += f"{passed} of {len(claim_rows)} claims pass.\n\n" + _table_md(claim_rows) + "\n"
    body += f"<p>{passed} of {len(claim_rows)} claims pass.</p>" + _table_html(claim_rows)
    for r in results:
        md += f"## {r.paper}: {r.title}\n\nSetting: {r.setting}. Wall time {r.wall_time_s:.1f} s.\n\n"
        body += (
            f"<h2>{html.escape(r.paper)}: {html.escape(r.title)}</h2><p>Setting: {html.escape(r.setting)}. "
            f"Wall time {r.wall_time_s:.1f} s.</p>"
        )
        for name, rows in r.tables.items():
            md += f"### {name}\n\n" + _table_md(rows) + "\n"
            body += f"<h3>{html.escape(name)}</h3>" + _table_html(rows)
        for f in r.figures:
            rel = Path(f.path).relative_to(out) if Path(f.path).is_relative_to(out) else f.path
            md += f"![{f.caption}]({rel})\n\n*{f.caption}*\n\n"
            b64 = base64.b64encode(Path(f.path).read_bytes()).decode()
            body += (
                f"<figure><img alt='{html.escape(f.caption)}' src='data:image/png;base64,{b64}'>"
                f"<figcaption>{html.escape(f.caption)}</figcaption></figure>"
            )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>inertia reproductions</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:800px}</style></head><body>"
        + body
        + "</body></html>"
    )
    atomic_write_bytes(out / "report.md", md.encode())
    atomic_write_bytes(out / "report.html", page.encode())
    return out / "results.json", out / "report.md", out / "report.html"
