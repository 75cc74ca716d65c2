"""Every curvature quantity against the dense Hessian from torch.autograd.functional.hessian."""

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from inertia.diagnostics import curvature as C


def small_mlp(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x = torch.randn(16, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (16,))
    return model, (lambda: nn.functional.cross_entropy(model(x), y)), x, y


class TinyRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.w_ih = nn.Parameter(torch.randn(5, 2, dtype=torch.float64) * 0.5)
        self.w_hh = nn.Parameter(torch.randn(5, 5, dtype=torch.float64) * 0.4)
        self.w_ho = nn.Parameter(torch.randn(1, 5, dtype=torch.float64) * 0.5)

    def forward(self, x):  # x [n, T, 2]
        h = torch.zeros(x.shape[0], 5, dtype=x.dtype)
        for t in range(x.shape[1]):
            h = torch.tanh(x[:, t] @ self.w_ih.T + h @ self.w_hh.T)
        return h @ self.w_ho.T


def small_rnn(seed=0):
    torch.manual_seed(seed)
    model = TinyRNN()
    x = torch.randn(8, 6, 2, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)
    return model, (lambda: ((model(x) - y) ** 2).mean()), x, y


def dense_hessian(model, loss_fn_of_model):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(flat):
        chunks = flat.split([math.prod(s) for s in shapes])
        params = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=False)}
        return loss_fn_of_model(lambda inp: functional_call(model, params, (inp,)))

    return torch.autograd.functional.hessian(f, flat0)


def mlp_case():
    model, loss_fn, x, y = small_mlp()
    h = dense_hessian(model, lambda m: nn.functional.cross_entropy(m(x), y))
    return model, loss_fn, h


def rnn_case():
    model, loss_fn, x, y = small_rnn()
    h = dense_hessian(model, lambda m: ((m(x) - y) ** 2).mean())
    return model, loss_fn, h


CASES = {"mlp": mlp_case, "rnn": rnn_case}


@pytest.fixture(params=["mlp", "rnn"])
def case(request):
    return CASES[request.param]()


def test_hvp_equals_dense_hessian_times_vector(case):
    model, loss_fn, h = case
    g = torch.Generator().manual_seed(0)
    vs = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in model.parameters()]
    hv = C.hvp(loss_fn, list(model.parameters()), vs)
    flat = torch.cat([x.reshape(-1) for x in hv])
    torch.testing.assert_close(flat, h @ torch.cat([v.reshape(-1) for v in vs]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("which", ["largest", "smallest", "largest_magnitude"])
def test_lanczos_eigenvalues_match_dense_to_1e4(case, which):
    model, loss_fn, h = case
    ev = torch.linalg.eigvalsh(h)
    want = {
        "largest": ev.flip(0)[:3],
        "smallest": ev[:3],
        "largest_magnitude": ev[torch.argsort(ev.abs(), descending=True)][:3],
    }[which]
    res = C.hessian_eigenvalues(
        loss_fn,
        list(model.parameters()),
        k=3,
        which=which,
        tol=1e-6,
        max_iter=200,
        generator=torch.Generator().manual_seed(1),
    )
    torch.testing.assert_close(res.values, want, rtol=1e-4, atol=1e-8)
    assert res.converged and res.num_hvps <= h.shape[0]


def test_power_iteration_finds_the_top_magnitude_eigenvalue(case):
    model, loss_fn, h = case
    ev = torch.linalg.eigvalsh(h)
    top = ev[ev.abs().argmax()]
    res = C.hessian_eigenvalues(
        loss_fn,
        list(model.parameters()),
        method="power",
        tol=1e-10,
        max_iter=5000,
        generator=torch.Generator().manual_seed(2),
    )
    assert float(res.values[0]) == pytest.approx(float(top), rel=1e-4)


def test_eigenvectors_satisfy_hv_equals_lambda_v():
    model, loss_fn, h = mlp_case()
    res = C.hessian_eigenvalues(
        loss_fn,
        list(model.parameters()),
        k=2,
        tol=1e-14,
        return_vectors=True,
        generator=torch.Generator().manual_seed(3),
    )
    for lam, v in zip(res.values, res.vectors, strict=False):
        torch.testing.assert_close(h @ v, lam * v, rtol=0, atol=1e-6)


def test_trace_estimate_within_four_standard_errors(case):
    model, loss_fn, h = case
    res = C.hessian_trace(
        loss_fn, list(model.parameters()), probes=200, per_param=True, generator=torch.Generator().manual_seed(4)
    )
    exact = float(torch.trace(h))
    assert abs(res.value - exact) < 4 * res.stderr + 1e-12
    # per-block traces: the diagonal blocks of the dense Hessian
    offs = 0
    for (name, est), p in zip(res.per_param.items(), model.parameters(), strict=False):
        n = p.numel()
        block = float(torch.trace(h[offs : offs + n, offs : offs + n]))
        assert abs(est - block) < 4 * res.per_param_stderr[name] + 1e-12
        offs += n


def test_frobenius_estimate_within_four_standard_errors(case):
    model, loss_fn, h = case
    res = C.hessian_frobenius_norm(
        loss_fn, list(model.parameters()), probes=200, per_param=True, generator=torch.Generator().manual_seed(5)
    )
    exact = float(torch.linalg.matrix_norm(h))
    assert abs(res.value - exact) < 4 * res.stderr
    offs = 0
    for (name, est), p in zip(res.per_param.items(), model.parameters(), strict=False):
        n = p.numel()
        row_block = float(torch.linalg.matrix_norm(h[offs : offs + n, :]))
        assert abs(est - row_block) < 4 * res.per_param_stderr[name] + 1e-12
        offs += n


def test_exact_frobenius_equals_dense(case):
    model, loss_fn, h = case
    res = C.hessian_frobenius_norm(loss_fn, list(model.parameters()), exact=True)
    assert res.value == pytest.approx(float(torch.linalg.matrix_norm(h)), rel=1e-10)
    assert res.num_hvps == h.shape[0]


def test_single_layer_params_give_the_diagonal_block():
    model, loss_fn, h = mlp_case()
    w = model[0].weight
    res = C.hessian_frobenius_norm(loss_fn, {"0.weight": w}, exact=True)
    n = w.numel()
    assert res.value == pytest.approx(float(torch.linalg.matrix_norm(h[:n, :n])), rel=1e-10)


def test_ggn_product_equals_explicit_jt_hl_j():
    model, _, x, y = small_mlp()
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in params]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def out_of(flat):
        chunks = flat.split([math.prod(s) for s in shapes])
        return functional_call(
            model, {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=False)}, (x,)
        ).reshape(-1)

    jac = torch.autograd.functional.jacobian(out_of, flat0)  # [n*3, P]
    out0 = out_of(flat0).detach()
    hl = torch.autograd.functional.hessian(lambda o: nn.functional.cross_entropy(o.view(16, 3), y), out0)
    ggn = jac.T @ hl @ jac
    g = torch.Generator().manual_seed(6)
    vs = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    got = C.ggn_vp(lambda: model(x), lambda o: nn.functional.cross_entropy(o, y), params, vs)
    torch.testing.assert_close(
        torch.cat([t.reshape(-1) for t in got]), ggn @ torch.cat([v.reshape(-1) for v in vs]), rtol=1e-9, atol=1e-12
    )


