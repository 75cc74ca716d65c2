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

Memory: the peak resident set (``resource.getrusage``, its high-water mark reset through
``/proc/self/clear_refs`` after the model and batch are built) minus the resident set at that
moment: what the call needed beyond the model, its batch and the interpreter.
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


def build(name: str):
    torch.manual_seed(0)
    if name == "mlp":
        model: nn.Module = nn.Sequential(
            nn.Linear(1024, 2048), nn.Tanh(), nn.Linear(2048, 2048), nn.Tanh(), nn.Linear(2048, 10)
        )
        x = torch.randn(64, 1024)
    else:
        model = resnet18()
        x = torch.randn(4, 3, 16, 16)
    y = torch.randint(0, 10, (x.shape[0],))
    return model.eval(), x, y


MODEL_LABELS = {
    "mlp": "MLP 1024-2048-2048-10 (6.32M), batch 64",
    "resnet18": "ResNet18-sized convnet (11.17M), batch 4 of 3x16x16",
}


# --- one measurement -------------------------------------------------------------------------


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
            memory_budget=spec.get("budget"),
        )
        return {"values": r.values.tolist(), "hvps": r.num_hvps, "solver": r.solver, "basis_mb": r.basis_bytes / 2**20}
    if q in ("trace", "frob"):
        fn = D.hessian_trace if q == "trace" else D.hessian_frobenius_norm
        r = fn(loss_fn, params, probes=spec["probes"], generator=gen)
        return {"values": [r.value], "stderr": r.stderr, "hvps": r.num_hvps}
    sd = D.hessian_spectral_density(
        loss_fn, params, iterations=spec["iterations"], generator=gen, memory_budget=spec.get("budget")
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
        samples = h.trace(maxIter=spec["probes"], tol=0.0)
        return {"values": [sum(samples) / len(samples)], "hvps": len(samples)}
    if q == "frob":  # PyHessian has none: its own HVP loop, ||H||_F^2 = E||Hz||^2
        sq = []
        for _ in range(spec["probes"]):
            hv = hessian_vector_product(h.gradsH, h.params, _rademacher_like(h.params))
            sq.append(float(group_product(hv, hv)))
        return {"values": [math.sqrt(sum(sq) / len(sq))], "hvps": len(sq)}
    if not hasattr(torch, "eig"):  # PyHessian's density calls torch.eig, removed in torch 1.13
        torch.eig = _old_torch_eig  # type: ignore[attr-defined]
    nodes, weights = h.density(iter=spec["iterations"], n_v=1)
    return {"nodes": [float(v) for v in nodes[0]], "weights": [float(v) for v in weights[0]]}


def _old_torch_eig(t: torch.Tensor, eigenvectors: bool = False):
    """torch.eig's old return, (eigenvalues as [n, 2] real/imaginary, eigenvectors), for a symmetric t."""
    w, v = torch.linalg.eigh(t)
    return torch.stack([w, torch.zeros_like(w)], 1), v


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(spec: dict) -> dict:
    torch.set_num_threads(spec["threads"])
    model, x, y = build(spec["model"])
    base = _rss_bytes()
    reset = _reset_peak()
    t0 = time.perf_counter()
    out = (_inertia if spec["lib"] == "inertia" else _pyhessian)(model, x, y, spec)
    out["time_s"] = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
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


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(HERE.parent / "src"))
        print(json.dumps(measure(json.loads(sys.argv[2]))))
    else:
        raise SystemExit(__doc__)
