"""The Monitor's overhead on a training step: layer statistics every step and every 10 steps.

    python benchmarks/bench_monitor.py [--quick] [--threads N] [--steps S] [--rounds R]
                                       [--activation tanh|relu] [--optimizer inertia|torch]
                                       [--clock wall|cpu] [--json PATH]

Model: a 784-1000-500-250-30 MLP (``--activation``: tanh, the default, or relu; 1.5M parameters),
cross-entropy on a fixed batch of 256 random inputs and labels; one training step is
``zero_grad``, forward, backward, ``mon.step(t)``, then a Nesterov momentum update
(``inertia.optim.Momentum(lr=0.01, momentum=0.9, nesterov=True)``, or ``torch.optim.SGD`` with
the same settings for ``--optimizer torch``).

Paired single steps (``--paired N``, default 100): N triples of one step of a twin model without
a monitor, one recorded step and one unrecorded step of the monitored model, each timed alone; the
medians of the differences within a triple give the cost of a recorded and an unrecorded step,
robust to a shared machine's bursts (the figures the goals are read from).

``--breakdown N``: N recorded steps timed part by part (the hooks' moments, the batched summary,
the rest of ``mon.step``).

``--sum-of-squares N``: the ways to the sum of squares of the tensors one recorded step measures
(taken from a real step of the model), each timed over all of them with the caches flushed
first, median of N rounds, with its largest relative error against float64: the current one
(squares into a scratch buffer, torch's cascade sum), a float32 BLAS ``dot`` (one read, no write),
float32 norms of rows of 4096 with their squares summed in float64, and the plain sum of the
tensors (the other pass every form needs) for scale.

Cases: no monitor; ``Monitor(model, ["layer_stats"], every=1)`` and ``every=10`` (layer
statistics with histograms: activations, back-propagated gradients and weight gradients of every
layer, the records kept in memory); and the same two writing JSON lines to a file (``path=``, as
``inertia.experiments.train`` does). A monitor is built before its block and closed after it,
outside the timed region; the step counter runs on across blocks, so a block of S steps (a
multiple of 10) records S/10 of them at ``every=10``.

Timing: the cases take turns (one block of S steps of each case, then the next round), after one
warm-up block each, so that a slow moment of a shared machine falls on every case alike. Each
case reports the median over rounds of its mean time per step; the overhead of a case is the
median over rounds of (its block time / the no-monitor block time of the same round) - 1, and
the cost of one recorded step is (every-step time - no-monitor time). ``--clock cpu`` times with
the process's CPU time (``time.process_time``), which leaves out waiting for a core on a loaded
machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from _common import parse_args
from inertia import diagnostics as D
from inertia.optim import Momentum

CASES: dict[str, tuple[int | None, bool]] = {  # name -> (every, to a file)
    "no monitor": (None, False),
    "every step": (1, False),
    "every 10 steps": (10, False),
    "every step, JSON file": (1, True),
    "every 10 steps, JSON file": (10, True),
}


def build(sizes, batch: int, activation: str, seed: int = 0):
    torch.manual_seed(seed)
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    model = nn.Sequential(*layers)
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, sizes[-1], (batch,))
    return model, x, y


def measure(
    sizes, batch: int, activation: str, optimizer: str, steps: int, rounds: int, clock: Callable[[], float], tmp: Path
) -> dict[str, list[float]]:
    """Per case, the mean time per step of each round's block."""
    model, x, y = build(sizes, batch, activation)
    if optimizer == "inertia":
        opt = Momentum(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    t = 0

    def block(every: int | None, to_file: bool) -> float:
        nonlocal t
        mon = None
        if every is not None:
            path = tmp / f"diag_{t}.jsonl" if to_file else None
            mon = D.Monitor(model, ["layer_stats"], every=every, path=path)
        t0 = clock()
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            if mon is not None:
                mon.step(t)
            opt.step()
            t += 1
        dt = (clock() - t0) / steps
        if mon is not None:
            mon.close()
            if mon.path is not None:
                mon.path.unlink()
        return dt

    for every, to_file in CASES.values():  # warm-up
        block(every, to_file)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):
        for name, (every, to_file) in CASES.items():
            times[name].append(block(every, to_file))
    return times


