"""Denormal floats and the speed of training: one NAG update of Sutskever et al.'s sparse-initialized
CURVES autoencoder with PyTorch's default (denormals kept) against ``train()``'s setting (flushed to
zero by ``inertia.experiments.train.flush_denormals``), measured in the same process.

    python benchmarks/bench_denormal.py [--quick] [--threads N] [--repeats R]

The net is the quick reproduction's 784-200-100-50-25-6 autoencoder and its mirror (logistic units,
linear code), sparse init (15 incoming N(0, 1) weights per unit), minibatch 200, NAG with
lr 0.05 and mu 0.99. Deep logistic nets back-propagate products of many sigmoid derivatives
(each at most 1/4): the gradients reaching the lower layers fall below float32's smallest normal
number (1.2e-38), and on x86 every such operand sends a matrix product down a microcode slow path.
Printed: the fraction of denormal values among the weight gradients, the time of one update each
way, and the ratio (kept / flushed), then the same after 200 updates of training.
"""

from __future__ import annotations

import torch
from _common import median_time, parse_args

from inertia import init as I
from inertia.data import curves
from inertia.experiments.train import flush_denormals
from inertia.models import deep_autoencoder
from inertia.optim import Momentum

TINY = torch.finfo(torch.float32).tiny


def build(sizes):
    torch.manual_seed(0)
    model = deep_autoencoder(sizes)
    gen = torch.Generator().manual_seed(0)
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            I.sparse_(layer.weight, fan_in=min(15, layer.in_features), std=1.0, generator=gen)
            torch.nn.init.zeros_(layer.bias)
    return model


def denormal_fraction(model) -> float:
    grads = [p.grad.detach().flatten() for p in model.parameters() if p.grad is not None]
    g = torch.cat(grads)
    return float(((g != 0) & (g.abs() < TINY)).float().mean())


def main() -> None:
    args = parse_args(__doc__, repeats=True)
    repeats = args.repeats or (3 if args.quick else 20)
    sizes = [784, 100, 50, 6] if args.quick else [784, 200, 100, 50, 25, 6]
    x = curves(200, seed=0)
    model = build(sizes)
    opt = Momentum(model.parameters(), lr=0.05, momentum=0.99, nesterov=True)

    def update():
        opt.zero_grad()
        loss = ((model(x) - x) ** 2).sum(1).mean()
        loss.backward()
        opt.step()

    def measure(label: str) -> None:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        opt_state = opt.state_dict()
        kept = median_time(update, repeats, warmup=1)
        model.load_state_dict(state)
        opt.load_state_dict(opt_state)
        update()
        frac = denormal_fraction(model)
        model.load_state_dict(state)
        opt.load_state_dict(opt_state)
        with flush_denormals():
            flushed = median_time(update, repeats, warmup=1)
        model.load_state_dict(state)
        opt.load_state_dict(opt_state)
        print(f"{label}: denormal share of weight-gradient entries {frac:.2%}; one update: kept "
              f"{kept * 1e3:.1f} ms, flushed {flushed * 1e3:.1f} ms, ratio {kept / flushed:.1f}x", flush=True)

    print(f"threads {torch.get_num_threads()}, autoencoder {'-'.join(map(str, sizes))} (mirrored), batch 200")
    measure("at init")
    with flush_denormals():
        for _ in range(20 if args.quick else 200):
            update()
    measure(f"after {20 if args.quick else 200} updates")


if __name__ == "__main__":
    main()
