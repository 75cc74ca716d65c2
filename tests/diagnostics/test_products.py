"""The curvature-vector products against dense references built by autograd."""

import pytest
import torch
from torch import nn

from inertia.diagnostics.products import FlatOperator, GaussNewtonProduct, HessianProduct, flatten, unflatten


def _net():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    return model, x, y


def _dense_hessian(model, x, y):
    names = [n for n, _ in model.named_parameters()]
    flat0 = flatten([p.detach() for p in model.parameters()])
    shapes = [p.shape for p in model.parameters()]

    def loss_of(flat):
        ps = dict(zip(names, unflatten(flat, [torch.empty(s, dtype=flat.dtype) for s in shapes]), strict=True))
        return (torch.func.functional_call(model, ps, (x,)) - y).pow(2).sum()

    return torch.autograd.functional.hessian(loss_of, flat0)


def test_hessian_product_equals_the_dense_hessian_times_v():
    model, x, y = _net()
    params = list(model.parameters())
    op = FlatOperator(HessianProduct((model(x) - y).pow(2).sum(), params), params)
    v = torch.randn(op.dim, dtype=torch.float64)
    torch.testing.assert_close(op(v), _dense_hessian(model, x, y) @ v, rtol=1e-10, atol=1e-10)
    assert op.num_products == 1


def test_gauss_newton_product_equals_j_transpose_h_j_for_squared_error():
    model, x, y = _net()
    params = list(model.parameters())
    out = model(x)
    op = FlatOperator(GaussNewtonProduct(out, (out - y).pow(2).sum(), params), params)
    flat0 = flatten([p.detach() for p in params])
    names = [n for n, _ in model.named_parameters()]

    def outputs_of(flat):
        ps = dict(zip(names, unflatten(flat, [p.detach() for p in params]), strict=True))
        return torch.func.functional_call(model, ps, (x,)).reshape(-1)

    jac = torch.autograd.functional.jacobian(outputs_of, flat0)  # [outputs, params]
    ggn = 2.0 * jac.T @ jac  # H_L = 2 I for the summed squared error
    v = torch.randn(op.dim, dtype=torch.float64)
    torch.testing.assert_close(op(v), ggn @ v, rtol=1e-10, atol=1e-10)


def test_structural_damping_adds_weighted_hidden_jacobian_gram():
    model, x, y = _net()
    params = list(model.parameters())
    h = model[1](model[0](x))
    out = model[2](h)
    loss = (out - y).pow(2).sum()
    plain = GaussNewtonProduct(out, loss, params)
    damped = GaussNewtonProduct(out, loss, params, hidden=h, hidden_weight=0.7)
    vs = [torch.randn_like(p) for p in params]
    # J_h^T J_h v through the GGN of 1/2 |h|^2 (its loss Hessian is I)
    gram = GaussNewtonProduct(h, 0.5 * h.pow(2).sum(), params)
    want = [a + 0.7 * b for a, b in zip(plain(vs), gram(vs), strict=True)]
    for got, w in zip(damped(vs), want, strict=True):
        torch.testing.assert_close(got, w, rtol=1e-10, atol=1e-12)


def test_a_loss_linear_in_the_parameters_has_zero_curvature():
    w = torch.randn(3, requires_grad=True)
    op = HessianProduct((2.0 * w).sum(), [w])
    assert torch.equal(op([torch.ones(3)])[0], torch.zeros(3))


def test_products_reject_a_non_scalar_loss_and_outputs_without_a_graph():
    w = torch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="loss must be a scalar tensor, got Tensor of shape \\(3,\\)"):
        HessianProduct(w * 2, [w])
    with pytest.raises(ValueError, match="autograd enabled"):
        GaussNewtonProduct(w.detach(), (w**2).sum(), [w])


def test_flatten_copies_strided_tensors_once_into_one_vector_and_unflatten_inverts_it():
    a = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)  # not contiguous
    b = torch.randn(7, dtype=torch.float64)
    flat = flatten([a, b])
    assert flat.dtype == torch.float64 and flat.shape == (2 * 3 * 4 * 5 + 7,)
    torch.testing.assert_close(flat, torch.cat([a.reshape(-1).double(), b]), rtol=0, atol=0)
    back = unflatten(flat, [a, b])
    assert torch.equal(back[0], a.double()) and torch.equal(back[1], b)
    assert flatten([a], dtype=torch.float32).dtype == torch.float32
