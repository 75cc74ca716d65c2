"""Per-paper budgets of ``--full``: what the papers' protocols cost on this project's reference CPU,
and how ``--budget HOURS`` cuts them to fit.

Each paper with long runs declares a :class:`PaperBudget`: the update counts of its ``Sizes`` that a
budget may cut (each with the fewest updates that still mean something) and a cost model, seconds
per update of each on the reference machine (a 2-core x86_64 CPU, one torch thread per worker),
measured where each paper's cost model says so and assumed elsewhere (each model's docstring).
``--budget HOURS`` scales every cuttable count by one factor, ``min(1, HOURS / estimated hours)``,
never below its floor, and the report says, in the setting and beside every table, which counts
were used against the paper's.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..validation import check_number

__all__ = ["PaperBudget", "Cut", "check_budget", "apply_budget"]


def check_budget(hours: float | None, quick: bool = False) -> float | None:
    """``hours`` if it is a positive finite number of hours (or None: no budget), else ValueError;
    also a ValueError for a budget with ``quick`` (a budget cuts ``--full`` only).

    Examples:
        >>> check_budget(2.5), check_budget(None)
        (2.5, None)
    """
    if hours is None:
        return None
    check_number("--budget", hours, lo=0)
    if hours <= 0:
        raise ValueError(f"--budget must be a positive number of hours, got {hours!r}")
    if quick:
        raise ValueError("--budget applies to --full only (--quick has fixed, CI-sized counts)")
    return float(hours)


@dataclass(frozen=True)
class PaperBudget:
    """A paper's cuttable update counts and cost model.

    Attributes:
        paper: the paper's name.
        floors: ``Sizes`` field -> the fewest updates a cut may leave (a field absent here is
            never cut).
        hours: ``Sizes -> estimated hours`` of the whole protocol on the reference machine.
    """

    paper: str
    floors: dict
    hours: Callable[[Any], float]


@dataclass(frozen=True)
class Cut:
    """What a budget did: the factor, the estimated hours before and after, and per cut field the
    (used, paper's) counts."""

    budget_hours: float
    factor: float
    estimated_hours: float
    counts: dict

    @property
    def cut(self) -> bool:
        return any(used < paper for used, paper in self.counts.values())

    def note(self) -> str:
        """One sentence for the report (empty when nothing was cut)."""
        if not self.cut:
            return ""
        counts = ", ".join(f"{k.replace('_', ' ')} {u:,} of the paper's {p:,}" for k, (u, p) in self.counts.items())
        return (
            f"Cut to a budget of {self.budget_hours:g} h (the full protocol: about {self.estimated_hours:.0f} h on "
            f"the reference CPU): {self.factor:.1%} of the paper's updates, fewer than the paper used: {counts}."
        )


def apply_budget(sizes: Any, budget: PaperBudget, hours: float | None) -> tuple[Any, Cut | None]:
    """``sizes`` with its cuttable update counts scaled to fit ``hours`` (None: unchanged).

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class S:
        ...     steps: int
        >>> b = PaperBudget("p", {"steps": 100}, hours=lambda s: s.steps / 1000)
        >>> s, cut = apply_budget(S(10_000), b, 2.5)
        >>> s.steps, cut.factor
        (2500, 0.25)
    """
    if check_budget(hours) is None:
        return sizes, None
    assert hours is not None
    estimate = budget.hours(sizes)
    factor = min(1.0, hours / estimate) if estimate > 0 else 1.0
    changes = {}
    for name, floor in budget.floors.items():
        n = getattr(sizes, name)
        changes[name] = max(min(n, floor), math.floor(n * factor))
    cut_sizes = dataclasses.replace(sizes, **changes)
    counts = {name: (getattr(cut_sizes, name), getattr(sizes, name)) for name in budget.floors}
    return cut_sizes, Cut(hours, factor, estimate, counts)
