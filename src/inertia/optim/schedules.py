"""Schedules: plain callables ``step -> value`` (as in optax), for momentum and learning rate.

``step`` counts an optimizer's updates from 0. Every schedule here is a small picklable object
with a readable ``repr`` (so it can live in an optimizer's ``state_dict`` and in configs), and
``plot(schedule, steps)`` draws any schedule, including a user's own function.

The schedule of Sutskever, Martens, Dahl & Hinton (2013, eq. 5)::

    mu_t = min(1 - 2 ** (-1 - log2(floor(t / 250) + 1)), mu_max)
         = min(1 - 1 / (2 * (floor(t / 250) + 1)), mu_max)

is 0.5 for t < 250, then 0.75, 0.8333, 0.875, 0.9 at t = 1000, ..., capped at mu_max; with
``total_steps`` set, the last ``final_steps`` updates use ``final_momentum`` (0.9 in the paper,
section 7: lowering mu at the end lowers the final training error).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .._registry import Registry
from ..validation import accepted_number, check_integer, check_number

Schedule = Callable[[int], float]

__all__ = [
    "sutskever_momentum",
    "constant",
    "step_decay",
    "exponential_decay",
    "linear_warmup",
    "cosine",
    "join",
    "plot",
    "get",
    "available",
    "from_config",
]


def _check_step(step) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        try:
            if int(step) == step and step >= 0:
                return int(step)
        except (TypeError, ValueError):
            pass
        raise ValueError(f"step must be {accepted_number(0, integer=True)}, got {step!r}")
    return step


class _Base:
    """Shared ``repr``: ``name(arg=value, ...)`` from the constructor arguments."""

    _fields: tuple = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + tuple(repr(getattr(self, f)) for f in self._fields))


class sutskever_momentum(_Base):  # noqa: N801 - a schedule reads like a function
    """Sutskever et al. (2013) momentum schedule (eq. 5), with the optional final phase.

    Args:
        mu_max: cap, in [0, 1); 0 gives plain SGD.
        period: updates per step of the schedule (250 in the paper).
        total_steps: if set, the last ``final_steps`` updates use ``min(final_momentum, mu_max)``
            (the final phase never raises momentum above the cap).
        final_steps: length of the final phase (1000 in the paper).
        final_momentum: momentum of the final phase (0.9 in the paper).
    """

    _fields = ("mu_max", "period", "total_steps", "final_steps", "final_momentum")

    def __init__(
        self,
        mu_max: float,
        period: int = 250,
        total_steps: int | None = None,
        final_steps: int = 1000,
        final_momentum: float = 0.9,
    ) -> None:
        self.mu_max = check_number("mu_max", mu_max, lo=0, hi=1, hi_open=True)
        self.period = check_integer("period", period, lo=1)
        self.total_steps = None if total_steps is None else check_integer("total_steps", total_steps, lo=0)
        self.final_steps = check_integer("final_steps", final_steps, lo=0)
        self.final_momentum = check_number("final_momentum", final_momentum, lo=0, hi=1, hi_open=True)

    def __call__(self, step: int) -> float:
        t = _check_step(step)
        if self.total_steps is not None and t >= self.total_steps - self.final_steps:
            return min(self.final_momentum, self.mu_max)
        k = t // self.period
        return min(1.0 - 2.0 ** (-1.0 - math.log2(k + 1)), self.mu_max)


class constant(_Base):  # noqa: N801
    """The same value at every step."""

    _fields = ("value",)

    def __init__(self, value: float) -> None:
        self.value = check_number("value", value)

    def __call__(self, step: int) -> float:
        _check_step(step)
        return self.value


class step_decay(_Base):  # noqa: N801
    """``init * factor ** floor(step / every)``."""

    _fields = ("init", "factor", "every")

    def __init__(self, init: float, factor: float = 0.1, every: int = 1000) -> None:
        self.init = check_number("init", init)
        self.factor = check_number("factor", factor, lo=0)
        self.every = check_integer("every", every, lo=1)

    def __call__(self, step: int) -> float:
        return self.init * self.factor ** (_check_step(step) // self.every)


class exponential_decay(_Base):  # noqa: N801
    """``init * rate ** (step / decay_steps)`` (smooth)."""

    _fields = ("init", "rate", "decay_steps")

    def __init__(self, init: float, rate: float = 0.5, decay_steps: int = 1000) -> None:
        self.init = check_number("init", init)
        self.rate = check_number("rate", rate, lo=0)
        self.decay_steps = check_integer("decay_steps", decay_steps, lo=1)

    def __call__(self, step: int) -> float:
        return self.init * self.rate ** (_check_step(step) / self.decay_steps)


class linear_warmup(_Base):  # noqa: N801
    """Linear from ``init`` at step 0 to ``peak`` at ``warmup_steps``, then ``peak``."""

    _fields = ("peak", "warmup_steps", "init")

    def __init__(self, peak: float, warmup_steps: int, init: float = 0.0) -> None:
        self.peak = check_number("peak", peak)
        self.warmup_steps = check_integer("warmup_steps", warmup_steps, lo=1)
        self.init = check_number("init", init)

    def __call__(self, step: int) -> float:
        t = _check_step(step)
        if t >= self.warmup_steps:
            return self.peak
        return self.init + (self.peak - self.init) * t / self.warmup_steps


class cosine(_Base):  # noqa: N801
    """Cosine decay from ``init`` to ``final`` over ``total_steps``, then ``final``
    (Loshchilov & Hutter 2017, without restarts)."""

    _fields = ("init", "total_steps", "final")

    def __init__(self, init: float, total_steps: int, final: float = 0.0) -> None:
        self.init = check_number("init", init)
        self.total_steps = check_integer("total_steps", total_steps, lo=1)
        self.final = check_number("final", final)

    def __call__(self, step: int) -> float:
        t = min(_check_step(step), self.total_steps)
        return self.final + 0.5 * (self.init - self.final) * (1 + math.cos(math.pi * t / self.total_steps))


class join(_Base):  # noqa: N801
    """Piecewise schedule: ``schedules[i]`` from ``boundaries[i-1]`` on, seeing ``step - boundary``
    (optax's ``join_schedules``). Needs ``len(boundaries) == len(schedules) - 1``, increasing."""

    _fields = ("schedules", "boundaries")

    def __init__(self, schedules: Sequence[Schedule], boundaries: Sequence[int]) -> None:
        schedules, boundaries = list(schedules), list(boundaries)
        if not schedules or not all(callable(s) for s in schedules):
            raise ValueError(f"schedules must be a non-empty list of callables, got {schedules!r}")
        if len(boundaries) != len(schedules) - 1:
            raise ValueError(
                f"join needs len(boundaries) == len(schedules) - 1, got {len(boundaries)} boundaries "
                f"for {len(schedules)} schedules"
            )
        for b in boundaries:
            check_integer("boundary", b, lo=0)
        if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:], strict=False)):
            raise ValueError(f"boundaries must be strictly increasing, got {boundaries}")
        self.schedules, self.boundaries = schedules, boundaries

    def __call__(self, step: int) -> float:
        t = _check_step(step)
        start = 0
        for sched, b in zip(self.schedules, self.boundaries, strict=False):
            if t < b:
                return float(sched(t - start))
            start = b
        return float(self.schedules[-1](t - start))


