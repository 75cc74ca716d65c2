"""Models: parameter counts against the formulas, output scale, the fast BPTT against autograd."""

import math

import pytest
import torch
from torch import nn

from inertia import models as M


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_mlp_parameter_count_and_layers():
    sizes = [784, 1000, 500, 10]
    m = M.mlp(sizes, "softsign")
    assert count(m) == sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    assert [type(x).__name__ for x in m] == ["Linear", "Softsign", "Linear", "Softsign", "Linear"]


def test_mlp_out_activation_and_bad_name():
    assert isinstance(M.mlp([3, 2], "tanh", out_activation="sigmoid")[-1], nn.Sigmoid)
    with pytest.raises(ValueError, match=r"unknown activation 'swish'"):
        M.mlp([3, 2], "swish")


@pytest.mark.parametrize("factory,sizes", [(M.deep_autoencoder.curves, [784, 400, 200, 100, 50, 25, 6]),
                                           (M.deep_autoencoder.mnist, [784, 1000, 500, 250, 30]),
                                           (M.deep_autoencoder.faces, [625, 2000, 1000, 500, 30])])
def test_autoencoder_architectures_and_counts(factory, sizes):
    m = factory()
    pairs = list(zip(sizes[:-1], sizes[1:]))
    weights = 2 * sum(a * b for a, b in pairs)
    biases = sum(b for _, b in pairs) + sum(a for a, _ in pairs)
    assert count(m) == weights + biases
    linears = [x for x in m if isinstance(x, nn.Linear)]
    assert linears[len(pairs) - 1].out_features == sizes[-1]
    # the code layer is linear: the module after it is the first decoder Linear
    idx = list(m).index(linears[len(pairs) - 1])
    assert isinstance(m[idx + 1], nn.Linear)
    assert isinstance(m[-1], nn.Sigmoid)


def test_autoencoder_reconstructs_input_shape():
    m = M.deep_autoencoder([20, 10, 3])
    assert m(torch.rand(4, 20)).shape == (4, 20)


def test_deep_linear_scale_and_count():
    m = M.deep_linear(16, 8, 4, 3)
    assert m.alpha == pytest.approx(1 / math.sqrt(8 ** 3 * 3))
    assert count(m) == 16 * 8 + 8 * 8 * 2 + 8 * 3
    x = torch.randn(5, 16)
    prod = m.layers[3].weight @ m.layers[2].weight @ m.layers[1].weight @ m.layers[0].weight
    torch.testing.assert_close(m(x), m.alpha * x @ prod.T)


def test_deep_linear_depth_one_is_a_single_matrix():
    m = M.deep_linear(16, 8, 1, 3)
    assert [tuple(p.shape) for p in m.parameters()] == [(3, 16)]


def test_tanh_rnn_parameters_and_shapes():
    r = M.TanhRNN(2, 100, 1)
    assert count(r) == 100 * (2 + 100 + 1 + 1) + 1
    assert {n for n, _ in r.named_parameters()} == {"weight_ih", "weight_hh", "weight_ho", "bias_h", "bias_o"}
    x = torch.randn(7, 13, 2)
    assert r(x).shape == (7, 13, 1)
    r.output = "last"
    assert r(x).shape == (7, 1)


def test_tanh_rnn_matches_the_recurrence_written_out():
    torch.manual_seed(0)
    r = M.TanhRNN(3, 5, 2).double()
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    h = torch.zeros(4, 5, dtype=torch.float64)
    ys = []
    for t in range(6):
        h = torch.tanh(x[:, t] @ r.weight_ih.T + h @ r.weight_hh.T + r.bias_h)
        ys.append(h @ r.weight_ho.T + r.bias_o)
    torch.testing.assert_close(r(x), torch.stack(ys, 1), rtol=0, atol=1e-12)


def test_fast_bptt_gradients_equal_autograd_to_1e10():
    torch.manual_seed(1)
    r = M.TanhRNN(3, 8, 2).double()
    with torch.no_grad():
        r.weight_hh.mul_(3)  # a saturating regime, where errors would show
    x = torch.randn(5, 20, 3, dtype=torch.float64)
    grads = []
    for fast in (True, False):
        r.fast_bptt = fast
        r.zero_grad()
        (r(x) ** 2).sum().backward()
        grads.append([p.grad.clone() for p in r.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_fast_bptt_passes_gradcheck():
    torch.manual_seed(2)
    a = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: M.tanh_recurrence(a, w, fast=True), (a, w))


def test_rnn_rejects_wrong_input_shape():
    with pytest.raises(ValueError, match=r"input must be \[n, T, 2\], got shape \(4, 2\)"):
        M.TanhRNN(2, 4, 1)(torch.randn(4, 2))


def test_registry():
    assert M.get("mlp") is M.mlp
    with pytest.raises(ValueError, match=r"unknown model 'cnn'; known: deep_autoencoder"):
        M.get("cnn")