def test_spectral_density_integrates_to_one_and_covers_the_spectrum():
    model, loss_fn, h = mlp_case()
    ev = torch.linalg.eigvalsh(h)
    sd = C.hessian_spectral_density(
        loss_fn, list(model.parameters()), iterations=h.shape[0], runs=2, generator=torch.Generator().manual_seed(7)
    )
    mass = torch.trapezoid(sd.density, sd.grid)
    assert float(mass) == pytest.approx(1.0, abs=0.02)
    assert float(sd.grid.min()) <= float(ev.min()) and float(sd.grid.max()) >= float(ev.max())


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"which": "biggest"}, r"which must be one of largest, smallest, largest_magnitude, got 'biggest'"),
        ({"method": "arnoldi"}, r"method must be one of lanczos, power, got 'arnoldi'"),
        ({"k": 0}, r"k must be a positive integer, got 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    model, loss_fn, _, _ = small_mlp()
    with pytest.raises(ValueError, match=match):
        C.hessian_eigenvalues(loss_fn, list(model.parameters()), **kwargs)


def test_empty_params_are_rejected():
    with pytest.raises(ValueError, match="params is empty"):
        C.hessian_trace(lambda: torch.tensor(0.0), [])


def counting(loss_fn):
    """loss_fn and a list whose length counts its calls (forward passes)."""
    calls = []

    def counted():
        calls.append(1)
        return loss_fn()

    return counted, calls


@pytest.mark.parametrize(
    "quantity",
    [
        lambda f, ps: C.hessian_eigenvalues(f, ps, k=2, tol=1e-6),
        lambda f, ps: C.hessian_eigenvalues(f, ps, method="power", tol=1e-4),
        lambda f, ps: C.hessian_trace(f, ps, probes=5),
        lambda f, ps: C.hessian_frobenius_norm(f, ps, probes=5),
        lambda f, ps: C.hessian_frobenius_norm(f, ps, exact=True),
        lambda f, ps: C.hessian_spectral_density(f, ps, iterations=10),
    ],
    ids=["lanczos", "power", "trace", "frobenius", "frobenius_exact", "density"],
)
def test_each_quantity_builds_one_graph_per_call(quantity):
    model, loss_fn, _, _ = small_mlp()
    counted, calls = counting(loss_fn)
    res = quantity(counted, list(model.parameters()))
    assert len(calls) == 1 and res.num_hvps > 1


def test_a_prebuilt_operator_shares_one_graph_across_quantities_and_gives_the_same_values():
    model, loss_fn, _, _ = small_mlp()
    params = list(model.parameters())
    counted, calls = counting(loss_fn)
    op = C.HessianOperator(counted, params)
    eig = C.hessian_eigenvalues(op, k=2, tol=1e-8, generator=torch.Generator().manual_seed(1))
    tr = C.hessian_trace(op, probes=7, generator=torch.Generator().manual_seed(2))
    fro = C.hessian_frobenius_norm(op, probes=7, generator=torch.Generator().manual_seed(3))
    C.hessian_spectral_density(op, iterations=10)
    assert len(calls) == 1
    assert op.num_hvps == eig.num_hvps + tr.num_hvps + fro.num_hvps + 10  # each result counts its own products
    fresh = C.hessian_eigenvalues(loss_fn, params, k=2, tol=1e-8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(eig.values, fresh.values, rtol=0, atol=0)
    assert tr.value == C.hessian_trace(loss_fn, params, probes=7, generator=torch.Generator().manual_seed(2)).value
    assert (
        fro.value
        == C.hessian_frobenius_norm(loss_fn, params, probes=7, generator=torch.Generator().manual_seed(3)).value
    )


def test_an_operator_with_params_is_refused_and_a_loss_without_them_too():
    model, loss_fn, _, _ = small_mlp()
    op = C.HessianOperator(loss_fn, list(model.parameters()))
    with pytest.raises(ValueError, match="params must be None when an operator is passed"):
        C.hessian_trace(op, list(model.parameters()))
    with pytest.raises(ValueError, match="params is missing"):
        C.hessian_trace(loss_fn)


def test_hessian_operator_maps_flat_float64_vectors_as_before():
    model, loss_fn, h = mlp_case()
    op = C.HessianOperator(loss_fn, list(model.parameters()))
    v = torch.randn(op.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = op(v)
    assert out.dtype == torch.float64 and op.dim == h.shape[0] and op.num_hvps == 1
    torch.testing.assert_close(out, h @ v, rtol=1e-10, atol=1e-12)
    assert op.names == [f"param{i}" for i in range(4)] and len(op.grads) == 4


def test_float32_model_keeps_a_float32_basis_and_matches_the_float64_dense_hessian():
    model, loss_fn, h = mlp_case()
    model32 = model.float()
    _, _, x, y = small_mlp()
    x32 = x.float()
    res = C.hessian_eigenvalues(
        lambda: nn.functional.cross_entropy(model32(x32), y),
        list(model32.parameters()),
        k=3,
        tol=1e-6,
        return_vectors=True,
        generator=torch.Generator().manual_seed(1),
    )
    assert res.vectors.dtype == torch.float32
    assert res.basis_bytes % (h.shape[0] * 4) == 0  # rows of float32
    # float32 products carry ~1e-7 relative error; the basis adds nothing visible beyond it
    torch.testing.assert_close(res.values, torch.linalg.eigvalsh(h).flip(0)[:3], rtol=2e-5, atol=1e-6)


def test_top_eigenvalues_of_a_gauss_newton_operator_match_the_dense_ggn():
    from inertia.diagnostics.products import FlatOperator, GaussNewtonProduct

    model, _, x, y = small_mlp()
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in params]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def out_of(flat):
        chunks = flat.split([math.prod(s) for s in shapes])
        ps = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        return functional_call(model, ps, (x,)).reshape(-1)

    jac = torch.autograd.functional.jacobian(out_of, flat0)
    hl = torch.autograd.functional.hessian(lambda o: nn.functional.cross_entropy(o.view(16, 3), y), out_of(flat0))
    ggn = jac.T @ hl @ jac
    out = model(x)
    op = FlatOperator(GaussNewtonProduct(out, nn.functional.cross_entropy(out, y), params), params)
    res = C.hessian_eigenvalues(op, k=2, tol=1e-10, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(res.values, torch.linalg.eigvalsh(ggn).flip(0)[:2], rtol=1e-9, atol=1e-12)


def test_dots_accumulate_float32_vectors_in_float64():
    from inertia.diagnostics.lanczos import dots

    g = torch.Generator().manual_seed(0)
    rows = torch.rand(3, 2_000_003, generator=g)  # positive terms: float32 BLAS loses ~1e-5 here
    w = torch.rand(2_000_003, generator=g)
    exact = rows.double() @ w.double()
    torch.testing.assert_close(dots(rows, w), exact, rtol=1e-6, atol=0)


def test_monitor_quantities_at_one_step_share_one_forward_pass():
    from inertia import diagnostics as D

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    calls = []

    def loss_fn():
        calls.append(1)
        return nn.functional.cross_entropy(m(x), y)

    names = ["hessian_top_eigenvalue", "weight_norms", "hessian_frobenius_norm", "hessian_trace"]
    mon = D.Monitor(m, names, every=2, loss_fn=loss_fn, probes=3)
    for step in range(5):
        mon.step(step)
    assert len(calls) == 3  # steps 0, 2, 4: one forward each for the three curvature quantities
    assert mon.__dict__.get("_curvature_operator") is None  # no graph is held between steps
    rec = mon.records[0]
    assert {"hessian_top_eigenvalue", "hessian_frobenius_norm", "hessian_trace"} <= set(rec)
