"""Momentum implements Sutskever et al. (2013)'s CM and NAG exactly, for any schedule."""

import io
import math

import numpy as np
import pytest
import torch

from inertia.optim import Momentum, schedules

D = 5
PATHS = {"per_tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {}}  # fused: the default


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


def run_ours(a, b, x0, steps, nesterov, path="fused"):
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    at, bt = torch.tensor(a), torch.tensor(b)
    opt = Momentum([x], lr=lr_at, momentum=mu_at, nesterov=nesterov, **PATHS[path])
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
@pytest.mark.parametrize("path", list(PATHS))
def test_matches_float64_reference_with_lr_and_momentum_changing_every_step(nesterov, path):
    a, b, x0 = quadratic()
    ref_points, ref_thetas = reference(a, b, x0, 60, nesterov)
    points, thetas = run_ours(a, b, x0, 60, nesterov, path)
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
        y = torch.nn.Parameter(x0[i : i + 1].clone())
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
        opt = Momentum(
            ps,
            lr=schedules.cosine(0.1, 20),
            momentum=schedules.sutskever_momentum(0.99, period=3),
            nesterov=True,
            weight_decay=1e-3,
            foreach=foreach,
        )
        for t in range(20):
            gg = torch.Generator().manual_seed(100 + t)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=gg)
            opt.step()
        results.append([p.detach().clone() for p in ps])
    for a, b in zip(*results, strict=False):
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
    opt = Momentum(
        [{"params": [a]}, {"params": [b], "lr": 0.01, "nesterov": True, "momentum": 0.5}], lr=0.1, momentum=0.9
    )
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
        loss = (x**2).sum()
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


@pytest.mark.parametrize("foreach", [None, True], ids=["fused", "foreach"])
def test_at_theta_restores_every_lookahead_point_bitwise(foreach):
    # moving back by +mu v would round (phi - s) + s != phi at some of these entries
    g = torch.Generator().manual_seed(0)
    x = torch.nn.Parameter(torch.randn(1000, generator=g, dtype=torch.float64))
    opt = Momentum([x], lr=0.1, momentum=0.9, nesterov=True, foreach=foreach)
    _train(opt, x, 3, 0)
    before = x.detach().clone()
    with opt.at_theta():
        shifted = x.detach() - before
    assert shifted.abs().min() > 0 and ((before + shifted) - shifted != before).any()
    assert torch.equal(x, before)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lr": -0.1}, r"lr must be a non-negative finite number.*got -0.1"),
        ({"lr": 0.1, "momentum": 1.5}, r"momentum must be a finite number in \[0, 1\).*got 1.5"),
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
    with pytest.raises(
        ValueError, match=r"momentum must be a finite number in \[0, 1\) \(schedule .* at step 0\), got 1.0"
    ):
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


def _nag_reference_with_skips(lams, x0, steps, has_grad, mu_of, lr):
    """Per-parameter float64 NAG on f(x) = sum(lam x^2) / 2: a parameter whose gradient is None
    at an update keeps theta, v and the mu its look-ahead point was built with."""
    theta, v = x0.clone(), torch.zeros_like(x0)
    applied = [None] * len(x0)
    points, thetas = [], []
    for t in range(steps):
        for i in range(len(x0)):
            if not has_grad(t, i):
                continue
            mu = mu_of(t) if applied[i] is None else applied[i]
            g = lams[i] * (theta[i] + mu * v[i])
            v[i] = mu * v[i] - lr * g
            theta[i] = theta[i] + v[i]
            applied[i] = mu_of(t + 1)
        points.append(torch.stack([theta[i] + (applied[i] or 0.0) * v[i] for i in range(len(x0))]))
        thetas.append(theta.clone())
    return torch.stack(points), torch.stack(thetas)


