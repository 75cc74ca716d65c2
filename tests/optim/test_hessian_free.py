"""HessianFree, the optimizer, implements Martens (2010): one step lands on a quadratic's minimizer,
rho and lambda follow the curvature's error, it trains an autoencoder and the tanh RNN, its state
round-trips, it refuses bad closures; its GGN product (the shared ``diagnostics.products`` one,
under HF's old name) matches a dense J^T H J. The pieces (CG, damping, line search, options,
preconditioner, closures) are tested alone in test_hf_*.py."""

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from inertia import init as I
from inertia.data import rnn_task
from inertia.diagnostics.products import flatten, unflatten
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


def test_a_second_param_group_is_refused():
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="parameter groups"):
        HessianFree([{"params": [w]}, {"params": [torch.nn.Parameter(torch.ones(2))]}])


def test_step_without_a_closure_is_refused():
    with pytest.raises(ValueError, match="needs a closure"):
        HessianFree([torch.nn.Parameter(torch.ones(3))]).step(None)


@pytest.mark.parametrize("result", [1.0, (1, 2, 3, 4), "loss"])
def test_a_closure_returning_neither_the_loss_nor_outputs_and_loss_is_refused(result):
    with pytest.raises(ValueError, match=r"the closure must return the loss \(a scalar tensor\), or \(outputs, loss\)"):
        HessianFree([torch.nn.Parameter(torch.ones(3))]).step(lambda: result)


def test_a_loss_that_does_not_depend_on_the_parameters_is_refused():
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match="does not require grad"):
        HessianFree([w]).step(lambda: (w, torch.tensor(1.0)))


def test_structural_damping_without_hidden_activities_is_refused():
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match=r"structural_damping > 0 needs the hidden activities"):
        HessianFree([w], structural_damping=0.5).step(lambda: (w * 2, ((w * 2) ** 2).sum()))


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
        torch.testing.assert_close(flatten(op(unflatten(v, params))), dense @ v, rtol=1e-10, atol=1e-12)
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
    torch.testing.assert_close(flatten(op(unflatten(v, params))), expected, rtol=1e-10, atol=1e-12)


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
