"""HessianFree implements Martens (2010): GGN products, preconditioned CG with his stopping rule,
Levenberg-Marquardt damping, backtracking and a line search; checked against dense references."""

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from inertia import init as I
from inertia.data import rnn_task
from inertia.models import TanhRNN, deep_autoencoder
from inertia.optim import HessianFree, PerExample
from inertia.optim import hessian_free as hf

D = 8


def spd(dim, cond, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    lam = torch.logspace(0, math.log10(cond), dim, dtype=torch.float64)
    return q @ torch.diag(lam) @ q.T, torch.randn(dim, generator=g, dtype=torch.float64)


def quadratic_problem(scale=1.0):
    """theta -> z = theta (J = I), L(z) = 1/2 z^T A z - b^T z: G = H = A, minimizer A^{-1} b."""
    a, b = spd(D, 100.0)
    theta = torch.nn.Parameter(torch.randn(D, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))

    def closure():
        z = theta * 1.0
        return z, 0.5 * z @ a @ z - b @ z

    def scaled_curvature():  # the curvature batch sees the curvature times `scale`
        z = theta * 1.0
        return z, scale * 0.5 * z @ a @ z - b @ z

    return theta, a, b, closure, scaled_curvature


# -- the required behaviours ---------------------------------------------------------------------------
@pytest.mark.parametrize("curvature", ["ggn", "hessian"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_one_step_with_zero_damping_lands_on_the_minimizer_of_a_quadratic(curvature, weight_decay):
    theta, a, b, closure, _ = quadratic_problem()
    opt = HessianFree(
        [theta], damping=0.0, preconditioner=None, cg_init_decay=0.0, curvature=curvature, weight_decay=weight_decay
    )
    opt.step(closure)
    minimizer = torch.linalg.solve(a + weight_decay * torch.eye(D, dtype=a.dtype), b)
    # CG is exact after D iterations; backtracking may then pick an earlier kept iterate whose f ties
    # with the last one's in float64 (an error delta in theta changes f by ~delta^2): 1e-7 allows that.
    torch.testing.assert_close(theta.detach(), minimizer, rtol=0, atol=1e-7)
    assert opt.last_info["alpha"] == 1.0 and opt.last_info["rho"] == pytest.approx(1.0, abs=1e-9)


def test_cg_matches_a_dense_solve_with_and_without_preconditioner():
    a, b = spd(40, 1e3, seed=3)
    exact = torch.linalg.solve(a, b)
    diag = a.diagonal() ** -0.75
    x0 = torch.full_like(b, 0.1)
    for precond, start in ((None, None), (diag, None), (diag, x0)):
        res = hf.conjugate_gradient(lambda v: a @ v, b, start, precond_inv=precond, max_iter=400, tol=0.0)
        torch.testing.assert_close(res.x, exact, rtol=1e-8, atol=1e-10)
        assert res.reason != "max_iter"
        phi_star = -0.5 * float(b @ exact)
        assert res.values[-1] == pytest.approx(phi_star, rel=1e-12)


def test_cg_stops_by_martens_relative_progress_rule():
    a, b = spd(200, 1e4, seed=4)
    tol = 5e-4
    res = hf.conjugate_gradient(lambda v: a @ v, b, max_iter=500, tol=tol)
    assert res.reason == "progress"
    i, phi = res.iterations, res.values

    def rule_holds(j):
        k = max(10, math.ceil(0.1 * j))
        return j > k and phi[j] < 0 and (phi[j] - phi[j - k]) / phi[j] < k * tol

    assert rule_holds(i) and not any(rule_holds(j) for j in range(1, i))
    assert all(phi[j + 1] <= phi[j] + 1e-12 for j in range(i))  # CG decreases phi monotonically
    kept = [it for it, _, _ in res.iterates]  # ceil(1.3^m) for backtracking, and the last one
    assert kept[:8] == [1, 2, 3, 4, 6, 8, 11, 15] and kept[-1] == i


@pytest.mark.parametrize(
    "rho,factor",
    [
        (-math.inf, 1.5),
        (float("nan"), 1.5),
        (0.1, 1.5),
        (0.2499, 1.5),
        (0.25, 1.0),
        (0.5, 1.0),
        (0.75, 1.0),
        (0.7501, 2 / 3),
        (3.0, 2 / 3),
    ],
)
def test_damping_adapts_by_the_reduction_ratio(rho, factor):
    assert hf.adapt_damping(2.0, rho) == pytest.approx(2.0 * factor, rel=1e-15)


def test_damping_stays_within_its_bounds():
    assert hf.adapt_damping(1.0, -1.0, bounds=(0.0, 1.2)) == 1.2
    assert hf.adapt_damping(1.0, 1.0, bounds=(0.9, 10.0)) == 0.9


@pytest.mark.parametrize("scale,factor", [(0.55, 1.5), (0.6, 1.0), (4.0, 2 / 3), (0.25, 1.5)])
def test_reduction_ratio_and_damping_on_a_quadratic_with_misestimated_curvature(scale, factor):
    """With G = c A (the curvature batch misjudges curvature by c), the exact CG step is
    p = -(cA)^{-1} g and rho = 2 - 1/c; c = 0.25 overshoots so far that f rises (rho = -inf)."""
    theta, a, b, closure, curv = quadratic_problem(scale)
    lam = 1e-12
    opt = HessianFree(
        [theta], damping=lam, preconditioner=None, cg_init_decay=0.0, backtracking=False, damping_bounds=(0.0, 1.0)
    )
    opt.step(closure, curv)
    expected = 2 - 1 / scale if scale > 0.5 else -math.inf
    assert opt.last_info["rho"] == pytest.approx(expected, rel=1e-6)
    assert opt.damping == pytest.approx(lam * factor, rel=1e-12)


def curves_like_data(n=256, seed=0):
    """Points near a 3-dimensional manifold in (0, 1)^24."""
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(n, 3, generator=g) * 2 - 1
    w = torch.randn(3, 24, generator=g) * 2
    return torch.sigmoid(z @ w + 0.5 * torch.sin(3 * z[:, :1]))


def sum_squared(out, y):
    return ((out - y) ** 2).sum(1).mean()


def small_autoencoder():
    torch.manual_seed(1)
    m = deep_autoencoder([24, 16, 8, 3])
    I.apply(m, ("sparse", {"fan_in": 3, "std": 1.0}), generator=torch.Generator().manual_seed(0))
    return m


@pytest.mark.slow
def test_hf_lowers_a_deep_autoencoders_loss_faster_per_epoch_than_sgd():
    """24-16-8-3-8-16-24 logistic autoencoder, sparse init, 25 epochs of 256 cases: HF (one iteration
    per epoch: full-batch gradient, a quarter of it for curvature) against SGD (8 updates of 32 per
    epoch) at its best learning rate of a 3x grid."""
    x, epochs = curves_like_data(), 25
    model = small_autoencoder()
    opt = HessianFree(model.parameters(), damping=1.0)
    xc = x[::4]

    def closure():
        out = model(x)
        return out, sum_squared(out, x)

    def curvature_closure():
        out = model(xc)
        return out, sum_squared(out, xc)

    for _ in range(epochs):
        opt.step(closure, curvature_closure, per_example=PerExample(model, x, x, sum_squared))
    with torch.no_grad():
        hf_loss = float(sum_squared(model(x), x))

    sgd_losses = {}
    for lr in (0.1, 0.3, 1.0, 3.0):
        model = small_autoencoder()
        sgd = torch.optim.SGD(model.parameters(), lr=lr)
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=g)
            for k in range(0, len(x), 32):
                xb = x[perm[k : k + 32]]
                sgd.zero_grad()
                sum_squared(model(xb), xb).backward()
                sgd.step()
        with torch.no_grad():
            sgd_losses[lr] = float(sum_squared(model(x), x))
    assert hf_loss < 0.5 * min(sgd_losses.values()), (hf_loss, sgd_losses)


# -- state, errors ----------------------------------------------------------------------------------------
def test_state_dict_round_trip_resumes_exactly():
    x = curves_like_data(64)
    model = small_autoencoder()
    opt = HessianFree(model.parameters(), damping=2.0, cg_max_iter=30)

    def closure_for(m):
        def closure():
            out = m(x)
            return out, sum_squared(out, x)

        return closure

    for _ in range(2):
        opt.step(closure_for(model), per_example=PerExample(model, x, x, sum_squared))
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    first = opt.state_dict()["state"][0]
    assert first["step"] == 2 and first["cg_iters_total"] > 0 and first["curvature_products"] > 0
    assert "cg_solution" in first and opt.state_dict()["param_groups"][0]["damping"] == opt.damping != 2.0

    twin = small_autoencoder()
    twin.load_state_dict(saved["model"])
    twin_opt = HessianFree(twin.parameters(), damping=2.0, cg_max_iter=30)
    twin_opt.load_state_dict(saved["opt"])
    assert twin_opt.damping == opt.damping
    for m, o in ((model, opt), (twin, twin_opt)):
        for _ in range(2):
            o.step(closure_for(m), per_example=PerExample(m, x, x, sum_squared))
    for p, q in zip(model.parameters(), twin.parameters(), strict=False):
        assert torch.equal(p, q)
    assert opt.last_info == twin_opt.last_info


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": 0.0}, r"lr must be a finite number in \(0, inf\), got 0.0"),
        ({"lr": float("nan")}, r"lr must be a finite number"),
        ({"damping": -1.0}, r"damping must be a finite number in \[0, inf\), got -1.0"),
        ({"cg_max_iter": 0}, r"cg_max_iter must be an integer >= 1, got 0"),
        ({"cg_max_iter": 2.5}, r"cg_max_iter must be an integer >= 1, got 2.5"),
        ({"cg_min_iter": 300}, r"cg_min_iter must be <= cg_max_iter, got 300 > 250"),
        ({"cg_init_decay": 1.5}, r"cg_init_decay must be a finite number in \[0, 1\], got 1.5"),
        ({"structural_damping": -0.1}, r"structural_damping must be a finite number in \[0, inf\)"),
        ({"preconditioner": "jacobi"}, r"preconditioner must be one of \['martens', 'none'\] or None, got 'jacobi'"),
        ({"preconditioner_exponent": 2.0}, r"preconditioner_exponent must be a finite number in \[0, 1\]"),
        ({"cg_tol": -1e-3}, r"cg_tol must be a finite number in \[0, inf\)"),
        ({"backtracking": 1}, r"backtracking must be True or False, got 1"),
        ({"line_search": "yes"}, r"line_search must be True or False, got 'yes'"),
        ({"damping_bounds": (1.0, 0.1)}, r"damping_bounds must be a pair \(low, high\) with 0 <= low <= high"),
        ({"curvature": "fisher"}, r"curvature must be one of \['ggn', 'hessian'\], got 'fisher'"),
        ({"curvature": "hessian", "structural_damping": 0.3}, r"structural_damping needs curvature='ggn'"),
        ({"weight_decay": -1.0}, r"weight_decay must be a finite number in \[0, inf\)"),
        ({"preconditioner_examples": 0}, r"preconditioner_examples must be an integer >= 1"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HessianFree([torch.nn.Parameter(torch.zeros(3))], **kwargs)


def test_check_options_names_the_unknown_ones():
    with pytest.raises(ValueError, match=r"unknown HessianFree option\(s\) \['cg_iters'\]; accepted: .*cg_max_iter"):
        HessianFree.check_options(cg_iters=10)
    HessianFree.check_options(damping=45.0, cg_max_iter=100)


def test_bad_closures_and_param_groups_raise_clear_errors():
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="parameter groups"):
        HessianFree([{"params": [w]}, {"params": [torch.nn.Parameter(torch.ones(2))]}])
    opt = HessianFree([w])
    with pytest.raises(ValueError, match=r"must return \(outputs, loss\).*got Tensor"):
        opt.step(lambda: (w * 2).sum())
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step(None)
    with pytest.raises(ValueError, match="does not require grad"):
        opt.step(lambda: (w, torch.tensor(1.0)))
    structural = HessianFree([w], structural_damping=0.5)
    with pytest.raises(ValueError, match=r"structural_damping > 0 needs the hidden activities"):
        structural.step(lambda: (w * 2, ((w * 2) ** 2).sum()))


def test_a_non_finite_loss_leaves_the_parameters_unchanged():
    w = torch.nn.Parameter(torch.ones(3))
    opt = HessianFree([w])
    loss = opt.step(lambda: (w * 1.0, (w * 1.0).sum() * float("nan")))
    assert math.isnan(float(loss)) and torch.equal(w.detach(), torch.ones(3)) and opt.last_info["alpha"] == 0.0


# -- curvature products and the preconditioner against brute force -----------------------------------------
def tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 5)).double()


