"""Momentum implements Sutskever et al. (2013)'s CM and NAG exactly, for any schedule."""

import io
import math

import numpy as np
import pytest
import torch

from inertia.optim import Momentum, schedules

D = 5


def quadratic(seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    lam = np.linspace(0.5, 10.0, D)
    a = q @ np.diag(lam) @ q.T
    b = rng.standard_normal(D)
    x0 = rng.standard_normal(D)
    return a, b, x0


def lr_at(t):
    return 0.02 * (1 + 0.5 * math.sin(t))


def mu_at(t):
    return 0.5 + 0.45 * math.cos(0.7 * t) ** 2


def reference(a, b, x0, steps, nesterov):
    """A plain float64 loop of the paper's formulas: the gradient points and the iterates."""
    theta, v = x0.copy(), np.zeros(D)
    points, thetas = [], []
    for t in range(steps):
        mu, lr = mu_at(t), lr_at(t)
        point = theta + mu * v if nesterov else theta
        points.append(point.copy())
        g = a @ point - b
        v = mu * v - lr * g
        theta = theta + v
        thetas.append(theta.copy())
    return np.array(points), np.array(thetas)


def run_ours(a, b, x0, steps, nesterov, foreach=None):
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    at, bt = torch.tensor(a), torch.tensor(b)
    opt = Momentum([x], lr=lr_at, momentum=mu_at, nesterov=nesterov, foreach=foreach)
    points, thetas = [], []
    for _ in range(steps):
        points.append(x.detach().numpy().copy())
        opt.zero_grad()
        (0.5 * x @ at @ x - bt @ x).backward()
        opt.step()
        with opt.at_theta():
            thetas.append(x.detach().numpy().copy())
    return np.array(points), np.array(thetas)


@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
@pytest.mark.parametrize("foreach", [False, True], ids=["per_tensor", "foreach"])
def test_matches_float64_reference_with_lr_and_momentum_changing_every_step(nesterov, foreach):
    a, b, x0 = quadratic()
    ref_points, ref_thetas = reference(a, b, x0, 60, nesterov)
    points, thetas = run_ours(a, b, x0, 60, nesterov, foreach)
    np.testing.assert_allclose(points, ref_points, rtol=0, atol=1e-10)
    np.testing.assert_allclose(thetas, ref_thetas, rtol=0, atol=1e-10)


def test_note_rule_v_eq_mu_v_minus_lr_dW_is_the_cm_path():
    # The note on classical momentum: v = mu*v - lr*dW; w = w + v, v starting at 0.
    a, b, x0 = quadratic(1)
    mu, lr = 0.9, 0.01
    w, v = x0.copy(), np.zeros(D)
    ws = []
    for _ in range(40):
        dW = a @ w - b
        v = mu * v - lr * dW
        w = w + v
        ws.append(w.copy())
    x = torch.nn.Parameter(torch.tensor(x0))
    opt = Momentum([x], lr=lr, momentum=mu)
    ours = []
    for _ in range(40):
        opt.zero_grad()
        (0.5 * x @ torch.tensor(a) @ x - torch.tensor(b) @ x).backward()
        opt.step()
        ours.append(x.detach().numpy().copy())
    np.testing.assert_allclose(np.array(ours), np.array(ws), rtol=0, atol=1e-12)


def test_nag_is_cm_with_effective_momentum_mu_times_one_minus_lam_lr_per_eigendirection():
    # Sutskever et al. 2013, section 2.1: on a quadratic, NAG along an eigendirection with
    # curvature lam acts as CM with momentum mu * (1 - lam * lr).
    lams = torch.tensor([0.1, 1.0, 5.0, 9.0], dtype=torch.float64)
    mu, lr = 0.95, 0.1
    x0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    x = torch.nn.Parameter(x0.clone())
    nag = Momentum([x], lr=lr, momentum=mu, nesterov=True)
    traj = []
    for _ in range(50):
        nag.zero_grad()
        (0.5 * (lams * x * x).sum()).backward()
        nag.step()
        with nag.at_theta():
            traj.append(x.detach().clone())
    traj = torch.stack(traj)
    for i, lam in enumerate(lams):
        y = torch.nn.Parameter(x0[i:i + 1].clone())
        cm = Momentum([y], lr=lr, momentum=float(mu * (1 - lam * lr)))
        # CM's velocity recursion with the effective momentum also needs the gradient of the
        # look-ahead: v' = mu v - lr lam (theta + mu v) = mu (1 - lam lr) v - lr lam theta.
        ys = []
        for _ in range(50):
            cm.zero_grad()
            (0.5 * lam * y * y).sum().backward()
            cm.step()
            ys.append(y.detach().clone())
        torch.testing.assert_close(traj[:, i], torch.cat(ys), rtol=0, atol=1e-12)


def test_foreach_and_per_tensor_paths_are_bitwise_identical():
    torch.manual_seed(0)
    shapes = [(30, 20), (20,), (7, 3, 3), (1,)]
    results = []
    for foreach in (False, True):
        g = torch.Generator().manual_seed(1)
        ps = [torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes]
        opt = Momentum(ps, lr=schedules.cosine(0.1, 20), momentum=schedules.sutskever_momentum(0.99, period=3),
                       nesterov=True, weight_decay=1e-3, foreach=foreach)
        for t in range(20):
            gg = torch.Generator().manual_seed(100 + t)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=gg)
            opt.step()
        results.append([p.detach().clone() for p in ps])
    for a, b in zip(*results):
        assert torch.equal(a, b)  # the same float operations in the same order


