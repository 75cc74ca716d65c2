"""Reproductions of the papers' main claims: ``inertia reproduce <paper>|all --quick|--full``.

Each paper module has ``get_config(quick)``, ``run(quick, out, seeds, smoke, device) -> PaperResult``
and a list of claims decided by what the run measures (:mod:`.claims`). Papers: ``sutskever2013``,
``glorot2010``, ``hu2020``, ``temperoni2020`` and ``momentum`` (the note on classical momentum).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .claims import Claim, Figure, PaperResult, write_report

PAPERS = ("sutskever2013", "glorot2010", "hu2020", "temperoni2020", "momentum")  # one module each


def run(
    papers,
    quick: bool = True,
    out: Path = Path("runs/reproduce"),
    seeds: int = 1,
    smoke: bool = False,
    device: str = "cpu",
) -> list:
    """Run the named papers (or ``"all"``), write results.json, report.md and report.html in ``out``."""
    if papers == "all" or papers == ["all"]:
        papers = list(PAPERS)
    if isinstance(papers, str):
        papers = [papers]
    unknown = [p for p in papers if p not in PAPERS]
    if unknown:
        raise ValueError(f"unknown paper(s) {unknown}; available: all, {', '.join(PAPERS)}")
    results = [
        importlib.import_module(f"{__name__}.{p}").run(
            quick=quick, out=Path(out), seeds=seeds, smoke=smoke, device=device
        )
        for p in papers
    ]
    write_report(results, Path(out))
    return results


__all__ = ["run", "PAPERS", "Claim", "Figure", "PaperResult", "write_report"]
