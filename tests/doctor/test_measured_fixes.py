"""The doctor's learning-rate fixes are measured before they are printed (a trial of each
candidate on a copy), and a trial judges divergence at its end, so that an early "catapult" spike
that comes back down is not called a divergence."""

import copy
import types

import pytest
import torch
from torch import nn

import inertia
from inertia.diagnostics.trial import TrialRun, trial_run
from inertia.doctor import measure


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 3))


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(128, 10, generator=g)
    return x, (x @ torch.randn(10, 3, generator=g)).argmax(1)


def test_trial_overrides_set_every_group_of_the_copied_optimizer_and_leave_the_users():
    model = mlp()
    x, y = batch()
    opt = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.99)
    loss = lambda m: nn.functional.cross_entropy(m(x), y)  # noqa: E731
    slow = trial_run(model, loss, opt, steps=30)
    fast = trial_run(model, loss, opt, steps=30, overrides={"lr": 0.5, "momentum": 0.9})
    assert fast.final < 0.8 * slow.final
    assert opt.param_groups[0]["lr"] == 1e-6 and opt.param_groups[0]["momentum"] == 0.99
    # without an optimizer the overrides replace lr and momentum
    plain = trial_run(model, loss, lr=1e-6, momentum=0.99, steps=30, overrides={"lr": 0.5, "momentum": 0.9})
    assert plain.losses == pytest.approx(fast.losses, rel=1e-5)


def test_a_spike_that_comes_back_down_is_not_a_divergence(monkeypatch):
    catapult = TrialRun([1.0, 40.0, 8.0, 0.2], steps=3, diverged=False, blowup=measure.HOPELESS)
    stuck_high = TrialRun([1.0, 40.0, 30.0, 20.0], steps=3, diverged=False, blowup=measure.HOPELESS)
    for run, diverged in ((catapult, False), (stuck_high, True)):
        monkeypatch.setattr(measure, "trial_run", lambda *a, run=run, **k: copy.deepcopy(run))
        ex = types.SimpleNamespace(model=None, batch_loss=None)
        assert measure._trial(ex, None, (0.1, 0.0, False), 3, 10.0).diverged is diverged


def test_the_trial_stops_only_on_a_hopeless_loss():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    x = torch.ones(4, 1)
    run = trial_run(model, lambda m: m(x).square().mean(), lr=1.5, steps=50, blowup=measure.HOPELESS)
    # w -> (1 - 2 lr) w = -2 w: the loss grows 4x per update and passes 1e4 x the first at update 7
    assert run.diverged and run.steps_run == 7


def test_fix_candidates_in_order_without_repeats():
    c = measure._fix_candidates
    assert c(1e-5, 0.9, False, 0.2) == [{"lr": 0.1}, {"lr": 1e-4}, {"lr": 1e-6}, {"lr": 1e-3}, {"lr": 1e-7}]
    assert c(1.0, 0.9, False, 1.0) == [{"lr": 10.0}, {"lr": 0.1}, {"lr": 100.0}, {"lr": 0.01}]  # bound: not > lr
    assert c(10.0, 0.9, True, 0.5) == [{"lr": 0.5}, {"lr": 0.1}, {"lr": 0.01}]
    assert c(10.0, 0.99, True, None)[0] == {"lr": 10.0, "momentum": 0.9}


def test_a_rate_far_too_small_gets_a_measured_fix_that_trains():
    model, (x, y) = mlp(), batch()
    optimizer = inertia.optim.Momentum(model.parameters(), lr=1e-6, momentum=0.9, nesterov=True)
    report = inertia.doctor(model, x, y, optimizer=optimizer, trial_seconds=120)
    top = report.top
    assert top.code == "no_progress" and report.trial["fix"] is not None
    assert "a trial on a copy trains" in top.message
    assert report.trial["fixes_tried"][-1]["lr"] == report.trial["fix"]["lr"]
    exec(top.fix, {"optimizer": optimizer, "model": model})  # as printed
    assert optimizer.param_groups[0]["lr"] == report.trial["fix"]["lr"]
    run = trial_run(model, lambda m: nn.functional.cross_entropy(m(x), y), optimizer, steps=150)
    assert run.final < 0.8 * run.initial