def dense_ggn(model, x, loss_of_outputs):
    """J^T H_L J from an explicit Jacobian and loss Hessian."""
    names = [n for n, _ in model.named_parameters()]
    params = [p.detach() for p in model.parameters()]
    sizes = [p.numel() for p in params]

    def outputs_of(flat):
        ps = {n: c.view_as(p) for n, c, p in zip(names, flat.split(sizes), params, strict=False)}
        return functional_call(model, ps, (x,)).reshape(-1)

    flat = torch.cat([p.reshape(-1) for p in params])
    jac = torch.autograd.functional.jacobian(outputs_of, flat)  # [n*out, P]
    z = outputs_of(flat).detach()
    h = torch.autograd.functional.hessian(lambda zz: loss_of_outputs(zz.view(x.shape[0], -1)), z)
    return jac.T @ h @ jac


LOSSES = {
    "mean_squared": lambda out, y: F.mse_loss(out, y),
    "sum_squared": lambda out, y: ((out - y) ** 2).sum(1).mean(),
    "softmax_cross_entropy": lambda out, y: F.cross_entropy(out, y.argmax(1)),
    "sigmoid_cross_entropy": lambda out, y: F.binary_cross_entropy_with_logits(out, (y > 0).double()),
}


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
def test_ggn_product_matches_dense_jt_h_j(loss_name):
    model, loss_fn = tiny_net(), LOSSES[loss_name]
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    dense = dense_ggn(model, x, lambda z: loss_fn(z, y))
    params = list(model.parameters())
    out = model(x)
    op = hf.GaussNewtonOperator(out, loss_fn(out, y), params)
    for _ in range(3):
        v = torch.randn(dense.shape[0], generator=g, dtype=torch.float64)
        torch.testing.assert_close(hf._flat(op(hf._split(v, params))), dense @ v, rtol=1e-10, atol=1e-12)
    assert op.num_products == 3
    assert torch.linalg.eigvalsh(dense).min() > -1e-10  # positive semi-definite