def _train(opt, x, steps, gen_seed):
    g = torch.Generator().manual_seed(gen_seed)
    for _ in range(steps):
        x.grad = torch.randn(x.shape, generator=g, dtype=x.dtype) + x.detach()
        opt.step()


@pytest.mark.parametrize("nesterov", [False, True])
def test_state_dict_round_trip_mid_run_continues_identically(nesterov):
    sched = schedules.sutskever_momentum(0.99, period=2)
    x = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    opt = Momentum([x], lr=0.05, momentum=sched, nesterov=nesterov)
    _train(opt, x, 5, 0)
    buf = io.BytesIO()
    torch.save({"x": x.detach().clone(), "opt": opt.state_dict()}, buf)
    _train(opt, x, 5, 1)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    y = torch.nn.Parameter(saved["x"])
    opt2 = Momentum([y], lr=0.05, momentum=sched, nesterov=nesterov)
    opt2.load_state_dict(saved["opt"])
    _train(opt2, y, 5, 1)
    assert torch.equal(x, y)


def test_state_dict_with_a_lambda_schedule_still_pickles():
    x = torch.nn.Parameter(torch.ones(2))
    opt = Momentum([x], lr=lambda t: 0.1, momentum=0.9)
    _train(opt, x, 2, 0)
    torch.save(opt.state_dict(), io.BytesIO())


def test_param_groups_keep_their_own_hyperparameters():
    a = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = Momentum([{"params": [a]}, {"params": [b], "lr": 0.01, "nesterov": True, "momentum": 0.5}],
                   lr=0.1, momentum=0.9)
    a2 = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    b2 = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    oa, ob = Momentum([a2], lr=0.1, momentum=0.9), Momentum([b2], lr=0.01, momentum=0.5, nesterov=True)
    for _ in range(5):
        for p in (a, b, a2, b2):
            p.grad = 2 * p.detach()
        opt.step()
        oa.step()
        ob.step()
    assert torch.equal(a, a2) and torch.equal(b, b2)


