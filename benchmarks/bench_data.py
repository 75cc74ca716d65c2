"""Generation time of inertia's data sets (budget: 10,000 examples in 5 s on 2 cores), and the
tanh RNN's hand-written BPTT against autograd, in the same run.

    python benchmarks/bench_data.py [--quick] [--threads N]
"""

from __future__ import annotations

import statistics
import time

import torch
from _common import parse_args

from inertia import data as D
from inertia import models as M


def main() -> None:
    args = parse_args(__doc__)
    n = 1000 if args.quick else 10_000
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {n} examples each, budget 5 s per 10,000")
    cases = [
        ("shapeset", lambda: D.shapeset(n, seed=0)),
        ("shapeset (easy)", lambda: D.shapeset(n, seed=0, easy=True)),
        ("curves", lambda: D.curves(n, seed=0)),
        ("addition T=80", lambda: D.rnn_task("addition", n, 80)),
        ("memorization 5-bit T=200", lambda: D.rnn_task("memorization", n, 200)),
        ("memorization 20-bit T=80", lambda: D.rnn_task("memorization", n, 80, bits=20)),
        ("temporal_order T=100", lambda: D.rnn_task("temporal_order", n, 100)),
        ("deep_linear_regression", lambda: D.deep_linear_regression(seed=0)),
        ("mnist1d (uncached)", lambda: D.mnist1d(int(0.8 * n), n - int(0.8 * n), cache=False)),
    ]
    print(f"{'generator':28s} {'time (s)':>9s} {'x budget':>9s}")
    for name, fn in cases:
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        print(f"{name:28s} {t:9.2f} {t / (5.0 * n / 10_000):9.2f}")

    print("\ntanh RNN forward + backward (batch 100, 100 hidden, T=80): hand-written BPTT vs autograd")
    rnn = M.TanhRNN(2, 100, 1, output="last")
    x = torch.randn(100, 80, 2)
    res = {}
    for fast in (True, False):
        rnn.fast_bptt = fast
        times = []
        for i in range(5 if args.quick else 20):
            t0 = time.perf_counter()
            rnn.zero_grad()
            rnn(x).pow(2).sum().backward()
            if i:
                times.append(time.perf_counter() - t0)
        res[fast] = statistics.median(times)
    print(f"hand-written {res[True] * 1e3:.1f} ms, autograd {res[False] * 1e3:.1f} ms, ratio {res[True] / res[False]:.2f}")


if __name__ == "__main__":
    main()
