"""Reproductions of the papers' main claims: ``inertia reproduce <paper>|all --quick|--full``.

Each paper module has ``get_config(quick)``, ``run(quick, out, seeds, smoke, device) -> PaperResult``
and a list of claims decided by what the run measures (:mod:`.claims`). Papers: ``sutskever2013``,
``glorot2010``, ``hu2020``, ``temperoni2020`` and ``momentum`` (the note on classical momentum).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .. import progress as _progress
from .budget import check_budget
from .claims import Claim, Figure, PaperResult, write_report

PAPERS = ("sutskever2013", "glorot2010", "hu2020", "temperoni2020", "momentum")  # one module each
BUDGETED = ("sutskever2013", "glorot2010", "hu2020")  # papers whose --full a --budget cuts (the others take minutes)


def run(
    papers,
    quick: bool = True,
    out: Path = Path("runs/reproduce"),
    seeds: int = 1,
    smoke: bool = False,
    device: str = "cpu",
    budget_hours: float | None = None,
) -> list:
    """Run the named papers (or ``"all"``), write results.json, report.md and report.html in ``out``.

    ``budget_hours`` (with ``quick=False`` only): each paper with long runs (``BUDGETED``) cuts its
    update counts to fit that many hours (:mod:`.budget`); the report says what was cut."""
    if papers == "all" or papers == ["all"]:
        papers = list(PAPERS)
    if isinstance(papers, str):
        papers = [papers]
    unknown = [p for p in papers if p not in PAPERS]
    if unknown:
        raise ValueError(f"unknown paper(s) {unknown}; available: all, {', '.join(PAPERS)}")
    check_budget(budget_hours, quick=quick or smoke)
    results = []
    reporter = _progress.current()
    for i, p in enumerate(papers):
        extra = {"budget_hours": budget_hours} if p in BUDGETED else {}
        module = importlib.import_module(f"{__name__}.{p}")
        if reporter is not None:
            reporter.note(f"paper {i + 1}/{len(papers)}: {p} started")
            t0 = reporter.clock()
        results.append(module.run(quick=quick, out=Path(out), seeds=seeds, smoke=smoke, device=device, **extra))
        if reporter is not None:
            now = reporter.clock()
            left = _progress.eta_seconds(i + 1, len(papers), now - reporter.start)
            rest = f"; about {_progress.format_duration(left)} left" if left and i + 1 < len(papers) else ""
            reporter.note(f"{p} done in {_progress.format_duration(now - t0)}{rest}")
    write_report(results, Path(out))
    return results


__all__ = ["run", "PAPERS", "BUDGETED", "Claim", "Figure", "PaperResult", "write_report"]