def test_structural_damping_adds_mu_lambda_jh_t_jh():
    model, loss_fn = tiny_net(), LOSSES["sum_squared"]
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    hidden_model = model[:2]  # h = tanh(W1 x + b1): depends on the first layer only
    n_first = sum(p.numel() for p in hidden_model.parameters())
    params = list(model.parameters())
    h = model[1](model[0](x))
    out = model[2](h)
    op = hf.GaussNewtonOperator(out, loss_fn(out, y), params, hidden=h, hidden_weight=0.7)
    ggn = dense_ggn(model, x, lambda z: loss_fn(z, y))
    jh_t_jh = dense_ggn(hidden_model, x, lambda hh: 0.5 * (hh**2).sum())  # H of 1/2 ||h||^2 is I
    v = torch.randn(ggn.shape[0], generator=g, dtype=torch.float64)
    expected = ggn @ v
    expected[:n_first] += 0.7 * (jh_t_jh @ v[:n_first])
    torch.testing.assert_close(hf._flat(op(hf._split(v, params))), expected, rtol=1e-10, atol=1e-12)


def brute_force_fisher_diagonal(model, x, y, loss_fn):
    """(1/n) sum_i (grad l_i)^2, one backward per case."""
    acc = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(len(x)):
        grads = torch.autograd.grad(loss_fn(model(x[i : i + 1]), y[i : i + 1]), list(model.parameters()))
        for a, gi in zip(acc, grads, strict=False):
            a += gi**2
    return torch.cat([a.reshape(-1) for a in acc]) / len(x)


