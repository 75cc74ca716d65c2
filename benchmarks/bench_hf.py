"""inertia.optim.HessianFree: time per HF iteration and curvature-product count on the CURVES deep
autoencoder, and NAG given the same seconds, measured in the same run.

    python benchmarks/bench_hf.py [--quick] [--small] [--threads N] [--iters K] [--batch B]
                                  [--curvature-fraction F]

The net is Hinton & Salakhutdinov's CURVES autoencoder, 784-400-200-100-50-25-6 and its mirror
(logistic units, linear code, logistic outputs; ``--small``: 784-100-50-6), sparse-initialized
(Martens 2010), trained on generated CURVES images with the summed squared error per case. HF:
gradient on a fixed batch of B cases, curvature products on a fresh ``F * B`` subset each
iteration, Martens' preconditioner from exact per-case gradients, initial damping 45 (Martens'
choice for the autoencoders), at most 250 CG iterations. Reported per HF iteration: wall time, CG
iterations, curvature (GGN) products, and the time of one GGN product and of the preconditioner
measured separately. Then NAG (Sutskever et al. 2013: minibatch 200, lr 0.005, mu schedule to
0.99) runs for the same wall-clock seconds, and both training errors (summed squared error per
case on the B cases) are printed.
"""

from __future__ import annotations

import statistics
import time

import torch

from _common import median_time
from inertia import init as I
from inertia.data import curves
from inertia.models import deep_autoencoder
from inertia.optim import HessianFree, Momentum, PerExample, schedules
from inertia.optim import hessian_free as hf