@pytest.mark.parametrize("path", list(PATHS))
def test_nag_parameter_without_gradient_when_momentum_changes_keeps_its_own_applied_momentum(path):
    # mu goes 0.9 -> 0.5 at step 3; the second parameter has no gradient at step 2, whose update
    # would have placed its look-ahead point with mu_3 = 0.5: it keeps the point built with 0.9.
    lams = torch.tensor([1.0, 3.0], dtype=torch.float64)
    x0 = torch.tensor([1.0, -2.0], dtype=torch.float64)

    def mu_of(t):
        return 0.9 if t < 3 else 0.5

    def has_grad(t, i):
        return not (i == 1 and t == 2)

    ref_points, ref_thetas = _nag_reference_with_skips(lams, x0, 6, has_grad, mu_of, 0.1)
    ps = [torch.nn.Parameter(x0[i : i + 1].clone()) for i in range(2)]
    opt = Momentum(ps, lr=0.1, momentum=mu_of, nesterov=True, **PATHS[path])
    points, thetas = [], []
    for t in range(6):
        for i, p in enumerate(ps):
            p.grad = lams[i] * p.detach() if has_grad(t, i) else None
        opt.step()
        points.append(torch.cat([p.detach().clone() for p in ps]))
        with opt.at_theta():
            thetas.append(torch.cat([p.detach().clone() for p in ps]))
    torch.testing.assert_close(torch.stack(points), ref_points, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.stack(thetas), ref_thetas, rtol=0, atol=1e-12)


def _sgd_then(make_inertia, nesterov, steps_before=4, steps_after=6, weight_decay=0.0):
    """Train with torch SGD, then continue with (a) torch SGD and (b) ``make_inertia`` loaded
    from SGD's state dict; return both final parameters."""
    lams = torch.tensor([1.0, 4.0, 0.5], dtype=torch.float64)

    def grad_step(opt, x):
        opt.zero_grad()
        (0.5 * (lams * x * x).sum()).backward()
        opt.step()

    x = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    sgd = torch.optim.SGD([x], lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)
    for _ in range(steps_before):
        grad_step(sgd, x)
    y = torch.nn.Parameter(x.detach().clone())
    ours = make_inertia([y])
    ours.load_state_dict(sgd.state_dict())
    for _ in range(steps_after):
        grad_step(sgd, x)
        grad_step(ours, y)
    return x.detach(), y.detach()


@pytest.mark.parametrize("nesterov", [False, True], ids=["CM", "NAG"])
def test_torch_sgd_state_dict_converts_to_velocity_and_continues_like_sgd(nesterov):
    x, y = _sgd_then(lambda p: Momentum(p, lr=0.05, momentum=0.9, nesterov=nesterov), nesterov, weight_decay=1e-2)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)


def test_torch_sgd_state_dict_gives_the_velocity_minus_lr_times_the_buffer():
    x = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    sgd = torch.optim.SGD([x], lr=0.05, momentum=0.9)
    for _ in range(3):
        x.grad = x.detach() * 2
        sgd.step()
    buf = sgd.state[x]["momentum_buffer"].clone()
    ours = Momentum([x], lr=0.05, momentum=0.9)
    ours.load_state_dict(sgd.state_dict())
    torch.testing.assert_close(ours.velocity(x), -0.05 * buf, rtol=0, atol=0)
    assert torch.equal(sgd.state[x]["momentum_buffer"], buf)  # the saved buffer is not modified


@pytest.mark.parametrize(
    "sgd_kwargs,match",
    [
        ({"dampening": 0.1}, r"dampening=0.1: only dampening=0"),
        ({"maximize": True}, r"maximize=True.*accepted: maximize=False"),
        ({"nesterov": True}, r"nesterov=True but this optimizer's group 0 has nesterov=False"),
    ],
)
def test_torch_sgd_state_dict_that_cannot_be_converted_raises_before_loading(sgd_kwargs, match):
    x = torch.nn.Parameter(torch.ones(2))
    sgd = torch.optim.SGD([x], lr=0.05, momentum=0.9, **sgd_kwargs)
    x.grad = torch.ones(2)
    sgd.step()
    ours = Momentum([x], lr=0.1, momentum=0.5)
    with pytest.raises(ValueError, match=match):
        ours.load_state_dict(sgd.state_dict())
    assert ours.param_groups[0]["lr"] == 0.1 and not ours.state  # nothing was loaded