def test_closure_is_evaluated_and_its_loss_returned():
    x = torch.nn.Parameter(torch.tensor([3.0]))
    opt = Momentum([x], lr=0.1, momentum=0.0)

    def closure():
        opt.zero_grad()
        loss = (x ** 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    assert x.item() == pytest.approx(3.0 - 0.1 * 6.0)


def test_float_lr_follows_torch_lr_scheduler():
    x = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = Momentum([x], lr=0.1, momentum=0.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for lr in (0.1, 0.05, 0.025):
        before = x.item()
        x.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        assert before - x.item() == pytest.approx(lr, rel=1e-12)
        sched.step()


def test_parameters_without_gradients_are_skipped():
    x, y = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = Momentum([x, y], lr=0.1)
    x.grad = torch.ones(2)
    opt.step()
    assert torch.equal(y, torch.ones(2)) and torch.equal(opt.velocity(y), torch.zeros(2))


def test_at_theta_restores_the_lookahead_point():
    x = torch.nn.Parameter(torch.ones(3))
    opt = Momentum([x], lr=0.1, momentum=0.9, nesterov=True)
    _train(opt, x, 3, 0)
    before = x.detach().clone()
    with opt.at_theta():
        inside = x.detach().clone()
    assert not torch.equal(before, inside)
    assert torch.equal(x, before)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": -0.1}, r"lr must be a non-negative finite number.*got -0.1"),
        ({"lr": 0.1, "momentum": 1.5}, r"momentum must be in \[0, 1\).*got 1.5"),
        ({"lr": 0.1, "momentum": 0.0, "nesterov": True}, r"nesterov=True needs momentum > 0"),
        ({"lr": 0.1, "weight_decay": -1.0}, r"weight_decay must be a non-negative finite number, got -1.0"),
    ],
)
def test_bad_hyperparameters_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Momentum([torch.nn.Parameter(torch.ones(1))], **kwargs)


def test_schedule_returning_nan_raises_at_that_step():
    x = torch.nn.Parameter(torch.ones(1))
    opt = Momentum([x], lr=lambda t: float("nan") if t == 3 else 0.1, momentum=0.5)
    _train(opt, x, 3, 0)
    with pytest.raises(ValueError, match=r"lr must be a non-negative finite number \(schedule .* at step 3\), got nan"):
        _train(opt, x, 1, 0)


def test_schedule_returning_out_of_range_momentum_raises():
    x = torch.nn.Parameter(torch.ones(1))
    opt = Momentum([x], lr=0.1, momentum=lambda t: 1.0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\) \(schedule .* at step 0\), got 1.0"):
        _train(opt, x, 1, 0)


def test_sparse_gradients_are_rejected():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = Momentum(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ValueError, match="sparse gradients"):
        opt.step()


def test_velocity_is_the_difference_of_successive_iterates():
    a, b, x0 = quadratic(2)
    x = torch.nn.Parameter(torch.tensor(x0))
    opt = Momentum([x], lr=lr_at, momentum=mu_at, nesterov=True)
    prev = torch.tensor(x0)
    for _ in range(10):
        opt.zero_grad()
        (0.5 * x @ torch.tensor(a) @ x - torch.tensor(b) @ x).backward()
        opt.step()
        with opt.at_theta():
            theta = x.detach().clone()
        torch.testing.assert_close(opt.velocity(x), theta - prev, rtol=0, atol=1e-12)
        prev = theta


def test_zero_learning_rate_with_zero_velocity_keeps_velocity_zero():
    # k_{t+1} = mu k_t + eps_t = 0 is the one case the scaled-direction storage special-cases.
    x = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    opt = Momentum([x], lr=lambda t: 0.0 if t < 2 else 0.1, momentum=0.9)
    for t in range(4):
        x.grad = torch.ones(2, dtype=torch.float64)
        opt.step()
        if t < 2:
            assert torch.equal(x, torch.tensor([1.0, 2.0], dtype=torch.float64))
    # two updates with eps = 0.1: v1 = -0.1, v2 = 0.9 * -0.1 - 0.1 = -0.19; total -0.29
    torch.testing.assert_close(x.detach(), torch.tensor([0.71, 1.71], dtype=torch.float64), rtol=0, atol=1e-12)