def tiny_rnn():
    torch.manual_seed(0)
    return TanhRNN(2, 3, 2, output="all").double()


@pytest.mark.parametrize("method", ["linear", "vmap", "graph"])
def test_preconditioner_diagonal_matches_a_per_example_loop(method):
    g = torch.Generator().manual_seed(7)
    if method == "vmap":  # a model not made of nn.Linear layers
        model, loss_fn = tiny_rnn(), lambda out, y: F.cross_entropy(out.reshape(-1, 2), y.reshape(-1))
        x, y = torch.randn(10, 4, 2, generator=g, dtype=torch.float64), torch.randint(0, 2, (10, 4), generator=g)
    else:
        model, loss_fn = tiny_net(), LOSSES["softmax_cross_entropy"]
        x = torch.randn(10, 3, generator=g, dtype=torch.float64)
        y = torch.randn(10, 5, generator=g, dtype=torch.float64)
    params = list(model.parameters())
    if method == "graph":
        out = model(x)
        diag, used = hf.martens_preconditioner_diagonal(params, outputs=out, loss=loss_fn(out, y), max_examples=10)
    else:
        diag, used = hf.martens_preconditioner_diagonal(
            params, per_example=PerExample(model, x, y, loss_fn), chunk_size=3
        )
    assert used == method
    torch.testing.assert_close(
        hf._flat(diag), brute_force_fisher_diagonal(model, x, y, loss_fn), rtol=1e-10, atol=1e-14
    )


