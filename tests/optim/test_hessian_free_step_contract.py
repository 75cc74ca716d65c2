"""HessianFree.step's two closure contracts: torch's (the closure returns the loss, and may call
backward, as for LBFGS) and the outputs extension ((outputs, loss) for the Gauss-Newton matrix)."""

import math

import pytest
import torch
import torch.nn.functional as F

from inertia.optim import HessianFree, PerExample


def regression(seed=0, n=64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(5, 2, generator=g, dtype=torch.float64))
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    return model, x, y


def snapshot(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_same(a, b):
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))


def make_closure(kind, model, x, y, opt=None):
    """``loss``: returns the loss; ``backward``: torch's LBFGS idiom (zero_grad, backward, return
    the loss); ``outputs``: returns (outputs, loss)."""

    def loss_only():
        return F.mse_loss(model(x), y)

    def with_backward():
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss

    def with_outputs():
        out = model(x)
        return out, F.mse_loss(out, y)

    return {"loss": loss_only, "backward": with_backward, "outputs": with_outputs}[kind]


def test_torchs_training_loop_with_a_plain_closure_trains():
    model, x, y = regression()
    opt = HessianFree(model.parameters(), curvature="hessian", preconditioner=None, damping=1.0, cg_max_iter=20)

    def closure():  # the torch.optim.LBFGS idiom, unchanged
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return loss

    losses = []
    for _ in range(8):
        loss = opt.step(closure)
        losses.append(float(loss))
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0 and not loss.requires_grad
    assert losses[-1] < 0.2 * losses[0], losses


def test_step_returns_the_loss_before_the_step_for_both_contracts():
    for kind in ("loss", "backward", "outputs"):
        model, x, y = regression()
        opt = HessianFree(model.parameters(), curvature="hessian", preconditioner=None, cg_max_iter=5)
        with torch.no_grad():
            before = F.mse_loss(model(x), y)
        assert torch.equal(opt.step(make_closure(kind, model, x, y, opt)), before)
        with torch.no_grad():
            assert float(F.mse_loss(model(x), y)) == pytest.approx(opt.last_info["loss_after"], rel=1e-12)


def run_step(closure_kind, curvature="hessian", steps=2, **options):
    model, x, y = regression()
    opt = HessianFree(model.parameters(), curvature=curvature, cg_max_iter=10, **options)
    closure = make_closure(closure_kind, model, x, y, opt)
    for _ in range(steps):
        opt.step(closure)
    return model, opt


@pytest.mark.parametrize("closure_kind", ["loss", "backward"])
def test_a_loss_only_closure_takes_the_same_steps_as_an_outputs_closure_with_the_hessian(closure_kind):
    model, opt = run_step(closure_kind, preconditioner=None)
    reference, ref_opt = run_step("outputs", preconditioner=None)
    assert_same(snapshot(model), snapshot(reference))
    assert opt.counters == ref_opt.counters


def test_a_closures_backward_leaves_the_batch_gradient_in_p_grad_not_an_accumulation():
    model, opt = run_step("backward", steps=1, preconditioner=None)
    reference, _ = run_step("outputs", steps=1, preconditioner=None)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)


def test_the_gauss_newton_matrix_takes_its_outputs_from_the_curvature_closure():
    steps = []
    for kind in ("outputs", "loss"):
        model, x, y = regression()
        opt = HessianFree(model.parameters(), cg_max_iter=10)  # ggn, martens preconditioner
        closure = make_closure(kind, model, x, y)
        curvature_closure = make_closure("outputs", model, x[:16], y[:16])
        per_example = PerExample(model, x, y, F.mse_loss)
        for _ in range(2):
            opt.step(closure, curvature_closure, per_example=per_example)
        steps.append(snapshot(model))
    assert_same(*steps)


def test_the_gauss_newton_matrix_without_outputs_is_refused_before_the_parameters_move():
    model, x, y = regression()
    before = snapshot(model)
    opt = HessianFree(model.parameters(), preconditioner=None)
    with pytest.raises(ValueError, match=r"curvature='ggn' needs the model outputs: .*curvature='hessian'"):
        opt.step(lambda: F.mse_loss(model(x), y))
    assert_same(snapshot(model), before)


def test_the_martens_preconditioner_without_per_case_gradients_is_refused_before_the_parameters_move():
    model, x, y = regression()
    before = snapshot(model)
    opt = HessianFree(model.parameters(), curvature="hessian")
    with pytest.raises(ValueError, match=r"preconditioner='martens' needs per-case gradients: pass .*per_example"):
        opt.step(lambda: F.mse_loss(model(x), y))
    assert_same(snapshot(model), before)


def test_a_loss_only_closure_with_per_example_gets_the_martens_preconditioner():
    model, x, y = regression()
    opt = HessianFree(model.parameters(), curvature="hessian", cg_max_iter=5)
    opt.step(lambda: F.mse_loss(model(x), y), per_example=PerExample(model, x, y, F.mse_loss))
    assert opt.last_info["preconditioner"] == "linear" and math.isfinite(opt.last_info["loss_after"])
