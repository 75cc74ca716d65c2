"""Denormal floats and the speed of training: one NAG update of Sutskever et al.'s sparse-initialized
CURVES autoencoder with PyTorch's default (denormals kept) against ``train()``'s setting (flushed to
zero by ``inertia.experiments.train.flush_denormals``), measured in the same process, on the CURVES
images as generated (no denormal pixels) and on the same images with 5.5% of the pixels set to
denormal values, as the generator produced them before it zeroed intensities below 1.2e-38 (a
Gaussian pen's exp underflows through the denormal range far from the curve).

    python benchmarks/bench_denormal.py [--quick] [--threads N] [--repeats R]

The net is the quick reproduction's 784-200-100-50-25-6 autoencoder and its mirror (logistic units,
linear code), sparse init (15 incoming N(0, 1) weights per unit), minibatch 200, NAG with
lr 0.05 and mu 0.99. On x86 every denormal operand sends a matrix product down a microcode slow
path. Printed per data version: the share of denormal pixels, the time of one update each way and
the ratio (kept / flushed), at init and after 200 updates.
"""

from __future__ import annotations

import torch

from _common import median_time, parse_args
from bench_hf import make_model  # the sparse-initialized CURVES autoencoder
from inertia.data import curves
from inertia.experiments.train import flush_denormals
from inertia.optim import Momentum

TINY = torch.finfo(torch.float32).tiny


def main() -> None:
    args = parse_args(__doc__, repeats=True)
    repeats = args.repeats or (3 if args.quick else 20)
    sizes = [784, 100, 50, 6] if args.quick else [784, 200, 100, 50, 25, 6]
    clean = curves(200, seed=0)
    g = torch.Generator().manual_seed(0)
    dirty = clean.clone()  # 5.5% of the pixels denormal, as before the generator zeroed them
    pick = (clean == 0) & (torch.rand(clean.shape, generator=g) < 0.055 / float((clean == 0).float().mean()))
    dirty[pick] = torch.rand(int(pick.sum()), generator=g) * TINY
    print(f"threads {torch.get_num_threads()}, autoencoder {'-'.join(map(str, sizes))} (mirrored), batch 200")
    for label, x in (("generated images", clean), ("images with denormal pixels", dirty)):
        _compare(label, x, sizes, repeats, updates=20 if args.quick else 200)


def _compare(label: str, x: torch.Tensor, sizes: list[int], repeats: int, updates: int) -> None:
    """Time one update with denormals kept and flushed, at init and after ``updates`` updates."""
    model = make_model(sizes)
    opt = Momentum(model.parameters(), lr=0.05, momentum=0.99, nesterov=True)
    share = float(((x != 0) & (x < TINY)).float().mean())

    def update() -> None:
        opt.zero_grad()
        loss = ((model(x) - x) ** 2).sum(1).mean()
        loss.backward()
        opt.step()

    def measure(when: str) -> None:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        opt_state = opt.state_dict()
        kept = median_time(update, repeats, warmup=1)
        model.load_state_dict(state)
        opt.load_state_dict(opt_state)
        with flush_denormals():
            flushed = median_time(update, repeats, warmup=1)
        model.load_state_dict(state)
        opt.load_state_dict(opt_state)
        print(
            f"{label} ({share:.1%} denormal), {when}: one update kept {kept * 1e3:.1f} ms, flushed "
            f"{flushed * 1e3:.1f} ms, ratio {kept / flushed:.2f}x",
            flush=True,
        )

    measure("at init")
    with flush_denormals():
        for _ in range(updates):
            update()
    measure(f"after {updates} updates")


if __name__ == "__main__":
    main()
