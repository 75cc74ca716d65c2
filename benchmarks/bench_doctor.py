"""Time of ``inertia.doctor`` on a 784-1000-500-250-30 tanh MLP with batch 256 (goal: under 5 s
on 2 cores), with and without the curvature checks, and the time of one plain
forward/backward for scale.

    python benchmarks/bench_doctor.py [--quick] [--threads N]
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

import inertia.init as I
from _common import parse_args
from inertia import models as M
from inertia.doctor import doctor


def main() -> None:
    args = parse_args(__doc__)
    sizes = [784, 200, 100, 30] if args.quick else [784, 1000, 500, 250, 30]
    torch.manual_seed(0)
    model = M.mlp(sizes, "tanh")
    I.apply(model, "glorot_uniform", generator=torch.Generator().manual_seed(0))
    x, y = torch.rand(256, sizes[0]), torch.randint(0, sizes[-1], (256,))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, MLP {'-'.join(map(str, sizes))}, batch 256")
    fb = []
    for _ in range(5):
        t0 = time.perf_counter()
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        fb.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    print(f"one forward/backward: {statistics.median(fb) * 1e3:.1f} ms")
    for label, kw in (
        ("doctor (full, with lr check)", dict(lr=0.1, momentum=0.9, nesterov=True)),
        ("doctor (no curvature)", dict(curvature_checks=False)),
    ):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            report = doctor(model, x, y, **kw)
            times.append(time.perf_counter() - t0)
        print(
            f"{label:32s} {statistics.median(times):6.2f} s  (goal 5 s: ratio {statistics.median(times) / 5:.2f}); "
            f"{len(report.findings)} finding(s)"
        )


if __name__ == "__main__":
    main()
