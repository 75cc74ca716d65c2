"""Curvature at real sizes against PyHessian: one fresh process per measurement, its time and peak memory.

Used by ``bench_diagnostics.py`` (which prints the tables and ratios); run alone as
``python benchmarks/_curvature_at_scale.py --worker '{"model": "mlp", "lib": "inertia", ...}'`` it
makes one measurement and prints it as one JSON line.

Models (float32, eval mode, as PyHessian puts them; cross-entropy on a fixed batch of random
inputs and labels):

- ``mlp``: 1024-2048-2048-10 tanh MLP (6.32M parameters), batch 64;
- ``resnet18``: a ResNet18-sized convnet in plain torch (11.17M parameters): a 3x3 stem, four
  stages of two conv-BN-ReLU basic blocks (64, 128, 256, 512 channels; strided 1x1 conv + BN
  downsample), global average pooling, a 10-way linear layer; batch 4 of 3x16x16 images.

Time: wall-clock and CPU seconds of the call (``time.process_time``: this process's threads
only), the library already imported (importing inertia.diagnostics takes 0.4 s, PyHessian 1 ms;
torch's own lazy imports on the first double backward fall inside the call for both). On a
machine shared with other jobs the wall clock measures the load as much as the
work; the ratios use CPU seconds, and one thread (``--threads 1``) keeps spinning OpenMP threads
out of them.

Memory: the peak resident set (VmHWM of ``/proc/self/status``, reset through
``/proc/self/clear_refs`` after the model and batch are built) minus the resident set at that
moment: what the call needed beyond the model, its batch and the interpreter. glibc's default
allocator settings are kept (both libraries run under them).
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def resnet18(classes: int = 10) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


def build(name: str, quick: bool = False):
    """The model (eval mode), its batch and labels; ``quick``: smoke-test sizes."""
    torch.manual_seed(0)
    if name == "mlp":
        width, inputs = (256, 128) if quick else (2048, 1024)
        model: nn.Module = nn.Sequential(
            nn.Linear(inputs, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 10)
        )
        x = torch.randn(64, inputs)
    else:
        model = resnet18()
        x = torch.randn(2 if quick else 4, 3, 8 if quick else 16, 8 if quick else 16)
    y = torch.randint(0, 10, (x.shape[0],))
    return model.eval(), x, y


MODEL_LABELS = {
    "mlp": "MLP 1024-2048-2048-10 (6.32M), batch 64",
    "resnet18": "ResNet18-sized convnet (11.17M), batch 4 of 3x16x16",
}


# --- one measurement -------------------------------------------------------------------------


def _budget(spec: dict, params) -> int | None:
    """``spec["budget_vectors"]`` parameter-sized float32 vectors in bytes (None: the default budget)."""
    vectors = spec.get("budget_vectors")
    return None if vectors is None else int(vectors * sum(p.numel() for p in params) * 4)


def _inertia(model, x, y, spec: dict) -> dict:
    from inertia import diagnostics as D

    params = [p for p in model.parameters() if p.requires_grad]
    loss_fn = lambda: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    gen = torch.Generator().manual_seed(spec.get("seed", 1))
    q = spec["quantity"]
    if q == "eig":
        r = D.hessian_eigenvalues(
            loss_fn,
            params,
            k=spec.get("k", 1),
            tol=spec["tol"],
            max_iter=spec.get("max_iter", 100),
            generator=gen,
            memory_budget=_budget(spec, params),
        )
        return {"values": r.values.tolist(), "hvps": r.num_hvps, "solver": r.solver, "basis_mb": r.basis_bytes / 2**20}
    if q in ("trace", "frob"):
        fn = D.hessian_trace if q == "trace" else D.hessian_frobenius_norm
        r = fn(loss_fn, params, probes=spec["probes"], generator=gen)
        return {"values": [r.value], "stderr": r.stderr, "hvps": r.num_hvps}
    sd = D.hessian_spectral_density(
        loss_fn, params, iterations=spec["iterations"], generator=gen, memory_budget=_budget(spec, params)
    )
    return {
        "nodes": sd.nodes[0].tolist(),
        "weights": sd.weights[0].tolist(),
        "hvps": sd.num_hvps,
        "solver": sd.solver,
        "basis_mb": sd.basis_bytes / 2**20,
    }


def _rademacher_like(params):
    out = []
    for p in params:
        v = torch.randint_like(p, high=2)
        v[v == 0] = -1
        out.append(v)
    return out


def _pyhessian(model, x, y, spec: dict) -> dict:
    from pyhessian import hessian as PyHessian
    from pyhessian.utils import group_product, hessian_vector_product

    torch.manual_seed(spec.get("seed", 1))
    h = PyHessian(model, nn.CrossEntropyLoss(), data=(x, y), cuda=False)
    q = spec["quantity"]
    if q == "eig":
        vals, _ = h.eigenvalues(maxIter=spec.get("max_iter", 100), tol=spec["tol"], top_n=spec.get("k", 1))
        return {"values": [float(v) for v in vals]}
    if q == "trace":
        samples = h.trace(maxIter=spec["probes"], tol=float("-inf"))  # every probe: its early stop never fires
        return {"values": [sum(samples) / len(samples)], "hvps": len(samples)}
    if q == "frob":  # PyHessian has none: its own HVP loop, ||H||_F^2 = E||Hz||^2
        sq = []
        for _ in range(spec["probes"]):
            hv = hessian_vector_product(h.gradsH, h.params, _rademacher_like(h.params))
            sq.append(float(group_product(hv, hv)))
        return {"values": [math.sqrt(sum(sq) / len(sq))], "hvps": len(sq)}
    torch.eig = _old_torch_eig  # type: ignore[attr-defined]  # PyHessian's density calls torch.eig (gone since 1.13)
    nodes, weights = h.density(iter=spec["iterations"], n_v=1)
    return {"nodes": [float(v) for v in nodes[0]], "weights": [float(v) for v in weights[0]]}


def _old_torch_eig(t: torch.Tensor, eigenvectors: bool = False):
    """torch.eig's old return, (eigenvalues as [n, 2] real/imaginary, eigenvectors), for a symmetric t."""
    w, v = torch.linalg.eigh(t)
    return torch.stack([w, torch.zeros_like(w)], 1), v


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_bytes() -> int:
    """The peak resident set of this process since the last reset: VmHWM, which ``clear_refs``
    resets. ``ru_maxrss`` is not used: after ``exec`` it keeps the forked parent's resident set, so
    a child of a large parent would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(spec: dict) -> dict:
    torch.set_num_threads(spec["threads"])
    model, x, y = build(spec["model"], spec.get("quick", False))
    if spec["lib"] == "inertia":  # the library's import is not part of the call (0.4 s for inertia here)
        import inertia.diagnostics  # noqa: F401
    else:
        import pyhessian.hessian  # noqa: F401
        import pyhessian.utils  # noqa: F401
    base = _rss_bytes()
    reset = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    out = (_inertia if spec["lib"] == "inertia" else _pyhessian)(model, x, y, spec)
    out["time_s"], out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_bytes()
    out["peak_mb"] = (peak - base) / 2**20
    out["peak_reset"] = reset
    out["params"] = sum(p.numel() for p in model.parameters())
    return out


def run_fresh(spec: dict) -> dict:
    """``measure(spec)`` in a new interpreter."""
    cmd = [sys.executable, str(HERE / "_curvature_at_scale.py"), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the comparison ----------------------------------------------------------------------------

EIG_TOLS = {"inertia": (1e-2, 1e-3, 1e-4), "pyhessian": (1e-3, 1e-4, 1e-5, 1e-6)}
TOPK_TOLS = {"inertia": (1e-2, 1e-3), "pyhessian": (1e-3, 1e-4)}
TARGETS = (1e-3, 1e-4)
HEADER = (
    f"{'library':10s} {'setting':>14s} {'HVPs':>5s} {'value':>10s} {'rel. error':>10s} {'CPU s':>7s} {'wall s':>7s} "
    f"{'peak MB':>8s}  solver"
)


def _interleaved(specs_by_lib: dict[str, list[dict]]) -> list[dict]:
    """inertia and PyHessian runs alternated, so load changes on the machine hit both alike."""
    out: list[dict] = []
    for i in range(max(len(v) for v in specs_by_lib.values())):
        out += [v[i] for v in specs_by_lib.values() if i < len(v)]
    return out


def _show(spec: dict, r: dict, err: float | None, setting: str, value: str = "") -> None:
    if "error" in r:
        print(f"{spec['lib']:10s} {setting:>14s} failed: {r['error']}")
        return
    if not value and "values" in r:
        value = f"{r['values'][0]:.6g}"
    e = "" if err is None else f"{err:10.2e}"
    print(
        f"{spec['lib']:10s} {setting:>14s} {r.get('hvps', ''):>5} {value:>10s} {e:>10s} {r['cpu_s']:7.1f} "
        f"{r['time_s']:7.1f} {r['peak_mb']:8.0f}  {r.get('solver', '')}"
    )


def _ratio(a: dict, b: dict) -> str:
    return (
        f"inertia {a['cpu_s']:.1f} CPU s / {a['peak_mb']:.0f} MB, PyHessian {b['cpu_s']:.1f} CPU s / "
        f"{b['peak_mb']:.0f} MB: time ratio {a['cpu_s'] / b['cpu_s']:.2f}, "
        f"memory ratio {a['peak_mb'] / b['peak_mb']:.2f}"
    )


def _rel_err(values: list[float], ref: list[float]) -> float:
    return max(abs(v - w) / abs(w) for v, w in zip(values, ref, strict=False))


def _ratios_at_equal_accuracy(runs: list[tuple[dict, dict, float]], label: str) -> None:
    for target in TARGETS:
        best = {}
        for spec, r, err in runs:
            if "error" not in r and err <= target:
                if spec["lib"] not in best or r["cpu_s"] < best[spec["lib"]]["cpu_s"]:
                    best[spec["lib"]] = r
        if len(best) < 2:
            reached = ", ".join(best) or "neither"
            print(f"-> {label}, relative error <= {target:.0e}: reached by {reached} only")
            continue
        print(f"-> {label}, relative error <= {target:.0e}: {_ratio(best['inertia'], best['pyhessian'])}")


def _eigenvalues(base: dict, ref: list[float], k: int, tols: dict, libs: list[str]) -> None:
    specs = {lib: [{**base, "lib": lib, "quantity": "eig", "k": k, "tol": t} for t in tols[lib]] for lib in libs}
    runs = []
    for spec in _interleaved(specs):
        r = run_fresh(spec)
        err = None if "error" in r else _rel_err(r["values"], ref[:k])
        _show(spec, r, err, f"tol {spec['tol']:.0e}")
        runs.append((spec, r, err if err is not None else float("inf")))
    _ratios_at_equal_accuracy(runs, f"top-{k}")


def _estimates(base: dict, probes: int, libs: list[str]) -> None:
    for q, name in (("trace", "trace"), ("frob", "Frobenius norm")):
        got = {}
        for lib in libs:
            spec = {**base, "lib": lib, "quantity": q, "probes": probes}
            r = got[lib] = run_fresh(spec)
            if "error" in r:
                _show(spec, r, None, name)
                continue
            se = f"+- {r['stderr']:.2g}" if "stderr" in r else ""
            _show(spec, r, None, name)
            if se:
                print(f"{'':10s} {'':>14s} {'':>5} {se:>10s}")
        if "pyhessian" in got and not any("error" in r for r in got.values()):
            print(f"-> {name} at {probes} probes: {_ratio(got['inertia'], got['pyhessian'])}")


def _smoothed(nodes, weights, grid, sigma):
    th, w = torch.tensor(nodes, dtype=torch.float64), torch.tensor(weights, dtype=torch.float64)
    return (w[None, :] * torch.exp(-0.5 * ((grid[:, None] - th[None, :]) / sigma) ** 2)).sum(1) / (
        sigma * math.sqrt(2 * math.pi)
    )


def _l1(a: dict, b: dict) -> float:
    """The L1 distance of two quadratures smoothed alike (sigma 1% of the joint node range)."""
    lo = min(min(a["nodes"]), min(b["nodes"]))
    hi = max(max(a["nodes"]), max(b["nodes"]))
    span = max(hi - lo, 1e-12)
    grid = torch.linspace(lo - 0.1 * span, hi + 0.1 * span, 4000, dtype=torch.float64)
    pa, pb = (_smoothed(r["nodes"], r["weights"], grid, 0.01 * span) for r in (a, b))
    return float(torch.trapezoid((pa - pb).abs(), grid))


def _density(base: dict, iterations: int, libs: list[str]) -> None:
    full_spec = {**base, "lib": "inertia", "quantity": "density", "iterations": iterations}
    full_spec["budget_vectors"] = iterations + 2
    specs = {lib: {**base, "lib": lib, "quantity": "density", "iterations": iterations} for lib in libs}
    full = run_fresh(full_spec)
    _show(full_spec, full, None, "full basis", f"{max(full['nodes']):.6g}" if "nodes" in full else "")
    got = {}
    for lib, spec in specs.items():
        r = got[lib] = run_fresh(spec)
        l1 = None if "error" in r or "error" in full else _l1(r, full)
        top = f"{max(r['nodes']):.6g}" if "nodes" in r else ""
        _show(spec, r, None, f"L1 {l1:.3f}" if l1 is not None else "density", top)
    print(
        "   (value: the largest node; L1: distance of the smoothed density to inertia's full-reorthogonalization "
        "run from the same start vector; PyHessian starts from its own)"
    )
    if "pyhessian" in got and not any("error" in r for r in got.values()):
        print(f"-> density, {iterations} Lanczos steps: {_ratio(got['inertia'], got['pyhessian'])}")


def compare(threads: int, quick: bool) -> None:
    """Every quantity on both models, each measurement in a fresh process; prints the ratios."""
    import importlib.util

    libs = ["inertia"]
    if importlib.util.find_spec("pyhessian") is not None:
        libs.append("pyhessian")
    else:
        print("PyHessian not installed: pip install --no-deps pyhessian  (comparison skipped)")
    for model in ("mlp", "resnet18"):
        base = {"model": model, "threads": threads, "quick": quick}
        print(f"\n{MODEL_LABELS[model]}{' (quick sizes)' if quick else ''}; {threads} threads; fresh process each")
        ref_spec = {**base, "lib": "inertia", "quantity": "eig", "k": 3, "tol": 1e-8, "max_iter": 400}
        ref_spec["budget_vectors"] = 60
        ref = run_fresh(ref_spec)
        if "error" in ref:
            print(f"reference failed: {ref['error']}")
            continue
        print(f"reference top-3 (inertia Lanczos, tol 1e-8, {ref['hvps']} HVPs): {ref['values']}")
        print(HEADER)
        tols = EIG_TOLS if model == "mlp" else {**EIG_TOLS, "pyhessian": EIG_TOLS["pyhessian"][:3]}
        _eigenvalues(base, ref["values"], 1, tols, libs)
        if model == "mlp":
            _eigenvalues(base, ref["values"], 3, TOPK_TOLS, libs)
        _estimates(base, 4 if quick else 20, libs)
        _density(base, 10 if quick else 40, libs)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(HERE.parent / "src"))
        print(json.dumps(measure(json.loads(sys.argv[2]))))
    else:
        raise SystemExit(__doc__)
