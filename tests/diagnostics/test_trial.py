"""The trial run trains a copy: the user's model, optimizer and RNG are as they were."""

import copy

import pytest
import torch
from torch import nn

from inertia.diagnostics.trial import constant_prediction_loss, trial_run
from inertia.optim import Momentum


def _bn_dropout_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 2))


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, 4, generator=g), torch.randn(32, 2, generator=g)


def test_the_model_its_buffers_grads_mode_and_the_rng_are_untouched():
    model = _bn_dropout_net()
    x, y = _data()
    nn.functional.mse_loss(model(x), y).backward()  # the user has gradients already
    before = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    trial_run(model, lambda m: nn.functional.mse_loss(m(x), y), lr=0.1, momentum=0.9, steps=5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters(), strict=True))
    assert model.training and torch.equal(rng, torch.get_rng_state())


def test_the_losses_are_a_plain_training_loop_on_a_copy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    x, y = _data()
    run = trial_run(model, lambda m: nn.functional.mse_loss(m(x), y), lr=0.05, momentum=0.9, nesterov=True, steps=6)
    twin = copy.deepcopy(model)
    opt = Momentum(twin.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    want = []
    for step in range(7):
        opt.zero_grad()
        loss = nn.functional.mse_loss(twin(x), y)
        want.append(float(loss))
        if step < 6:
            loss.backward()
            opt.step()
    assert run.losses == pytest.approx(want, rel=1e-5)
    assert not run.diverged and run.ratio < 1


def test_a_users_optimizer_is_copied_with_its_state_and_left_alone():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x, y = _data()
    opt = Momentum(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):  # build up velocity
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    state = copy.deepcopy(opt.state_dict())
    weights = model.weight.detach().clone()
    run = trial_run(model, lambda m: nn.functional.mse_loss(m(x), y), opt, steps=4)
    assert len(run.losses) == 5
    assert torch.equal(model.weight, weights)
    saved = opt.state_dict()["state"]
    for k, entries in state["state"].items():
        for key, value in entries.items():
            same = torch.equal(saved[k][key], value) if isinstance(value, torch.Tensor) else saved[k][key] == value
            assert same, (k, key)


def test_a_huge_learning_rate_diverges_and_stops_early():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    x, y = _data()
    run = trial_run(model, lambda m: nn.functional.mse_loss(m(x), y), lr=50.0, momentum=0.9, steps=30)
    assert run.diverged and len(run.losses) < 31 and run.ratio == float("inf")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"blowup": 1}, "blowup must be a finite number > 1"),
        ({"lr": -1.0}, "lr must be a non-negative finite number"),
    ],
)
def test_bad_arguments_are_named(kw, match):
    model = nn.Linear(2, 1)
    args = {"lr": 0.1, **kw}
    with pytest.raises(ValueError, match=match):
        trial_run(model, lambda m: m(torch.ones(1, 2)).sum(), **args)


def test_the_constant_prediction_loss_is_the_label_entropy_for_cross_entropy():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (200,), generator=g)
    p = torch.bincount(y, minlength=5).double() / 200
    entropy = float(-(p[p > 0] * p[p > 0].log()).sum())
    got = constant_prediction_loss(torch.randn(200, 5, generator=g), y, nn.functional.cross_entropy)
    assert got == pytest.approx(entropy, rel=1e-5)


def test_the_constant_prediction_loss_is_the_target_variance_for_squared_error():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(100, 3, generator=g) * torch.tensor([1.0, 2.0, 3.0])
    got = constant_prediction_loss(torch.randn(100, 3, generator=g), y, nn.functional.mse_loss)
    assert got == pytest.approx(float(((y - y.mean(0)) ** 2).mean()), rel=1e-5)


def test_a_time_budget_stops_the_trial_and_says_so():
    model = nn.Linear(4, 2)
    x, y = _data()
    run = trial_run(model, lambda m: nn.functional.mse_loss(m(x), y), lr=0.01, steps=10_000, max_seconds=0.05)
    assert run.out_of_time and 0 < run.steps_run < 10_000


def test_no_update_is_started_that_would_end_past_the_cap(monkeypatch):
    """A fake clock: each forward takes 0.05 s, nothing else takes time."""
    import types

    from inertia.diagnostics import trial as T

    clock = [0.0]
    monkeypatch.setattr(T, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 1)

        def forward(self, x):
            clock[0] += 0.05
            return self.lin(x)

    x, y = torch.randn(8, 3), torch.randn(8, 1)
    run = trial_run(Slow(), lambda m: nn.functional.mse_loss(m(x), y), lr=0.01, steps=1000, max_seconds=0.32)
    # the forwards end at 0.05, 0.10, ...: after the 6th (0.30 s) a 7th update would end at 0.35
    assert run.out_of_time and run.steps_run == 5 and clock[0] == pytest.approx(0.30)
    run = trial_run(Slow(), lambda m: nn.functional.mse_loss(m(x), y), lr=0.01, steps=1000, max_seconds=0.36)
    assert run.steps_run == 6
