"""K runs of one shape trained as one stack (``experiments.train_stacked``) against the same K runs
trained one after another (``experiments.train``), at the papers' sizes: seconds per update of all
K runs, and the ratio (stacked / one after another; below 1: stacking wins).

Shapes: Sutskever et al.'s addition RNN (T = 80, 100 tanh units, batch 100), the full CURVES
autoencoder (784-400-200-100-50-25-6 and its mirror, batch 200), and Hu et al.'s deep linear nets
(16 examples, full batch, float64) narrow-and-deep and wide. Each measurement runs both ways for
``--steps`` updates with one evaluation at the end, after a short warm-up run of each.

Command: ``.venv/bin/python benchmarks/bench_stacked.py --threads 1`` (``--quick``: fewer updates).
"""

from __future__ import annotations

import time

from _common import parse_args
from inertia.experiments import train
from inertia.experiments.config import from_dict
from inertia.experiments.stacked import train_stacked
from inertia.reproduce import hu2020, sutskever2013


def _cases(steps: int) -> dict:
    full = sutskever2013.get_config(quick=False)
    add = full["addition"].replace(**{"data.n": 2000, "steps": steps, "eval_every": steps, "stop_when": None})
    add_runs = [sutskever2013._rnn_config(add, mu, lr, s) for mu, lr in ((0.995, 0.003), (0.0, 0.02)) for s in range(3)]
    ae = full["autoencoder"].replace(**{"data.n": 2000, "steps": steps, "eval_every": steps})
    ae_runs = [sutskever2013._ae_config(ae, mu, nes, 0.005) for _, mu, nes, _ in full["grid"]["ae_settings"][:6]]
    hu = hu2020.get_config(quick=False)["base"].replace(steps=steps, eval_every=steps)
    cases = {"addition RNN T=80 H=100, K=6": add_runs, "CURVES autoencoder (full), K=6": ae_runs}
    for width, depth in ((32, 128), (256, 64)):
        cells = [hu2020.cell_config(hu, width, depth, init, 1e-4, seed=s) for init in hu2020.INITS for s in range(2)]
        cases[f"deep linear m={width} L={depth}, K=4"] = cells
    return {name: [from_dict(c.to_dict()) for c in runs] for name, runs in cases.items()}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    args = parse_args(__doc__)
    steps = 10 if args.quick else 100
    print(f"torch threads: {args.threads}; {steps} updates per run\n")
    print("| runs | K | one after another (ms / update of all K) | stacked (ms) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in _cases(steps).items():
        warm = [r.replace(steps=2, eval_every=2) for r in runs]
        train_stacked(warm)
        for r in warm:
            train(r)
        alone = _time(lambda runs=runs: [train(r) for r in runs])
        stacked = _time(lambda runs=runs: train_stacked(runs))
        k = len(runs)
        print(f"| {name} | {k} | {1e3 * alone / steps:.1f} | {1e3 * stacked / steps:.1f} | {stacked / alone:.2f} |")


if __name__ == "__main__":
    main()
