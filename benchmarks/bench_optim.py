"""inertia.optim.Momentum against torch.optim.SGD(foreach=True), measured in the same run.

    python benchmarks/bench_optim.py [--quick] [--threads N] [--repeats R]

For each parameter set it times one ``step()`` (median over repeats of a block of steps, after
a warm-up) for: torch SGD(momentum=0.9) and SGD(nesterov=True), inertia CM and NAG with the
Sutskever momentum schedule, and the memory floor: a momentum step must read theta, g, v and
write theta, v, which is 5/3 of one ``torch._foreach_add_(params, grads)`` pass (3 transfers).
Ratios are ours / torch (below 1.0: inertia is faster).
"""

from __future__ import annotations

import torch

from _common import median_time, parse_args
from inertia.optim import Momentum, schedules


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


def make_params(shapes):
    g = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
    for p in ps:
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    return ps


def time_steps(step, block: int, repeats: int) -> float:
    return median_time(step, repeats, block=block, warmup=block)  # the warm-up allocates state


def main() -> None:
    args = parse_args(__doc__, repeats=True)
    repeats = args.repeats or (3 if args.quick else 15)
    block = 5 if args.quick else 20
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, median of {repeats} blocks of {block} steps")
    sched = schedules.sutskever_momentum(0.99)
    for label, shapes in (
        ("autoencoder 784-1000-500-250-30 + mirror", autoencoder_shapes()),
        ("200 small tensors", small_shapes()),
    ):
        n = sum(torch.Size(s).numel() for s in shapes)
        print(f"\n{label}: {len(shapes)} tensors, {n / 1e6:.2f}M values")
        cases = {}
        ps = make_params(shapes)
        grads = [p.grad for p in ps]
        data = [p.detach() for p in ps]

        def add_pass():
            torch._foreach_add_(data, grads)

        cases["floor (5/3 x foreach_add_)"] = 5 / 3 * time_steps(add_pass, block, repeats)
        for name, ctor in [
            ("torch SGD momentum", lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True)),
            ("inertia CM (schedule)", lambda p: Momentum(p, lr=0.01, momentum=sched)),
            ("torch SGD nesterov", lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, foreach=True)),
            ("inertia NAG (schedule)", lambda p: Momentum(p, lr=0.01, momentum=sched, nesterov=True)),
        ]:
            ps = make_params(shapes)
            opt = ctor(ps)
            cases[name] = time_steps(opt.step, block, repeats)
        floor = cases["floor (5/3 x foreach_add_)"]
        peers = {"inertia CM (schedule)": "torch SGD momentum", "inertia NAG (schedule)": "torch SGD nesterov"}
        print(f"{'case':32s} {'us/step':>10s} {'vs torch':>9s} {'vs floor':>9s}")
        for name, t in cases.items():
            vs_torch = f"{t / cases[peers[name]]:9.2f}" if name in peers else f"{'':9s}"
            print(f"{name:32s} {t * 1e6:10.1f} {vs_torch} {t / floor:9.2f}")


if __name__ == "__main__":
    main()
