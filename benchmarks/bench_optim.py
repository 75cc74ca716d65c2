"""inertia.optim.Momentum against torch.optim.SGD (fused=True and foreach=True), measured in the same run.

    python benchmarks/bench_optim.py [--quick] [--threads N] [--repeats R] [--dtypes float32,bfloat16]
                                     [--clock wall|cpu]

For each parameter set and dtype it times one ``step()`` of: torch SGD(momentum=0.9) and
SGD(momentum=0.9, nesterov=True), each with fused=True and with foreach=True; inertia CM and NAG
with the Sutskever momentum schedule (``sutskever_momentum(0.99, period=5)``: mu changes every 5
steps, so timed blocks include updates at which it changes) on the default path, and with the
constant momentum 0.9. The memory floor: a momentum step must read theta, g, v and write theta,
v (5 tensor transfers); the script times 6 transfers over the same three sets of tensors,
``torch._foreach_add_(thetas, grads)`` then ``torch._foreach_add_(velocities, grads)``, and takes
5/6 of it. (5/3 of one add over theta and g alone, the older floor, is too low where theta and g
fit in the last-level cache and theta, g and v do not: the autoencoder's float32 tensors on a
32 MiB L3.)

Timing: the cases are measured in turns (one block of steps of each case, then the next round),
and each reports the median over rounds of the mean time per step in a block, so that a slow
moment of a shared machine falls on every case alike. ``--clock cpu`` times with the process's
CPU time (``time.process_time``) instead of the wall clock: on a loaded machine it leaves out the
time the process waits for a core; with ``--threads 1`` it is the time of the one thread.

Ratios are ours / torch (below 1.0: inertia is faster). Where torch's fused kernel is wrong for
the dtype on this device (``inertia.optim.functional.fused_kernel_applies`` is False: in torch
2.13, bfloat16 and float16 on CPU, pytorch/pytorch#191763), the script says so: that peer skips
most of the update, and inertia takes its foreach path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch

from _common import parse_args
from inertia.optim import Momentum, schedules
from inertia.optim.functional import fused_kernel_applies

FLOOR = "floor (5/6 x 2 foreach_add_)"


def autoencoder_shapes():
    sizes = [784, 1000, 500, 250, 30]
    enc = list(zip(sizes[:-1], sizes[1:], strict=False))
    dec = [(b, a) for a, b in reversed(enc)]
    shapes = []
    for a, b in enc + dec:
        shapes += [(b, a), (b,)]
    return shapes  # 16 tensors


def small_shapes():
    return [(32, 32)] * 100 + [(32,)] * 100  # 200 tensors


def make_params(shapes, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, generator=g).to(dtype)) for s in shapes]
    for p in ps:
        p.grad = (torch.randn(p.shape, generator=g) * 1e-3).to(dtype)
    return ps


def optimizers() -> dict[str, tuple[Callable, str | None]]:
    """name -> (params -> optimizer, the torch case it is compared with)."""
    sched = schedules.sutskever_momentum(0.99, period=5)
    sgd = torch.optim.SGD
    return {
        "torch SGD momentum fused": (lambda p: sgd(p, lr=0.01, momentum=0.9, fused=True), None),
        "torch SGD momentum foreach": (lambda p: sgd(p, lr=0.01, momentum=0.9, foreach=True), None),
        "inertia CM (schedule)": (lambda p: Momentum(p, lr=0.01, momentum=sched), "torch SGD momentum"),
        "inertia CM (mu 0.9)": (lambda p: Momentum(p, lr=0.01, momentum=0.9), "torch SGD momentum"),
        "torch SGD nesterov fused": (lambda p: sgd(p, lr=0.01, momentum=0.9, nesterov=True, fused=True), None),
        "torch SGD nesterov foreach": (lambda p: sgd(p, lr=0.01, momentum=0.9, nesterov=True, foreach=True), None),
        "inertia NAG (schedule)": (lambda p: Momentum(p, lr=0.01, momentum=sched, nesterov=True), "torch SGD nesterov"),
        "inertia NAG (mu 0.9)": (lambda p: Momentum(p, lr=0.01, momentum=0.9, nesterov=True), "torch SGD nesterov"),
    }


def time_in_turns(
    fns: dict[str, Callable[[], object]], block: int, rounds: int, clock: Callable[[], float]
) -> dict[str, float]:
    """Median over ``rounds`` of the mean time of ``block`` calls, the cases taking turns."""
    for fn in fns.values():  # warm-up: allocates the state
        for _ in range(block):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = clock()
            for _ in range(block):
                fn()
            times[name].append((clock() - t0) / block)
    return {name: statistics.median(ts) for name, ts in times.items()}


def measure(shapes, dtype: torch.dtype, block: int, rounds: int, clock: Callable[[], float]) -> dict[str, float]:
    ps = make_params(shapes, dtype)
    grads, data, velocities = [p.grad for p in ps], [p.detach() for p in ps], [torch.zeros_like(p) for p in ps]

    def floor() -> None:
        torch._foreach_add_(data, grads)
        torch._foreach_add_(velocities, grads)

    fns: dict[str, Callable[[], object]] = {FLOOR: floor}
    for name, (ctor, _) in optimizers().items():
        fns[name] = ctor(make_params(shapes, dtype)).step
    times = time_in_turns(fns, block, rounds, clock)
    times[FLOOR] *= 5 / 6
    return times


def report(times: dict[str, float], fused_ok: bool) -> None:
    print(f"{'case':28s} {'us/step':>9s} {'vs fused':>9s} {'vs foreach':>10s} {'vs floor':>9s}")
    peers = {name: peer for name, (_, peer) in optimizers().items() if peer}
    for name, t in times.items():
        ratios = ["", ""]
        if name in peers:
            ratios = [f"{t / times[f'{peers[name]} {kind}']:.2f}" for kind in ("fused", "foreach")]
        print(f"{name:28s} {t * 1e6:9.1f} {ratios[0]:>9s} {ratios[1]:>10s} {t / times[FLOOR]:9.2f}")
    if not fused_ok:
        print("  torch's fused kernel is wrong for this dtype here (it skips whole vector blocks);")
        print("  'vs fused' compares with a kernel that does not do the update; inertia runs foreach")


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)  # the option the shared command line lacks
    extra.add_argument("--dtypes", default="float32,bfloat16")
    extra.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    known, sys.argv[1:] = extra.parse_known_args()
    clock = time.perf_counter if known.clock == "wall" else time.process_time
    dtypes = [getattr(torch, name) for name in known.dtypes.split(",")]
    args = parse_args(__doc__, repeats=True)
    rounds = args.repeats or (3 if args.quick else 15)
    block = 5 if args.quick else 20
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, {known.clock} clock, median of "
        f"{rounds} rounds of {block} steps per case, cases in turns"
    )
    for label, shapes in (
        ("autoencoder 784-1000-500-250-30 + mirror", autoencoder_shapes()),
        ("200 small tensors", small_shapes()),
    ):
        n = sum(torch.Size(s).numel() for s in shapes)
        for dtype in dtypes:
            print(f"\n{label}: {len(shapes)} tensors, {n / 1e6:.2f}M values, {dtype}")
            report(measure(shapes, dtype, block, rounds, clock), fused_kernel_applies("cpu", dtype))


if __name__ == "__main__":
    main()
