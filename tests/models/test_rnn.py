"""TanhRNN: parameters, the recurrence, and the hand-written BPTT against autograd."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD

from inertia import models as M
from inertia.models.rnn import _recurrence_reference, tanh_recurrence


def test_parameters_have_the_papers_names_shapes_and_count():
    r = M.TanhRNN(2, 100, 3)
    shapes = {n: tuple(p.shape) for n, p in r.named_parameters()}
    assert shapes == {
        "weight_ih": (100, 2),
        "weight_hh": (100, 100),
        "weight_ho": (3, 100),
        "bias_h": (100,),
        "bias_o": (3,),
    }
    assert sum(p.numel() for p in r.parameters()) == 100 * (2 + 100 + 3 + 1) + 3


def test_output_all_gives_every_step_and_last_only_the_last():
    x = torch.randn(7, 13, 2)
    r = M.TanhRNN(2, 10, 4)
    y_all = r(x)
    r.output = "last"
    assert y_all.shape == (7, 13, 4) and r(x).shape == (7, 4)
    torch.testing.assert_close(r(x), y_all[:, -1])


def test_forward_is_the_recurrence_written_out():
    r = M.TanhRNN(3, 5, 2).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    h = torch.zeros(4, 5, dtype=torch.float64)
    ys = []
    for t in range(6):
        h = torch.tanh(x[:, t] @ r.weight_ih.T + h @ r.weight_hh.T + r.bias_h)
        ys.append(h @ r.weight_ho.T + r.bias_o)
    torch.testing.assert_close(r(x), torch.stack(ys, 1), rtol=0, atol=1e-12)


def gradients(r, x, fast):
    r.fast_bptt = fast
    r.zero_grad()
    (r(x) ** 2).mean().backward()  # gradients of order 1, so 1e-10 is a relative bound too
    return [p.grad.clone() for p in r.parameters()]


@pytest.mark.parametrize("output", ["all", "last"])
def test_fast_bptt_gradients_equal_autograd_to_1e_10_in_float64(output):
    r = M.TanhRNN(3, 16, 2, output=output).double()
    with torch.no_grad():
        r.weight_hh.mul_(4)  # a saturating regime, where errors in (1 - h^2) would show
    x = torch.randn(5, 40, 3, dtype=torch.float64)
    for fast, slow in zip(gradients(r, x, True), gradients(r, x, False), strict=False):
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-10)


def test_fast_path_is_the_default():
    assert M.TanhRNN(2, 4, 1).fast_bptt
    a = torch.randn(2, 3, 4, requires_grad=True)
    assert type(tanh_recurrence(a, torch.randn(4, 4)).grad_fn).__name__ == "_TanhRecurrenceBackward"


def small():
    a = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    w = (0.8 * torch.randn(3, 3, dtype=torch.float64)).requires_grad_()
    return a, w


def test_fast_recurrence_passes_gradcheck_and_gradgradcheck():
    a, w = small()
    assert torch.autograd.gradcheck(tanh_recurrence, (a, w))
    assert torch.autograd.gradgradcheck(tanh_recurrence, (a, w))


def test_fast_recurrence_forward_mode_equals_its_jacobian():
    a, w = small()
    assert torch.autograd.gradcheck(
        tanh_recurrence, (a, w), check_forward_ad=True, check_backward_ad=False, check_batched_forward_grad=True
    )


def test_hessian_vector_product_equals_autograds():
    a, w = small()
    v = torch.randn_like(w)

    def hvp(fn):
        return torch.autograd.functional.hvp(lambda w_: fn(a, w_).pow(2).sum(), w.detach(), v)[1]

    torch.testing.assert_close(hvp(tanh_recurrence), hvp(_recurrence_reference), rtol=0, atol=1e-10)


TRANSFORMS = {
    "grad": lambda f, a, w: torch.func.grad(lambda w_: f(a, w_).pow(2).sum())(w),
    "jacrev": lambda f, a, w: torch.func.jacrev(f, argnums=(0, 1))(a, w),
    "jacfwd": lambda f, a, w: torch.func.jacfwd(f, argnums=(0, 1))(a, w),
    "hessian": lambda f, a, w: torch.func.hessian(lambda w_: f(a, w_).pow(2).sum())(w),
    "vmap over inputs": lambda f, a, w: torch.func.vmap(f, in_dims=(0, None))(a[:, None], w),
    "vmap over weights": lambda f, a, w: torch.func.vmap(f, in_dims=(None, 0))(a, torch.stack([w, -w])),
    "vmap over inputs and weights": lambda f, a, w: torch.func.vmap(f)(torch.stack([a, 2 * a]), torch.stack([w, -w])),
    # a stack of recurrences (many runs trained as one) under the other transforms
    "grad of a vmap over weights": lambda f, a, w: torch.func.grad(
        lambda w_: torch.func.vmap(f, in_dims=(None, 0))(a, torch.stack([w_, 0.5 * w_])).pow(2).sum()
    )(w),
    "hessian of a vmap over weights": lambda f, a, w: torch.func.hessian(
        lambda w_: torch.func.vmap(f, in_dims=(None, 0))(a, torch.stack([w_, -w_])).pow(2).sum()
    )(w),
    "jacfwd of a vmap over weights": lambda f, a, w: torch.func.jacfwd(
        lambda w_: torch.func.vmap(f, in_dims=(None, 0))(a, torch.stack([w_, -w_]))
    )(w),
    "vmap of a vmap over weights": lambda f, a, w: torch.func.vmap(torch.func.vmap(f, in_dims=(None, 0)))(
        torch.stack([a, -a]), torch.stack([torch.stack([w, -w]), torch.stack([0.5 * w, w])])
    ),
    "per-example gradients": lambda f, a, w: torch.func.vmap(
        torch.func.grad(lambda ai, w_: f(ai[None], w_).pow(2).sum(), argnums=1), in_dims=(0, None)
    )(a, w),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_torch_func_transforms_agree_with_autograd(transform):
    a, w = small()
    a, w = a.detach(), w.detach()
    got, want = TRANSFORMS[transform](tanh_recurrence, a, w), TRANSFORMS[transform](_recurrence_reference, a, w)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_forward_mode_ad_equals_autograds_jvp():
    a, w = small()
    ta, tw = torch.randn_like(a), torch.randn_like(w)

    def jvp(fn):
        with fwAD.dual_level():
            return fwAD.unpack_dual(fn(fwAD.make_dual(a.detach(), ta), fwAD.make_dual(w.detach(), tw))).tangent

    torch.testing.assert_close(jvp(tanh_recurrence), jvp(_recurrence_reference), rtol=0, atol=1e-10)


@pytest.mark.parametrize("shape", [(1, 6, 3), (4, 1, 3), (1, 1, 3)])
def test_fast_path_leaves_its_inputs_unchanged(shape):
    # the recurrence works in place on a copy; with n = 1 or T = 1 a transpose is already
    # contiguous, so a careless copy would alias the input
    a = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    a0 = a.detach().clone()
    grad = torch.randn(shape, dtype=torch.float64)
    g0 = grad.clone()
    out = tanh_recurrence(a, w)
    out.backward(grad)
    assert torch.equal(a.detach(), a0) and torch.equal(grad, g0)
    torch.testing.assert_close(out, _recurrence_reference(a, w), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 2), (4, 5, 3), (4, 0, 2)])
def test_input_of_the_wrong_shape_is_refused(shape):
    with pytest.raises(ValueError, match=r"input must be \[n, T, 2\] with T >= 1, got shape"):
        M.TanhRNN(2, 4, 1)(torch.randn(*shape))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"output": "first"}, "output must be 'all' or 'last', got 'first'"),
        ({"hidden_size": 0}, "hidden_size must be a positive integer, got 0"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        M.TanhRNN(**{"input_size": 2, "hidden_size": 4, "output_size": 1, **kwargs})


def test_default_init_is_uniform_within_one_over_sqrt_hidden():
    r = M.TanhRNN(2, 100, 1)
    assert all(float(p.abs().max()) <= 0.1 for p in r.parameters())


@pytest.mark.parametrize("output", ["all", "last"])
def test_forward_with_hidden_is_forward_plus_the_hidden_states(output):
    torch.manual_seed(0)
    m = M.TanhRNN(3, 5, 2, output=output)
    x = torch.randn(4, 6, 3)
    out, hs = m.forward_with_hidden(x)
    assert torch.equal(out, m(x)) and torch.equal(hs, m.hidden_states(x)) and hs.shape == (4, 6, 5)
