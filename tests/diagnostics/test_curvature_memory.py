"""The Lanczos basis never exceeds ``memory_budget``, and the paths a small budget forces (thick
restart, local reorthogonalization) keep the dense-Hessian accuracy."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from inertia.diagnostics import curvature as C
from inertia.diagnostics.products import FlatOperator, HessianProduct

SRC = Path(__file__).resolve().parents[2] / "src"


def _dense_cases():
    """The small MLP and RNN with their dense Hessians, from test_curvature.py (tests are imported by
    path: pytest runs with --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location("curvature_cases", Path(__file__).with_name("test_curvature.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_cases = _dense_cases()
mlp_case, rnn_case, small_mlp = _cases.mlp_case, _cases.rnn_case, _cases.small_mlp
CASES = {"mlp": mlp_case, "rnn": rnn_case}


def row_bytes(h):
    return h.shape[0] * 8  # float64 models


@pytest.mark.parametrize("name", ["mlp", "rnn"])
@pytest.mark.parametrize("which", ["largest", "smallest", "largest_magnitude"])
def test_a_budget_that_forces_thick_restarts_still_matches_the_dense_hessian(name, which):
    model, loss_fn, h = CASES[name]()
    ev = torch.linalg.eigvalsh(h)
    order = {"largest": torch.argsort(ev, descending=True), "smallest": torch.argsort(ev)}
    want = ev[order.get(which, torch.argsort(ev.abs(), descending=True))][:3]
    budget = 6 * row_bytes(h)  # 5 basis vectors and the product: far less than the ~30 plain Lanczos needs
    res = C.hessian_eigenvalues(
        loss_fn,
        list(model.parameters()),
        k=3,
        which=which,
        tol=1e-10,
        max_iter=2000,
        memory_budget=budget,
        generator=torch.Generator().manual_seed(1),
    )
    assert res.solver == "thick-restart lanczos" and res.restarts > 0 and res.converged
    assert res.basis_bytes <= budget
    torch.testing.assert_close(res.values, want, rtol=1e-8, atol=1e-10)


def test_ritz_vectors_after_restarts_are_eigenvectors():
    model, loss_fn, h = mlp_case()
    res = C.hessian_eigenvalues(
        loss_fn,
        list(model.parameters()),
        k=2,
        tol=1e-12,
        max_iter=2000,
        return_vectors=True,
        memory_budget=5 * row_bytes(h),
        generator=torch.Generator().manual_seed(3),
    )
    assert res.restarts > 0
    for lam, v in zip(res.values, res.vectors, strict=True):
        torch.testing.assert_close(h @ v, lam * v, rtol=0, atol=1e-6)  # as for the full basis


def test_float32_restart_path_matches_the_float64_dense_hessian():
    model, _, h = mlp_case()
    _, _, x, y = small_mlp()
    m32, x32 = model.float(), x.float()
    budget = 5 * h.shape[0] * 4
    res = C.hessian_eigenvalues(
        lambda: nn.functional.cross_entropy(m32(x32), y),
        list(m32.parameters()),
        k=2,
        tol=1e-6,
        max_iter=2000,
        memory_budget=budget,
        generator=torch.Generator().manual_seed(1),
    )
    assert res.solver == "thick-restart lanczos" and res.basis_bytes <= budget
    torch.testing.assert_close(res.values, torch.linalg.eigvalsh(h).flip(0)[:2], rtol=2e-5, atol=1e-6)


def test_the_basis_grows_only_as_far_as_the_run_needs():
    model, loss_fn, h = mlp_case()
    res = C.hessian_eigenvalues(
        loss_fn, list(model.parameters()), tol=1e-3, max_iter=60, memory_budget=2**30, generator=torch.Generator()
    )
    assert res.solver == "lanczos" and res.num_hvps < 60
    # blocks double as the basis grows: at most twice the vectors used, never the max_iter + 1 rows up front
    assert res.basis_bytes <= (2 * res.num_hvps + 1) * row_bytes(h)


def test_a_budget_below_k_plus_two_vectors_is_refused_before_any_product():
    model, loss_fn, h = mlp_case()
    with pytest.raises(ValueError, match=r"memory_budget=\d+ bytes holds 3 vectors .* needs at least 4"):
        C.hessian_eigenvalues(loss_fn, list(model.parameters()), k=2, memory_budget=3 * row_bytes(h) + 5)
    with pytest.raises(ValueError, match="memory_budget must be a positive integer, got 0.5"):
        C.hessian_eigenvalues(loss_fn, list(model.parameters()), memory_budget=0.5)


def test_spectral_density_with_local_reorthogonalization_keeps_the_quadrature_moments():
    model, loss_fn, h = mlp_case()
    op = C.HessianOperator(loss_fn, list(model.parameters()))

    def moments(budget):
        sd = C.hessian_spectral_density(
            op, iterations=30, memory_budget=budget, generator=torch.Generator().manual_seed(7)
        )
        return sd, torch.stack([(sd.weights[0] * sd.nodes[0] ** p).sum() for p in range(8)])

    full, m_full = moments(None)
    local, m_local = moments(4 * row_bytes(h))
    assert full.solver == "lanczos" and local.solver == "lanczos, local reorthogonalization"
    assert local.basis_bytes <= 4 * row_bytes(h) < full.basis_bytes
    # the same start vector: Gauss quadrature with 30 nodes is exact for degree <= 59 in exact arithmetic
    torch.testing.assert_close(m_local, m_full, rtol=1e-10, atol=0)


def diagonal_operator(dim, dtype=torch.float32):
    """H = diag(d) exactly (loss 1/2 sum d p^2): top eigenvalues 10, 9, 8, the rest in [0, 5)."""
    g = torch.Generator().manual_seed(0)
    d = 5 * torch.rand(dim, generator=g, dtype=dtype)
    d[:3] = torch.tensor([10.0, 9.0, 8.0], dtype=dtype)
    p = torch.zeros(dim, dtype=dtype, requires_grad=True)
    return FlatOperator(HessianProduct(0.5 * (d * p * p).sum(), [p]), [p])


@pytest.mark.slow
def test_the_default_budget_bounds_a_large_float32_operator():
    dim = 5_000_000
    op = diagonal_operator(dim)
    res = C.hessian_eigenvalues(op, k=2, tol=1e-5, max_iter=300, generator=torch.Generator().manual_seed(0))
    budget = C.default_memory_budget(dim, torch.float32, 2 + 3)
    assert budget == 5 * dim * 4
    assert res.solver == "thick-restart lanczos" and res.basis_bytes <= budget
    torch.testing.assert_close(res.values, torch.tensor([10.0, 9.0], dtype=torch.float64), rtol=1e-5, atol=0)


PEAK_SCRIPT = """
import json, resource, sys, torch
sys.path.insert(0, {src!r})
torch.set_num_threads(1)
from inertia.diagnostics.products import FlatOperator, HessianProduct
{diagonal}
from inertia.diagnostics import curvature as C
dim = {dim}
op = diagonal_operator(dim)
op.product([torch.ones(dim)])  # warm up: the first product allocates autograd's buffers
with open("/proc/self/statm") as f:
    base = int(f.read().split()[1]) * resource.getpagesize()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
res = C.hessian_eigenvalues(op, tol=1e-30, max_iter=40, memory_budget={budget}, generator=torch.Generator())
with open("/proc/self/status") as f:  # VmHWM: this process's peak since clear_refs (not ru_maxrss,
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM"))  # which keeps the forked parent's)
print(json.dumps({{"beyond": peak - base, "basis": res.basis_bytes, "solver": res.solver, "hvps": res.num_hvps}}))
"""


def peak_beyond(dim, budget):
    import inspect

    diagonal = inspect.getsource(diagonal_operator)
    script = PEAK_SCRIPT.format(src=str(SRC), diagonal=diagonal, dim=dim, budget=budget)
    # a fixed mmap threshold: every block over 1 MB is mapped and unmapped with its tensor, so the
    # resident set follows the live tensors rather than glibc's caching of freed blocks
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**20), "MALLOC_ARENA_MAX": "1"}
    cmd = [sys.executable, "-c", textwrap.dedent(script)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_of_a_restarted_run_is_its_budget_plus_the_products_temporaries():
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to reset the peak resident set")
    dim = 4_000_000
    row = dim * 4
    small = peak_beyond(dim, 4 * row)
    large = peak_beyond(dim, 42 * row)  # room for the whole 40-step basis
    assert small["solver"] == "thick-restart lanczos" and small["basis"] <= 4 * row, small
    assert large["solver"] == "lanczos" and large["hvps"] == 40, large
    # beyond the budget: the product's output and its flat copy (2 rows) and the restart's chunks
    # (0.5 row): 6.6 rows measured; the unbounded run holds its 41-row basis and the same
    assert small["beyond"] <= 4 * row + 3 * row, (small, large)
    assert large["beyond"] >= 41 * row, (small, large)
