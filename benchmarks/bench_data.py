"""Generation time of inertia's data sets against the budget (10,000 examples in 5 s), and the
tanh RNN's hand-written BPTT against autograd's step-by-step graph, in the same run.

    python benchmarks/bench_data.py [--quick] [--threads N]

Each generator is timed once on a fresh draw of n examples, after the packages it uses are
imported (import time excluded); the RNN by the median of repeated forward + backward passes.
Ratios: time / budget (below 1 is within budget) and hand-written / autograd (below 1 is faster).
"""

from __future__ import annotations

import functools
import time

import torch

from _common import median_time, parse_args
from inertia import data as D
from inertia import models as M

BUDGET_S = 5.0  # per 10,000 examples


def main() -> None:
    args = parse_args(__doc__)
    import mnist1d.data  # noqa: F401  (imports are not generation time)
    import scipy.ndimage  # noqa: F401
    import sklearn.datasets  # noqa: F401

    n = 1000 if args.quick else 10_000
    budget = BUDGET_S * n / 10_000
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {n} examples each, budget {budget:.1f} s")
    cases = [
        ("shapeset", lambda: D.shapeset(n, seed=0)),
        ("shapeset_easy", lambda: D.shapeset(n, seed=0, easy=True)),
        ("curves", lambda: D.curves(n, seed=0)),
        ("addition T=80", lambda: D.rnn_task("addition", n, 80)),
        ("multiplication T=80", lambda: D.rnn_task("multiplication", n, 80)),
        ("memorization5 T=200", lambda: D.rnn_task("memorization5", n, 200)),
        ("memorization20 T=80", lambda: D.rnn_task("memorization20", n, 80)),
        ("temporal_order T=100", lambda: D.rnn_task("temporal_order", n, 100)),
        ("deep_linear_regression (n=16)", lambda: D.deep_linear_regression(seed=0)),
        ("mnist1d", lambda: D.mnist1d(n - n // 5, n // 5, seed=0)),
        ("digits (all 1797)", lambda: D.digits(seed=0)),
    ]
    print(f"{'generator':32s} {'time (s)':>9s} {'/ budget':>9s}")
    for name, fn in cases:
        t0 = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        print(f"{name:32s} {elapsed:9.3f} {elapsed / budget:9.3f}")

    print("\ntanh RNN forward + backward, batch 100, 100 hidden units, 2 inputs, output at the last step")
    print(f"{'T':>5s} {'hand-written (ms)':>18s} {'autograd (ms)':>14s} {'ratio':>6s}")
    for steps in (80,) if args.quick else (40, 80, 200):
        rnn = M.TanhRNN(2, 100, 1, output="last")
        step = functools.partial(_rnn_update, rnn, torch.randn(100, steps, 2))
        times = {}
        for fast in (True, False):
            rnn.fast_bptt = fast
            times[fast] = median_time(step, repeats=5 if args.quick else 15)
        print(f"{steps:5d} {times[True] * 1e3:18.1f} {times[False] * 1e3:14.1f} {times[True] / times[False]:6.2f}")


def _rnn_update(rnn: M.TanhRNN, x: torch.Tensor) -> None:
    """One forward and backward pass of ``rnn`` on ``x`` (the gradients are what is timed)."""
    rnn.zero_grad()
    rnn(x).pow(2).sum().backward()


if __name__ == "__main__":
    main()
