"""Training with the Monitor on is bit-identical to training with it off, with dropout and
BatchNorm and with curvature quantities on: their extra passes restore the RNG, the buffers, the
modes and the gradients."""

import pytest
import torch
from torch import nn

from inertia import diagnostics as D


def train(quantities, steps=8):
    torch.manual_seed(0)
    layers = [nn.Linear(10, 32), nn.Tanh(), nn.Dropout(0.3), nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU()]
    m = nn.Sequential(*layers, nn.Linear(32, 3))
    x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    def loss_fn():
        return nn.functional.cross_entropy(m(x), y)

    mon = D.Monitor(m, quantities, every=2, loss_fn=loss_fn) if quantities else None
    losses = []
    for t in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        if mon is not None:
            mon.step(t)
        opt.step()
        losses.append(float(loss))
    return losses, [p.detach().clone() for p in m.parameters()], [b.clone() for b in m.buffers()], mon


@pytest.mark.parametrize(
    "quantities",
    [["layer_stats"], ["hessian_trace"], ["layer_stats", "hessian_trace", "hessian_top_eigenvalue"]],
    ids=["layer_stats", "trace", "all"],
)
def test_training_with_the_monitor_is_bit_identical(quantities):
    off, on = train(None), train(quantities)
    assert on[0] == off[0]
    assert all(torch.equal(a, b) for a, b in zip(on[1], off[1], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(on[2], off[2], strict=True))  # incl. num_batches_tracked
    assert on[3].records  # it did record


def test_preserved_restores_modes_rng_buffers_and_grads():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    m[0].weight.grad = torch.ones_like(m[0].weight)
    grad = m[0].weight.grad
    m.eval()
    before = [b.clone() for b in m.buffers()], torch.get_rng_state()
    with D.state.preserved(m):
        m.train()
        m(torch.randn(8, 3)).sum().backward()
        torch.rand(5)
    assert not m.training and not m[1].training
    assert m[0].weight.grad is grad and torch.equal(grad, torch.ones_like(grad))
    assert all(torch.equal(a, b) for a, b in zip(m.buffers(), before[0], strict=True))
    assert torch.equal(torch.get_rng_state(), before[1])