REGISTRY: Registry[Callable[..., Schedule]] = Registry("schedule")
for _cls in (sutskever_momentum, constant, step_decay, exponential_decay, linear_warmup, cosine):
    REGISTRY.register(_cls.__name__, _cls)


def get(name: str) -> Callable[..., Schedule]:
    """The schedule factory registered as ``name`` (unknown names list the known ones)."""
    return REGISTRY.get(name)


def available() -> list[str]:
    return REGISTRY.available()


def from_config(spec) -> Schedule:
    """A schedule from a config: a number (constant), or ``{"name": ..., **kwargs}``."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return constant(spec)
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"a schedule config must be a number or a mapping with 'name', got {spec!r}")
    kw = dict(spec)
    factory = get(kw.pop("name"))
    try:
        return factory(**kw)
    except TypeError as e:
        raise ValueError(f"schedule {spec['name']!r}: {e}") from None


def plot(schedule: Schedule, steps: int, ax=None, path=None, label: str | None = None):
    """Plot ``schedule`` over ``range(steps)``; save to ``path`` (PNG/SVG by suffix) if given.
    Returns the matplotlib figure.

    On its own figure the schedule's description (``label`` or its repr, wrapped) is the title;
    on an ``ax`` of the caller's (several schedules in one plot) it is a legend entry, and the
    legend goes below the axes so that it never covers the curves."""
    import textwrap

    steps = check_integer("steps", steps, lo=1)
    text = label or repr(schedule)
    own = ax is None
    if own:  # a Figure without pyplot: the user's backend is left alone
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 3.5))
        ax = fig.subplots()
    else:
        fig = ax.figure
    xs = list(range(steps))
    ax.plot(xs, [schedule(t) for t in xs], label=text)
    ax.set_xlabel("update")
    ax.set_ylabel("value")
    ax.grid(alpha=0.3)
    if own:
        ax.set_title(textwrap.fill(text, 70), fontsize="small")
        fig.tight_layout()
    else:
        n = len(ax.get_lines())
        ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(n, 2), frameon=False)
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
    return fig
