"""Claims and the reproduction report.

A claim is a statement from the paper, the value we measured, the paper's value where one
exists, the test that decides it (a direction or a threshold), and PASS/FAIL. A failing claim is
reported as failing, never hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._atomic import atomic_write_bytes
from .._json import to_json
from ..render import Image, Page, Section, Table, Text, save_figure

__all__ = ["Claim", "Figure", "PaperResult", "mode_name", "save_figure", "write_report"]


def mode_name(quick: bool, smoke: bool = False) -> str:
    """The name of a reproduction's size: ``"smoke"`` (the tests'), ``"quick"`` or ``"full"``.

    Examples:
        >>> mode_name(True), mode_name(False), mode_name(True, smoke=True)
        ('quick', 'full', 'smoke')
    """
    return "smoke" if smoke else "quick" if quick else "full"


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
    cut: str = ""  # what a --budget cut (fewer updates than the paper), said beside every table

    def to_dict(self) -> dict:
        return {
            "paper": self.paper,
            "title": self.title,
            "setting": self.setting,
            "wall_time_s": self.wall_time_s,
            "claims": [dict(asdict(c), verdict=c.verdict) for c in self.claims],
            "figures": [{"path": str(f.path), "caption": f.caption} for f in self.figures],
            "tables": self.tables,
            "cut": self.cut,
        }


def _claims_table(results: list) -> Table:
    return Table(
        [
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
    )


def _paper_section(r: PaperResult) -> Section:
    """A paper's setting, its tables, then each figure beside the paper's description of it."""
    return Section(
        f"{r.paper}: {r.title}",
        [
            Text(f"Setting: {r.setting}. Wall time {r.wall_time_s:.1f} s." + (f" {r.cut}" if r.cut else "")),
            *(
                Section(name, [Table(rows), *([Text(r.cut)] if r.cut else [])], level=3)
                for name, rows in r.tables.items()
            ),
            *(Image(f.caption, path=Path(f.path)) for f in r.figures),
        ],
    )


def write_report(results: list, out: Path) -> tuple[Path, Path, Path]:
    """``results.json``, ``report.md`` and a self-contained ``report.html`` for one or more papers:
    the claims tables first, then each figure beside the paper's description of it."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "results.json", to_json([r.to_dict() for r in results], indent=2).encode())
    passed = sum(c.passed for r in results for c in r.claims)
    total = sum(len(r.claims) for r in results)
    page = Page(
        "inertia reproductions",
        [Text(f"{passed} of {total} claims pass."), _claims_table(results), *(_paper_section(r) for r in results)],
    )
    md, html = page.write(out)
    return out / "results.json", md, html
