"""torch.optim.SGD(nesterov=True) is a different rule that agrees with the paper's NAG only while
lr and momentum stay constant (docs/optim.md works through the example)."""

import pytest
import torch

from inertia.optim import Momentum


def run(make_opt, steps, lr_change=None):
    x = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = make_opt([x])
    lams = torch.tensor([1.0, 4.0], dtype=torch.float64)
    out = []
    for t in range(steps):
        if lr_change and t == lr_change[0]:
            for g in opt.param_groups:
                g["lr"] = lr_change[1]
        opt.zero_grad()
        (0.5 * (lams * x * x).sum()).backward()
        opt.step()
        out.append(x.detach().clone())  # the point where the next gradient is taken
    return torch.stack(out)


def test_sgd_nesterov_equals_paper_nag_with_constant_hyperparameters():
    ours = run(lambda p: Momentum(p, lr=0.05, momentum=0.9, nesterov=True), 30)
    torchs = run(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True), 30)
    torch.testing.assert_close(ours, torchs, rtol=0, atol=1e-12)


def test_sgd_nesterov_differs_once_the_learning_rate_changes():
    ours = run(lambda p: Momentum(p, lr=0.05, momentum=0.9, nesterov=True), 30, lr_change=(5, 0.01))
    torchs = run(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True), 30, lr_change=(5, 0.01))
    torch.testing.assert_close(ours[:5], torchs[:5], rtol=0, atol=1e-12)
    assert (ours[5:] - torchs[5:]).abs().max() > 1e-3


def test_sgd_classical_momentum_equals_cm_with_constant_hyperparameters():
    ours = run(lambda p: Momentum(p, lr=0.05, momentum=0.9), 30)
    torchs = run(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), 30)
    torch.testing.assert_close(ours, torchs, rtol=0, atol=1e-12)


def test_worked_example_in_docs():
    # f(x) = x^2 / 2, x0 = 1, mu = 0.9; lr 0.1 for the first update, 0.05 after.
    def one_d(make_opt):
        x = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
        opt = make_opt([x])
        pts = []
        for t in range(3):
            if t == 1:
                opt.param_groups[0]["lr"] = 0.05
            opt.zero_grad()
            (0.5 * x * x).sum().backward()
            opt.step()
            pts.append(round(x.item(), 6))
        return pts

    assert one_d(lambda p: Momentum(p, lr=0.1, momentum=0.9, nesterov=True)) == pytest.approx([0.81, 0.65205, 0.4844])
    assert one_d(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)) == pytest.approx(
        [0.81, 0.69255, 0.557503]
    )