def test_preconditioner_falls_back_to_one_backward_per_case(monkeypatch):
    model, loss_fn = tiny_net(), LOSSES["sum_squared"]
    g = torch.Generator().manual_seed(8)
    x, y = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    params = list(model.parameters())
    real = hf._per_example_graph

    def no_batching_rule(*args, batched):
        if batched:
            raise RuntimeError("Batching rule not implemented")
        return real(*args, batched=batched)

    monkeypatch.setattr(hf, "_per_example_graph", no_batching_rule)
    out = model(x)
    with pytest.warns(RuntimeWarning, match="one backward per case"):
        diag, used = hf.martens_preconditioner_diagonal(params, outputs=out, loss=loss_fn(out, y))
    assert used == "graph_loop"
    torch.testing.assert_close(
        hf._flat(diag), brute_force_fisher_diagonal(model, x, y, loss_fn), rtol=1e-10, atol=1e-14
    )


# -- the tanh RNN ----------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:HessianFree. batched per-example backward failed")
@pytest.mark.parametrize("exact_per_example", [True, False])
def test_hf_trains_the_tanh_rnn(exact_per_example):
    task = rnn_task("addition", n=64, seq_len=10, seed=0)
    torch.manual_seed(0)
    model = TanhRNN(task.input_size, 8, task.output_size, output=task.output)
    x, y = task.inputs, task.targets
    opt = HessianFree(model.parameters(), damping=1.0, cg_max_iter=40)

    def closure():
        out = model(x)
        return out, task.loss_fn(out, y)

    with torch.no_grad():
        before = float(task.loss_fn(model(x), y))
    per_example = PerExample(model, x, y, task.loss_fn) if exact_per_example else None
    for _ in range(4):
        opt.step(closure, lambda: closure(), per_example=per_example)
    # the RNN's hand-written backward uses an out= op, which vmap cannot batch: one backward per case
    assert opt.last_info["preconditioner"] == ("vmap" if exact_per_example else "graph_loop")
    with torch.no_grad():
        after = float(task.loss_fn(model(x), y))
    assert after < 0.5 * before