def parse():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke-test sizes (implies --small)")
    ap.add_argument("--small", action="store_true", help="784-100-50-6 autoencoder instead of CURVES'")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    ap.add_argument("--iters", type=int, default=None, help="HF iterations (default 30; quick 3)")
    ap.add_argument("--batch", type=int, default=None, help="gradient batch B (default 2000; quick 300)")
    ap.add_argument("--curvature-fraction", type=float, default=0.25, help="curvature batch / gradient batch")
    ap.add_argument(
        "--keep-denormals",
        action="store_true",
        help="leave denormal floats on (PyTorch's default); by default they are flushed to zero, "
        "as train() does, since they make the sparse-initialized net's products take x86's slow path",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    return args


def sum_squared(out, y):
    return ((out - y) ** 2).sum(1).mean()


def make_model(sizes):
    """Martens' sparse init: 15 incoming N(0, 1) weights per unit (all of them where a layer has
    fewer inputs, as the decoder layer fed by the 6-unit code), biases 0."""
    torch.manual_seed(0)
    model = deep_autoencoder(sizes)
    gen = torch.Generator().manual_seed(0)
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            I.sparse_(layer.weight, fan_in=min(15, layer.in_features), std=1.0, generator=gen)
            torch.nn.init.zeros_(layer.bias)
    return model


def train_error(model, x) -> float:
    with torch.no_grad():
        return float(sum_squared(model(x), x))


def time_pieces(model, x, m) -> dict:
    """Seconds of one GGN product on ``m`` cases, the preconditioner and one gradient on all of
    ``x``, and of a backward-calling closure called plainly and by HF (graph kept), timed apart."""
    params = list(model.parameters())
    out = model(x[:m])
    op = hf.GaussNewtonOperator(out, sum_squared(out, x[:m]), params)
    v = [torch.randn_like(p) for p in params]
    t_product = median_time(lambda: op(v), repeats=5, warmup=1)

    def precond():
        return hf.martens_preconditioner_diagonal(params, per_example=PerExample(model, x, x, sum_squared))[1]

    def closure():
        model.zero_grad()
        loss = sum_squared(model(x), x)
        loss.backward()
        return loss

    pieces = {
        "product": t_product,
        "precond": median_time(precond, repeats=3, warmup=1),
        "precond_method": precond(),
        "grad": median_time(lambda: torch.autograd.grad(sum_squared(model(x), x), params), repeats=3, warmup=1),
        "closure_plain": median_time(closure, repeats=5, warmup=1),
        "closure_kept": median_time(lambda: hf.call_with_graph(closure), repeats=5, warmup=1),
    }
    model.zero_grad(set_to_none=True)
    return pieces


def main() -> None:
    args = parse()
    small = args.small or args.quick
    sizes = [784, 100, 50, 6] if small else [784, 400, 200, 100, 50, 25, 6]
    iters = args.iters or (3 if args.quick else 30)
    batch = args.batch or (300 if args.quick else 2000)
    m = max(1, round(args.curvature_fraction * batch))
    x = curves(batch, seed=0)
    model = make_model(sizes)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}; autoencoder {'-'.join(map(str, sizes))} "
        f"+ mirror ({n_params / 1e6:.2f}M parameters); gradient batch {batch}, curvature batch {m}"
    )

    pieces = time_pieces(model, x, m)

    opt = HessianFree(model.parameters(), damping=45.0)
    gen = torch.Generator().manual_seed(1)

    def closure():
        o = model(x)
        return o, sum_squared(o, x)

    rows, start_error = [], train_error(model, x)
    t_start = time.perf_counter()
    for k in range(iters):
        idx = torch.randperm(batch, generator=gen)[:m]
        xc = x[idx]

        def curvature_closure(xc=xc):
            o = model(xc)
            return o, sum_squared(o, xc)

        t0 = time.perf_counter()
        opt.step(closure, curvature_closure, per_example=PerExample(model, x, x, sum_squared))
        info = dict(opt.last_info, seconds=time.perf_counter() - t0)
        rows.append(info)
        print(
            f"HF iteration {k + 1}: {info['seconds']:6.2f} s, {info['cg_iters']:3d} CG iterations "
            f"({info['cg_reason']}), {info['curvature_products']:3d} GGN products, chose {info['chosen_iter']}, "
            f"rho {info['rho']:.3f}, lambda {info['damping']:.3g}, alpha {info['alpha']:.3g}, "
            f"loss {info['loss']:.3f} -> {info['loss_after']:.3f}",
            flush=True,
        )
    hf_seconds = time.perf_counter() - t_start
    hf_error = train_error(model, x)

    # NAG for the same seconds
    model = make_model(sizes)
    nag = Momentum(model.parameters(), lr=0.005, momentum=schedules.sutskever_momentum(0.99), nesterov=True)
    gen = torch.Generator().manual_seed(2)
    nag_steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < hf_seconds:
        xb = x[torch.randint(0, batch, (200,), generator=gen)]
        nag.zero_grad()
        sum_squared(model(xb), xb).backward()
        nag.step()
        nag_steps += 1
    with nag.at_theta():
        nag_error = train_error(model, x)

    per_iter = [r["seconds"] for r in rows]
    products = [r["curvature_products"] for r in rows]
    print(
        f"\none GGN product on {m} cases: {pieces['product'] * 1e3:.1f} ms; preconditioner "
        f"({pieces['precond_method']!r} method, {batch} cases): {pieces['precond'] * 1e3:.0f} ms; one gradient on "
        f"{batch} cases: {pieces['grad'] * 1e3:.0f} ms"
    )
    print(
        f"a closure that calls loss.backward(), run by HF keeping its graph (call_with_graph) vs called plainly: "
        f"{pieces['closure_kept'] * 1e3:.0f} ms vs {pieces['closure_plain'] * 1e3:.0f} ms "
        f"(ratio {pieces['closure_kept'] / pieces['closure_plain']:.2f})"
    )
    print(
        f"HF: {iters} iterations in {hf_seconds:.1f} s: {statistics.median(per_iter):.2f} s per iteration "
        f"(median; min {min(per_iter):.2f}, max {max(per_iter):.2f}), {statistics.mean(products):.1f} GGN products "
        f"per iteration (mean), {sum(products)} in all"
    )
    print(
        f"train error (summed squared error per case, {batch} cases): start {start_error:.3f}, HF {hf_error:.3f}, "
        f"NAG {nag_error:.3f} after {nag_steps} updates in the same {hf_seconds:.1f} s"
    )


if __name__ == "__main__":
    import sys

    from inertia.experiments.train import flush_denormals

    if "--keep-denormals" in sys.argv:
        main()
    else:
        with flush_denormals():
            main()