def test_a_divergence_at_high_momentum_gets_a_measured_fix():
    model, (x, y) = mlp(1), batch(1)
    optimizer = inertia.optim.Momentum(model.parameters(), lr=20.0, momentum=0.995, nesterov=True)
    report = inertia.doctor(model, x, y, optimizer=optimizer, trial_seconds=120, curvature_checks=False)
    assert report.top.code == "unstable_lr" and report.top.severity == "error"
    fix = report.trial["fix"]
    assert fix is not None and fix["momentum"] == 0.9 and 'g["momentum"] = 0.9' in report.top.fix
    exec(report.top.fix, {"optimizer": optimizer, "model": model})
    run = trial_run(model, lambda m: nn.functional.cross_entropy(m(x), y), optimizer, steps=150, blowup=1e4)
    assert not run.diverged and run.final < 0.8 * run.initial


def test_the_users_model_and_optimizer_are_untouched_by_the_fix_search():
    model, (x, y) = mlp(), batch()
    optimizer = inertia.optim.Momentum(model.parameters(), lr=1e-6, momentum=0.9)
    before = copy.deepcopy(model.state_dict())
    inertia.doctor(model, x, y, optimizer=optimizer, trial_seconds=120, curvature_checks=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert optimizer.param_groups[0]["lr"] == 1e-6 and not optimizer.state


def test_a_constant_momentum_beyond_the_trials_reach_is_a_warning_and_a_moderate_one_is_not():
    x, y = batch()
    for mu, expected in ((0.999, True), (0.9, False), (0.99, False)):
        model = mlp()
        optimizer = inertia.optim.Momentum(model.parameters(), lr=0.01, momentum=mu)
        report = inertia.doctor(model, x, y, optimizer=optimizer, trial_seconds=120, curvature_checks=False)
        found = [f for f in report.findings if f.code == "momentum_beyond_trial"]
        assert bool(found) is expected, (mu, report.findings)
        if found:
            assert found[0].severity == "warning" and "1000 updates" in found[0].message
            exec(found[0].fix, {"optimizer": optimizer, "model": model})
            assert optimizer.param_groups[0]["momentum"] == 0.99


def test_after_a_stall_whose_loss_rose_the_smaller_rate_is_tried_first():
    c = measure._fix_candidates
    assert c(1.0, 0.9, False, 1.0, rose=True) == [{"lr": 0.1}, {"lr": 10.0}, {"lr": 0.01}, {"lr": 100.0}]
    assert c(1e-5, 0.9, False, 0.2, rose=True)[0] == {"lr": 0.1}  # the quadratic bound's rate stays first
    assert c(10.0, 0.9, True, 0.5, rose=True) == c(10.0, 0.9, True, 0.5)  # a divergence: unchanged


def test_a_trial_settles_once_its_losses_stay_below_the_line():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    x = torch.ones(4, 1)
    loss = lambda m: m(x).square().mean()  # noqa: E731
    full = trial_run(model, loss, lr=0.1, steps=100)
    early = trial_run(model, loss, lr=0.1, steps=100, stop_below=0.5, patience=5)
    # w -> 0.8 w: the loss 0.64^t is below 0.5 from t = 2; 5 such losses are reached at t = 6
    assert early.settled and not full.settled and early.steps_run == 6
    assert early.losses == full.losses[:7] and all(v < 0.5 for v in early.losses[-5:])
    never = trial_run(model, loss, lr=1e-4, steps=10, stop_below=0.5, patience=5)
    assert not never.settled and never.steps_run == 10
    with pytest.raises(ValueError, match="patience"):
        trial_run(model, loss, lr=0.1, stop_below=0.5, patience=0)


def test_an_oscillating_rate_is_fixed_by_a_smaller_one_tried_first_and_cut_short():
    model, (x, y) = mlp(), batch()
    optimizer = inertia.optim.Momentum(model.parameters(), lr=5.0, momentum=0.9, nesterov=True)
    report = inertia.doctor(model, x, y, optimizer=optimizer, trial_seconds=120, curvature_checks=False)
    t = report.trial
    # the trial stalls (no divergence, final loss above the line) with a loss that rose
    assert not t["diverged"] and t["steps_run"] == 150 and max(t["losses"]) > t["losses"][0]
    assert t["fixes_tried"][0]["lr"] == 0.5 and t["fix"] == {"lr": 0.5}  # lr / 10 tried first, and it trains
    assert t["fixes_tried"][0]["steps_run"] < 150  # settled before the end
