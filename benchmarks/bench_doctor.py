"""Time of ``inertia.doctor`` on a 784-1000-500-250-30 tanh MLP with batch 256 (goal: under 5 s
on 2 cores), with and without the curvature checks, and the time of one plain
forward/backward for scale; then on a ResNet18-sized convnet (11.2M parameters, the model of
``_curvature_at_scale.py``; batch 16 of 3x32x32, NAG lr 0.1 momentum 0.9, the standard recipe;
goal: under 15 s); then on each member of the test zoo (tests/zoo.py: ResNet, MobileNet, VGG,
GPT, BERT, LSTM, GRU, decoder, Conv1d, Conv3d; lr 0.01, momentum 0.9; goal: under 5 s each). Each
doctor call includes its trial run (capped at ``trial_seconds``, 5 s).

    python benchmarks/bench_doctor.py [--quick] [--threads N]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

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
        _show(label, times, 5.0, report)
    resnet_case(args.quick)
    zoo_case()


def zoo_case() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from zoo import ZOO

    for name, build in ZOO.items():
        torch.manual_seed(0)
        model, x, y, loss = build()
        t0 = time.perf_counter()
        report = doctor(model, x, y, loss_fn=loss, lr=0.01, momentum=0.9)
        _show(f"zoo {name}", [time.perf_counter() - t0], 5.0, report)


def _show(label: str, times: list[float], goal: float, report) -> None:
    t = statistics.median(times)
    trial = report.trial or {}
    print(
        f"{label:32s} {t:6.2f} s  (goal {goal:g} s: ratio {t / goal:.2f}); {len(report.findings)} finding(s); "
        f"trial {trial.get('steps_run', 0)} updates{' (cut by its time cap)' if trial.get('out_of_time') else ''}"
    )


def resnet_case(quick: bool) -> None:
    from _curvature_at_scale import resnet18

    torch.manual_seed(0)
    model = resnet18()
    n = 4 if quick else 16
    x, y = torch.randn(n, 3, 32, 32), torch.randint(0, 10, (n,))
    params = sum(p.numel() for p in model.parameters())
    print(f"ResNet18-sized convnet ({params / 1e6:.2f}M parameters), batch {n} of 3x32x32")
    times = []
    for _ in range(1 if quick else 2):
        t0 = time.perf_counter()
        report = doctor(model, x, y, lr=0.1, momentum=0.9, nesterov=True)
        times.append(time.perf_counter() - t0)
    _show("doctor (full, with lr check)", times, 15.0, report)


if __name__ == "__main__":
    main()