@pytest.mark.parametrize(
    "scheduler,kwargs",
    [
        (torch.optim.lr_scheduler.OneCycleLR, {"max_lr": 0.1, "total_steps": 10}),
        (torch.optim.lr_scheduler.CyclicLR, {"base_lr": 0.01, "max_lr": 0.1}),
    ],
    ids=["OneCycleLR", "CyclicLR"],
)
def test_scheduler_cycling_momentum_over_a_momentum_schedule_raises_before_the_step(scheduler, kwargs):
    x = torch.nn.Parameter(torch.ones(2))
    opt = Momentum([x], lr=0.1, momentum=schedules.sutskever_momentum(0.99), nesterov=True)
    scheduler(opt, **kwargs)  # replaces group["momentum"] by a number
    x.grad = torch.ones(2)
    with pytest.raises(
        ValueError,
        match=r"group 0's momentum was a schedule and is now the number .*"
        r"cycle_momentum=False",
    ):
        opt.step()
    assert torch.equal(x, torch.ones(2)) and not opt.state


def test_one_cycle_lr_over_a_learning_rate_schedule_raises_before_the_step():
    x = torch.nn.Parameter(torch.ones(2))
    opt = Momentum([x], lr=schedules.cosine(0.1, 10), momentum=0.9)
    torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, cycle_momentum=False)
    x.grad = torch.ones(2)
    with pytest.raises(ValueError, match=r"group 0's lr was a schedule"):
        opt.step()


def test_one_cycle_lr_drives_a_number_momentum_and_nag_stays_exact():
    # with a number momentum the scheduler wins, as for torch's SGD; NAG's look-ahead follows it
    x = torch.nn.Parameter(torch.tensor([1.0, -1.0], dtype=torch.float64))
    opt = Momentum([x], lr=0.1, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    theta, v = x.detach().clone(), torch.zeros(2, dtype=torch.float64)
    applied = opt.param_groups[0]["momentum"]
    for _ in range(5):
        lr = opt.param_groups[0]["lr"]
        x.grad = 2 * x.detach()
        opt.step()
        g = 2 * (theta + applied * v)
        v = applied * v - lr * g
        theta = theta + v
        applied = opt.param_groups[0]["momentum"]  # placed the new look-ahead point
        sched.step()
        with opt.at_theta():
            torch.testing.assert_close(x.detach(), theta, rtol=0, atol=1e-12)


def test_momentum_schedule_can_be_replaced_by_another_schedule():
    x = torch.nn.Parameter(torch.ones(1))
    opt = Momentum([x], lr=0.1, momentum=schedules.sutskever_momentum(0.99))
    opt.param_groups[0]["momentum"] = schedules.constant(0.5)
    assert opt.param_groups[0]["momentum"](0) == 0.5


def test_saved_schedule_into_an_optimizer_built_with_a_number_raises_and_loads_nothing():
    x = torch.nn.Parameter(torch.ones(2))
    scheduled = Momentum([x], lr=0.1, momentum=schedules.sutskever_momentum(0.99))
    x.grad = torch.ones(2)
    scheduled.step()
    y = torch.nn.Parameter(torch.ones(2))
    plain = Momentum([y], lr=0.2, momentum=0.9)
    with pytest.raises(
        ValueError,
        match=r"param group 0 has a momentum schedule \(sutskever_momentum.*\) but this "
        r"optimizer's momentum is a number",
    ):
        plain.load_state_dict(scheduled.state_dict())
    assert plain.param_groups[0]["momentum"] == 0.9 and plain.param_groups[0]["lr"] == 0.2 and not plain.state
