"""inertia.diagnostics against PyHessian, and the Monitor's overhead, in one run.

    python benchmarks/bench_diagnostics.py [--quick] [--threads N]

Needs PyHessian for the comparison (pure Python: ``pip install --no-deps pyhessian`` in the
same environment); without it those rows are skipped. Model: a 784-1000-500-250-30 tanh MLP
(1.5M parameters), cross-entropy on a fixed batch of 256 random inputs.

Top eigenvalue: the reference is Lanczos run to tol 1e-10. Each method is timed at its
tolerances and reported with its actual relative error, so they are compared at equal accuracy
(a relative error of at most 1e-4), not at equal tolerance.

Curvature at real sizes (``_curvature_at_scale.py``): the 6.3M-parameter MLP 1024-2048-2048-10
(batch 64) and a ResNet18-sized convnet (11.2M), top-1 and top-3 eigenvalues, trace, Frobenius
norm and spectral density, inertia and PyHessian each measured in a fresh process (time and
peak memory beyond the model), with the ratios at equal accuracy (relative error of the top
eigenvalues at most 1e-3 and 1e-4 against a tol-1e-8 Lanczos reference) or equal work (the same
probes, the same Lanczos steps).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from _common import parse_args
from _curvature_at_scale import compare as curvature_at_scale
from inertia import diagnostics as D
from inertia.optim import Momentum


def build(sizes, batch, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, sizes[-1], (batch,))
    return model, x, y


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _peer():
    try:
        from pyhessian import hessian
    except ImportError:
        print("PyHessian not installed: pip install --no-deps pyhessian  (comparison skipped)")
        return None
    return hessian


def top_eigenvalue(model, x, y, pyh) -> None:
    """inertia's Lanczos at three tolerances and PyHessian's power iteration at four, in this process."""
    params = list(model.parameters())
    loss_fn = lambda: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    gen = torch.Generator().manual_seed(1)
    ref = D.hessian_eigenvalues(loss_fn, params, tol=1e-10, max_iter=300, generator=gen, memory_budget=2**31)
    r0 = ref.values[0].item()
    print(f"\nreference top eigenvalue (Lanczos, tol 1e-10): {r0:.10g}")
    print(f"{'method':36s} {'tol':>7s} {'HVPs':>5s} {'rel. error':>11s} {'time (s)':>9s}")
    ours_best = None
    for tol in (1e-2, 1e-3, 1e-4):
        res, t = timed(
            lambda tol=tol: D.hessian_eigenvalues(loss_fn, params, tol=tol, generator=torch.Generator().manual_seed(2))
        )
        err = abs(res.values[0].item() - r0) / abs(r0)
        print(f"{'inertia ' + res.solver:36s} {tol:7.0e} {res.num_hvps:5d} {err:11.2e} {t:9.2f}")
        if err <= 1e-4 and ours_best is None:
            ours_best = (t, res.num_hvps, tol)
    if pyh is None:
        return
    peer_best = None
    for tol in (1e-3, 1e-4, 1e-5, 1e-6):

        def run(tol=tol):
            torch.manual_seed(3)
            return pyh(model, nn.CrossEntropyLoss(), data=(x, y), cuda=False).eigenvalues(maxIter=200, tol=tol, top_n=1)

        (vals, _), t = timed(run)
        err = abs(vals[0] - r0) / abs(r0)
        print(f"{'PyHessian power iteration':36s} {tol:7.0e} {'':>5s} {err:11.2e} {t:9.2f}")
        if err <= 1e-4 and peer_best is None:
            peer_best = (t, tol)
    if ours_best and peer_best:
        print(
            f"-> at relative error <= 1e-4: inertia {ours_best[0]:.2f} s ({ours_best[1]} HVPs, "
            f"tol {ours_best[2]:.0e}), PyHessian {peer_best[0]:.2f} s (tol {peer_best[1]:.0e}): "
            f"ratio {ours_best[0] / peer_best[0]:.2f}"
        )


def trace_and_frobenius(model, x, y, pyh, probes: int) -> None:
    params = list(model.parameters())
    loss_fn = lambda: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    print(f"\ntrace and Frobenius norm at {probes} Rademacher probes")
    tr, t_tr = timed(
        lambda: D.hessian_trace(loss_fn, params, probes=probes, generator=torch.Generator().manual_seed(4))
    )
    fr, t_fr = timed(
        lambda: D.hessian_frobenius_norm(loss_fn, params, probes=probes, generator=torch.Generator().manual_seed(5))
    )
    print(f"inertia trace      {tr.value:12.5g} +- {tr.stderr:.2g}   {t_tr:6.2f} s")
    print(f"inertia Frobenius  {fr.value:12.5g} +- {fr.stderr:.2g}   {t_fr:6.2f} s")
    if pyh is not None:

        def run_tr():
            torch.manual_seed(4)
            return pyh(model, nn.CrossEntropyLoss(), data=(x, y), cuda=False).trace(maxIter=probes, tol=0.0)

        ptr, t_ptr = timed(run_tr)
        print(
            f"PyHessian trace    {sum(ptr) / len(ptr):12.5g}              {t_ptr:6.2f} s   "
            f"ratio (ours/PyHessian) {t_tr / t_ptr:.2f}"
        )


def monitor_overhead(sizes, quick: bool) -> None:
    print("\nMonitor overhead on a training step (layer statistics with histograms, batch 256)")
    m, xx, yy = build(sizes, 256)
    opt = Momentum(m.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    block = 10 if quick else 20
    rounds = 2 if quick else 5
    times: dict = {"no monitor": [], "every step": [], "every 10 steps": []}
    for _ in range(rounds):  # interleaved blocks: the three settings see the same machine state
        for label, every in (("no monitor", None), ("every step", 1), ("every 10 steps", 10)):
            mon = D.Monitor(m, ["layer_stats"], every=every) if every else None
            t0 = time.perf_counter()
            for t in range(block):
                opt.zero_grad()
                nn.functional.cross_entropy(m(xx), yy).backward()
                if mon:
                    mon.step(t)
                opt.step()
            times[label].append((time.perf_counter() - t0) / block)
            if mon:
                mon.close()
    base = statistics.median(times["no monitor"])
    for label, ts in times.items():
        t = statistics.median(ts)
        print(f"{label:16s} {t * 1e3:8.1f} ms/step  overhead {100 * (t / base - 1):6.1f}%")


def main() -> None:
    args = parse_args(__doc__)
    sizes = [784, 200, 100, 30] if args.quick else [784, 1000, 500, 250, 30]
    model, x, y = build(sizes, 64 if args.quick else 256)
    n = sum(p.numel() for p in model.parameters())
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, MLP {'-'.join(map(str, sizes))} "
        f"({n / 1e6:.2f}M parameters), batch {x.shape[0]}"
    )
    pyh = _peer()
    top_eigenvalue(model, x, y, pyh)
    trace_and_frobenius(model, x, y, pyh, 10 if args.quick else 50)
    print("\nCurvature at real sizes, against PyHessian")
    curvature_at_scale(torch.get_num_threads(), args.quick)
    monitor_overhead(sizes, args.quick)


if __name__ == "__main__":
    main()