def measure_paired(
    sizes, batch: int, activation: str, optimizer: str, triples: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Single steps timed one by one, in triples: a step of a twin model with no monitor, then a
    step the twin's monitored copy records and one it does not (``Monitor(every=2)``, built once:
    its hooks fire and return, ``mon.step`` discards). The medians of many single steps shrug off
    a shared machine's bursts, which a block's mean does not."""
    model, x, y = build(sizes, batch, activation)
    twin = copy.deepcopy(model)
    cls = Momentum if optimizer == "inertia" else torch.optim.SGD
    opts = {id(m): cls(m.parameters(), lr=0.01, momentum=0.9, nesterov=True) for m in (model, twin)}
    mon = D.Monitor(model, ["layer_stats"], every=2)

    def one(m: nn.Module, t: int | None) -> float:
        opt = opts[id(m)]
        t0 = clock()
        opt.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        if t is not None:
            mon.step(t)
        opt.step()
        return clock() - t0

    out: dict[str, list[float]] = {"no monitor": [], "recorded": [], "not recorded": []}
    for i in range(triples + 3):  # the first 3 triples warm up
        plain, rec, skip = one(twin, None), one(model, 2 * i), one(model, 2 * i + 1)
        if i >= 3:
            out["no monitor"].append(plain)
            out["recorded"].append(rec)
            out["not recorded"].append(skip)
    mon.close()
    return out


def measure_breakdown(sizes, batch: int, activation: str, steps: int, clock: Callable[[], float]) -> dict[str, float]:
    """Milliseconds per recorded step spent in the hooks' moments (``layers._measure``), in the
    batched summary (``layers._summaries``) and in the rest of ``mon.step``, over ``steps`` recorded
    training steps (after 5 unmeasured ones), timed by wrapping those functions."""
    from inertia.diagnostics import layers as LY

    model, x, y = build(sizes, batch, activation)
    opt = Momentum(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    acc = {"moments": 0.0, "summary": 0.0, "mon.step": 0.0}
    real_measure, real_summaries = LY._measure, LY._summaries

    def timed(fn, key):
        def wrapper(*a, **k):
            t0 = clock()
            try:
                return fn(*a, **k)
            finally:
                acc[key] += clock() - t0

        return wrapper

    LY._measure, LY._summaries = timed(real_measure, "moments"), timed(real_summaries, "summary")
    try:
        mon = D.Monitor(model, ["layer_stats"], every=1)
        for t in range(steps + 5):
            if t == 5:
                acc = dict.fromkeys(acc, 0.0)
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            t0 = clock()
            mon.step(t)
            acc["mon.step"] += clock() - t0
            opt.step()
        mon.close()
    finally:
        LY._measure, LY._summaries = real_measure, real_summaries
    return {
        "moments_ms": 1e3 * acc["moments"] / steps,
        "summary_ms": 1e3 * acc["summary"] / steps,
        "rest_of_step_ms": 1e3 * (acc["mon.step"] - acc["summary"]) / steps,
    }


def measure_sum_of_squares(sizes, batch: int, activation: str, rounds: int, clock: Callable[[], float]) -> dict:
    """Milliseconds per recorded step (median of ``rounds``, caches flushed before each) and the
    largest relative error against float64 of each way to the sum of squares of the tensors a
    recorded step measures."""
    from inertia.diagnostics import layers as LY

    model, x, y = build(sizes, batch, activation)
    seen: list[torch.Tensor] = []
    real = LY._measure

    def keep(t, *a, **k):
        seen.append(t.detach().reshape(-1).clone())
        return real(t, *a, **k)

    LY._measure = keep
    try:
        mon = D.Monitor(model, ["layer_stats"], every=1)
        nn.functional.cross_entropy(model(x), y).backward()
        mon.step(0)
        mon.close()
    finally:
        LY._measure = real
    buf = torch.empty(max(t.numel() for t in seen))
    flush = torch.ones(16 << 20)  # 64 MB, beyond the last-level cache

    def rows(f: torch.Tensor) -> torch.Tensor:
        k = f.numel() // 4096
        total = torch.linalg.vector_norm(f[k * 4096 :]).double().square()
        if k:
            total = total + torch.linalg.vector_norm(f[: k * 4096].view(k, 4096), dim=1).double().square().sum()
        return total

    ways = {
        "squares into a buffer, cascade sum (current)": lambda f: torch.mul(f, f, out=buf[: f.numel()]).sum(),
        "float32 BLAS dot": lambda f: torch.dot(f, f),
        "float32 row norms, float64 sum": rows,
        "the plain sum (for scale)": lambda f: f.sum(),
    }
    out = {}
    refs = [float((t.double() ** 2).sum()) for t in seen]
    for name, fn in ways.items():
        times = []
        for _ in range(rounds):
            flush.add_(1.0)
            t0 = clock()
            for t in seen:
                float(fn(t))
            times.append(clock() - t0)
        errors = [abs(float(fn(t)) - r) / r for t, r in zip(seen, refs, strict=True) if r > 0]
        plain = name.startswith("the plain sum")  # not a sum of squares: no error to give
        out[name] = {"ms": 1e3 * statistics.median(times), "max_relative_error": None if plain else max(errors)}
    out["tensors"] = len(seen)
    out["values"] = sum(t.numel() for t in seen)
    return out


def summarize_paired(times: dict[str, list[float]]) -> dict[str, float]:
    """Costs as medians of the differences within each triple (its three steps ran back to back,
    under the same load): a recorded step against the same model's unrecorded step (the same
    hooks, inert), and the unrecorded step against the twin without hooks (a few Python calls:
    zero within the noise, counted only when positive). Overheads are relative to the median
    step without a monitor."""
    plain, rec, skip = (times[k] for k in ("no monitor", "recorded", "not recorded"))
    base = statistics.median(plain)
    d_rec = statistics.median(r - s for r, s in zip(rec, skip, strict=True))
    d_skip = statistics.median(s - p for s, p in zip(skip, plain, strict=True))
    return {
        "ms_no_monitor": 1e3 * base,
        "ms_per_recorded_step": 1e3 * d_rec,
        "ms_per_unrecorded_step": 1e3 * d_skip,
        "overhead_every_step": (d_rec + max(d_skip, 0.0)) / base,
        "overhead_every_10_steps": (d_rec / 10 + max(d_skip, 0.0)) / base,
    }


def summarize(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    base = times["no monitor"]
    base_med = statistics.median(base)
    out = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {
            "ms_per_step": 1e3 * med,
            "overhead": statistics.median(a / b - 1 for a, b in zip(ts, base, strict=True)),
            "overhead_of_medians": med / base_med - 1,
        }
    for suffix in ("", ", JSON file"):
        out[f"every step{suffix}"]["ms_per_recorded_step"] = 1e3 * (
            statistics.median(times[f"every step{suffix}"]) - base_med
        )
    return out


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)  # the options the shared command line lacks
    extra.add_argument("--steps", type=int, default=None, help="steps per block (a multiple of 10)")
    extra.add_argument("--rounds", type=int, default=None, help="blocks per case (median reported)")
    extra.add_argument("--activation", choices=("tanh", "relu"), default="tanh")
    extra.add_argument("--optimizer", choices=("inertia", "torch"), default="inertia")
    extra.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    extra.add_argument("--json", default=None, help="write the figures here")
    extra.add_argument("--paired", type=int, default=None, help="single-step triples (0: none)")
    extra.add_argument("--breakdown", type=int, default=0, help="recorded steps timed part by part (0: none)")
    extra.add_argument("--sum-of-squares", type=int, default=0, help="rounds timing the ways to the sums of squares")
    known, sys.argv[1:] = extra.parse_known_args()
    args = parse_args(__doc__)
    steps = known.steps or (10 if args.quick else 20)
    if steps % 10:
        raise SystemExit(f"--steps must be a multiple of 10, got {steps}")
    rounds = known.rounds or (2 if args.quick else 7)
    sizes = [784, 200, 100, 30] if args.quick else [784, 1000, 500, 250, 30]
    batch = 64 if args.quick else 256
    clock = time.perf_counter if known.clock == "wall" else time.process_time
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, {known.clock} clock, MLP "
        f"{'-'.join(map(str, sizes))} {known.activation}, batch {batch}, {known.optimizer} Nesterov momentum; "
        f"median of {rounds} rounds of {steps} steps per case, cases in turns"
    )
    with tempfile.TemporaryDirectory() as tmp:
        times = measure(sizes, batch, known.activation, known.optimizer, steps, rounds, clock, Path(tmp))
    res = summarize(times)
    print(f"{'case':28s} {'ms/step':>9s} {'overhead':>9s}")
    for name, r in res.items():
        print(f"{name:28s} {r['ms_per_step']:9.2f} {100 * r['overhead']:8.1f}%")
    for name in ("every step", "every step, JSON file"):
        print(f"one recorded step ({name}): {res[name]['ms_per_recorded_step']:.2f} ms")
    triples = known.paired if known.paired is not None else (5 if args.quick else 100)
    paired = {}
    if triples:
        ptimes = measure_paired(sizes, batch, known.activation, known.optimizer, triples, clock)
        paired = summarize_paired(ptimes)
        print(
            f"single steps, median of {triples}: no monitor {paired['ms_no_monitor']:.2f} ms; recorded step "
            f"+{paired['ms_per_recorded_step']:.2f} ms ({100 * paired['overhead_every_step']:.1f}%); unrecorded "
            f"step +{paired['ms_per_unrecorded_step']:.3f} ms; every 10 steps "
            f"{100 * paired['overhead_every_10_steps']:.1f}%"
        )
    breakdown = {}
    if known.breakdown:
        breakdown = measure_breakdown(sizes, batch, known.activation, known.breakdown, clock)
        print(
            f"per recorded step, in the training loop: moments {breakdown['moments_ms']:.2f} ms, summary "
            f"{breakdown['summary_ms']:.2f} ms, the rest of mon.step {breakdown['rest_of_step_ms']:.2f} ms"
        )
    squares = {}
    if known.sum_of_squares:
        squares = measure_sum_of_squares(sizes, batch, known.activation, known.sum_of_squares, clock)
        print(f"sums of squares of one recorded step's {squares['tensors']} tensors ({squares['values']:,} values):")
        for name, r in squares.items():
            if isinstance(r, dict):
                err = (
                    "" if r["max_relative_error"] is None else f", largest relative error {r['max_relative_error']:.1e}"
                )
                print(f"  {name}: {r['ms']:.2f} ms{err}")
    if known.json:
        Path(known.json).write_text(
            json.dumps(
                {
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "clock": known.clock,
                    "sizes": sizes,
                    "batch": batch,
                    "activation": known.activation,
                    "optimizer": known.optimizer,
                    "steps": steps,
                    "rounds": rounds,
                    "summary": res,
                    "times_s": times,
                    "paired": paired,
                    "breakdown": breakdown,
                    "sum_of_squares": squares,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
