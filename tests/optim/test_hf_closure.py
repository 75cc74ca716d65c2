"""hessian_free.closure: what a closure may return, and that a closure's own loss.backward() keeps
the graph HF needs for curvature products."""

import pytest
import torch

from inertia.optim import hessian_free as hf


def test_a_scalar_loss_is_an_evaluation_without_outputs():
    loss = torch.tensor(2.0)
    assert hf.parse_result(loss) == hf.Evaluation(loss, None, None)


def test_outputs_and_loss_are_lists_of_outputs_and_the_loss():
    out, loss, hidden = torch.ones(4, 2), torch.tensor(1.0), torch.zeros(4, 3)
    ev = hf.parse_result((out, loss))
    assert ev.loss is loss and ev.outputs == [out] and ev.hidden is None
    ev = hf.parse_result([[out, out], loss, hidden])
    assert ev.outputs == [out, out] and ev.hidden == [hidden]


@pytest.mark.parametrize(
    "result,match",
    [
        (1.5, r"the closure must return the loss \(a scalar tensor\), or \(outputs, loss\).*got float"),
        ((torch.ones(2),), r"must return the loss .*got tuple of length 1"),
        (torch.ones(3), r"the closure's loss must be a scalar tensor, got Tensor of shape \(3,\)"),
        ((torch.ones(2), torch.ones(2)), r"the closure's loss must be a scalar tensor"),
        (("out", torch.tensor(1.0)), r"the closure's outputs must be a tensor or a non-empty list of tensors"),
    ],
)
def test_anything_else_is_refused_naming_what_is_accepted(result, match):
    with pytest.raises(ValueError, match=match):
        hf.parse_result(result)


def test_a_closures_backward_keeps_the_graph_and_is_reported():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))

    def closure():
        loss = (w**3).sum()
        loss.backward()
        return loss

    ev, calls_backward = hf.call_with_graph(closure)
    assert calls_backward and torch.equal(w.grad, torch.tensor([3.0, 12.0]))
    (g,) = torch.autograd.grad(ev.loss, [w], create_graph=True)  # would raise if the graph were freed
    (hv,) = torch.autograd.grad(g, [w], torch.ones(2))
    assert torch.equal(hv, torch.tensor([6.0, 12.0]))


def test_torch_autograd_backward_in_a_closure_keeps_the_graph_too():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))

    def closure():
        loss = (w**3).sum()
        torch.autograd.backward(loss, None, False)  # retain_graph=False given positionally
        return loss

    ev, calls_backward = hf.call_with_graph(closure)
    assert calls_backward and torch.equal(torch.autograd.grad(ev.loss, [w])[0], torch.tensor([3.0, 12.0]))


def test_a_closure_without_backward_is_reported_as_such_and_gets_autograd_even_under_no_grad():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    with torch.no_grad():
        ev, calls_backward = hf.call_with_graph(lambda: (w**2).sum())
    assert not calls_backward and ev.loss.requires_grad and w.grad is None


def test_backward_outside_the_closure_frees_the_graph_as_usual():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    hf.call_with_graph(lambda: (w**2).sum())
    loss = (w**3).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_a_loss_without_grad_is_refused():
    with pytest.raises(ValueError, match="the closure's loss does not require grad"):
        hf.call_with_graph(lambda: torch.tensor(1.0))


def test_values_are_taken_without_autograd_unless_the_closure_calls_backward():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    seen = []

    def closure():
        seen.append(torch.is_grad_enabled())
        return (w**2).sum()

    assert hf.call_for_value(closure) == 5.0
    assert hf.call_for_value(closure, calls_backward=True) == 5.0
    assert seen == [False, True]
