"""Random search: config keys sampled from ranges instead of listed on a grid.

A search space is ``{dotted key: Distribution}``, parsed from ``key=loguniform(1e-4,1e-1)``-style
entries (``uniform(a,b)``, ``loguniform(a,b)``, ``randint(a,b)`` for integers a <= k < b,
``choice(v1,v2,...)``). :func:`sample_points` draws ``samples`` points from a seeded generator of
its own (the global RNG is untouched), so the same space, count and seed give the same points in
every process: a resumed sweep finds the same trials, and the local pool and Ray run the same ones.

    >>> space = parse_space(["optimizer.lr=loguniform(1e-4,1e-1)", "schedule.mu_max=choice(0.9,0.99)"])
    >>> space["optimizer.lr"]
    loguniform(0.0001, 0.1)
    >>> points = sample_points(space, 3, seed=0)
    >>> len(points), sorted(points[0])
    (3, ['optimizer.lr', 'schedule.mu_max'])
    >>> points == sample_points(space, 3, seed=0)
    True
    >>> all(1e-4 <= p["optimizer.lr"] < 1e-1 and p["schedule.mu_max"] in (0.9, 0.99) for p in points)
    True
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .config import ConfigError, parse_value

__all__ = ["KINDS", "Distribution", "parse_space", "sample_points"]

KINDS = ("uniform", "loguniform", "randint", "choice")
_ENTRY = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=\s*([a-z]+)\s*\((.*)\)\s*$")
_EXAMPLE = "e.g. optimizer.lr=loguniform(1e-4,1e-1)"


@dataclass(frozen=True)
class Distribution:
    """One key's range: ``kind`` (one of :data:`KINDS`) and its arguments."""

    kind: str
    args: tuple

    def __repr__(self) -> str:
        return f"{self.kind}({', '.join(repr(a) for a in self.args)})"

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "uniform":
            return rng.uniform(*self.args)
        if self.kind == "loguniform":
            lo, hi = self.args
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.kind == "randint":
            return rng.randrange(*self.args)
        return self.args[rng.randrange(len(self.args))]


def _distribution(entry: str, kind: str, texts: list[str]) -> Distribution:
    if kind not in KINDS:
        raise ConfigError(f"space entry {entry!r}: unknown distribution {kind!r}; accepted: {', '.join(KINDS)}")
    values = [parse_value(t) for t in texts]
    if kind == "choice":
        if not values:
            raise ConfigError(f"space entry {entry!r}: choice needs at least one value")
        return Distribution(kind, tuple(values))
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"space entry {entry!r}: {kind} takes two numbers, low and high ({_EXAMPLE})")
    lo, hi = values
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"space entry {entry!r}: {kind} needs finite low < high, got {lo!r} and {hi!r}")
    if kind == "loguniform" and lo <= 0:
        raise ConfigError(f"space entry {entry!r}: loguniform needs 0 < low, got {lo!r}")
    if kind == "randint":
        if not all(isinstance(v, int) for v in values):
            raise ConfigError(f"space entry {entry!r}: randint takes two integers, got {lo!r} and {hi!r}")
        return Distribution(kind, (lo, hi))
    return Distribution(kind, (float(lo), float(hi)))


def parse_space(items: Sequence[str]) -> dict[str, Distribution]:
    """``["optimizer.lr=loguniform(1e-4,1e-1)", ...]`` -> {key: Distribution}; a malformed entry,
    an unknown distribution, bad bounds or a key given twice is a ConfigError naming the entry."""
    space: dict[str, Distribution] = {}
    for item in items:
        m = _ENTRY.match(item)
        if m is None:
            raise ConfigError(
                f"space entry {item!r} must look like key=KIND(args) with KIND one of {', '.join(KINDS)} ({_EXAMPLE})"
            )
        key, kind, args = m.groups()
        if key in space:
            raise ConfigError(f"space key {key!r} is given twice")
        space[key] = _distribution(item, kind, [t.strip() for t in args.split(",") if t.strip()])
    return space


def sample_points(space: dict[str, Distribution], samples: int, seed: int = 0) -> list[dict]:
    """``samples`` points of ``space`` (each a {key: value} dict), drawn by a generator seeded
    with ``seed`` alone, keys in sorted order; equal points are drawn again (at most a few times
    the count, then a ConfigError: the space is too small for that many distinct points)."""
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise ConfigError(f"samples must be a positive integer, got {samples!r}")
    if not space:
        raise ConfigError("a random search needs a space (key=loguniform(lo,hi) entries)")
    rng = random.Random(seed)
    points: list[dict] = []
    seen: set = set()
    for _ in range(20 * samples + 100):
        point = {k: space[k].sample(rng) for k in sorted(space)}
        key = repr(sorted(point.items()))
        if key not in seen:
            seen.add(key)
            points.append(point)
            if len(points) == samples:
                return points
    raise ConfigError(f"the space {space} has fewer than {samples} distinct points; lower samples")
