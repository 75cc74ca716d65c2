"""hessian_free.preconditioner: Martens' (2010, section 4.7) M^{-1} = (diag(F) + lambda + wd)^-0.75,
with diag(F) = (1/n) sum_i (grad l_i)^2 by each method equal to a loop of one backward per case."""

import pytest
import torch
import torch.nn.functional as F

from inertia.diagnostics.products import flatten
from inertia.models import TanhRNN
from inertia.optim import PerExample
from inertia.optim import hessian_free as hf
from inertia.optim.hessian_free import preconditioner as preconditioner_module


def tiny_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 5)).double()


def tiny_rnn():
    torch.manual_seed(0)
    return TanhRNN(2, 3, 2, output="all").double()


def softmax_cross_entropy(out, y):
    return F.cross_entropy(out, y.argmax(1))


def sum_squared(out, y):
    return ((out - y) ** 2).sum(1).mean()


def brute_force_fisher_diagonal(model, x, y, loss_fn):
    """(1/n) sum_i (grad l_i)^2, one backward per case."""
    acc = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(len(x)):
        grads = torch.autograd.grad(loss_fn(model(x[i : i + 1]), y[i : i + 1]), list(model.parameters()))
        for a, gi in zip(acc, grads, strict=True):
            a += gi**2
    return torch.cat([a.reshape(-1) for a in acc]) / len(x)


def test_the_preconditioner_is_the_damped_diagonal_to_the_minus_three_quarters():
    diag = torch.tensor([0.0, 1.0, 7.0, 80.0], dtype=torch.float64)
    got = hf.martens_preconditioner(diag, 0.5, weight_decay=0.5)
    torch.testing.assert_close(got, torch.tensor([1.0, 2.0, 8.0, 81.0], dtype=torch.float64) ** -0.75)
    torch.testing.assert_close(hf.martens_preconditioner(diag, 1.0, exponent=0.0), torch.ones_like(diag))


@pytest.mark.parametrize("method", ["linear", "vmap", "graph"])
def test_preconditioner_diagonal_matches_a_per_example_loop(method):
    g = torch.Generator().manual_seed(7)
    if method == "vmap":  # a model not made of nn.Linear layers
        model, loss_fn = tiny_rnn(), lambda out, y: F.cross_entropy(out.reshape(-1, 2), y.reshape(-1))
        x, y = torch.randn(10, 4, 2, generator=g, dtype=torch.float64), torch.randint(0, 2, (10, 4), generator=g)
    else:
        model, loss_fn = tiny_net(), softmax_cross_entropy
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
    torch.testing.assert_close(flatten(diag), brute_force_fisher_diagonal(model, x, y, loss_fn), rtol=1e-10, atol=1e-14)


def test_preconditioner_falls_back_to_one_backward_per_case(monkeypatch):
    model = tiny_net()
    g = torch.Generator().manual_seed(8)
    x, y = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    params = list(model.parameters())
    real = preconditioner_module._per_example_graph

    def no_batching_rule(*args, batched):
        if batched:
            raise RuntimeError("Batching rule not implemented")
        return real(*args, batched=batched)

    monkeypatch.setattr(preconditioner_module, "_per_example_graph", no_batching_rule)
    out = model(x)
    with pytest.warns(RuntimeWarning, match="one backward per case"):
        diag, used = hf.martens_preconditioner_diagonal(params, outputs=out, loss=sum_squared(out, y))
    assert used == "graph_loop"
    torch.testing.assert_close(
        flatten(diag), brute_force_fisher_diagonal(model, x, y, sum_squared), rtol=1e-10, atol=1e-14
    )


def test_the_preconditioner_diagonal_needs_per_example_or_outputs_and_loss():
    with pytest.raises(ValueError, match=r"needs per_example or \(outputs, loss\)"):
        hf.martens_preconditioner_diagonal(list(tiny_net().parameters()))
