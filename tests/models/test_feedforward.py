"""MLP, deep autoencoder and deep linear network: structure, parameter counts, output scale."""

import math

import pytest
import torch
from torch import nn

from inertia import models as M


def count(model):
    return sum(p.numel() for p in model.parameters())


def kinds(model):
    return [type(m).__name__ for m in model]


# ---- MLP ----


def test_mlp_parameter_count_is_the_sum_of_weights_and_biases():
    sizes = [784, 1000, 500, 10]
    assert count(M.mlp(sizes, "tanh")) == sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def test_mlp_is_a_flat_sequence_of_linear_and_activation_modules():
    assert kinds(M.mlp([8, 6, 4, 2], "softsign")) == ["Linear", "Softsign", "Linear", "Softsign", "Linear"]


def test_mlp_parameter_names_are_sequential_indices():
    names = [n for n, _ in M.mlp([4, 3, 2], "relu").named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_mlp_out_activation_follows_the_last_layer():
    assert isinstance(M.mlp([3, 2], "tanh", out_activation="sigmoid")[-1], nn.Sigmoid)


def test_mlp_with_linear_activation_has_only_linear_layers():
    assert kinds(M.mlp([3, 3, 2], "linear")) == ["Linear", "Linear"]


@pytest.mark.parametrize("name", sorted(M.ACTIVATIONS))
def test_every_named_activation_builds(name):
    assert M.mlp([3, 4, 2], name)(torch.randn(5, 3)).shape == (5, 2)


@pytest.mark.parametrize(
    "args,message",
    [
        (([3, 2], "swish"), "unknown activation 'swish'; known: linear, elu"),
        (([3, 2], "tanh", "softmax"), "unknown activation 'softmax'"),
        (([3], "tanh"), r"sizes must be at least two positive integers, got \[3\]"),
        (([3, 0, 2], "tanh"), "sizes must be at least two positive integers"),
    ],
)
def test_mlp_bad_arguments_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        M.mlp(*args)


# ---- deep autoencoder ----


@pytest.mark.parametrize(
    "factory,sizes",
    [
        (M.deep_autoencoder.curves, M.CURVES_SIZES),
        (M.deep_autoencoder.mnist, M.MNIST_SIZES),
        (M.deep_autoencoder.faces, M.FACES_SIZES),
    ],
)
def test_paper_autoencoder_parameter_count_matches_the_formula(factory, sizes):
    pairs = list(zip(sizes[:-1], sizes[1:], strict=False))
    weights = 2 * sum(a * b for a, b in pairs)
    biases = sum(b for _, b in pairs) + sum(a for a, _ in pairs)  # encoder outputs + decoder outputs
    assert count(factory()) == weights + biases


def test_paper_architectures_are_the_papers():
    assert M.CURVES_SIZES == (784, 400, 200, 100, 50, 25, 6)
    assert M.MNIST_SIZES == (784, 1000, 500, 250, 30)
    assert M.FACES_SIZES == (625, 2000, 1000, 500, 30)


def test_autoencoder_layer_sizes_mirror_the_encoder():
    linears = [m for m in M.deep_autoencoder([20, 10, 5, 3]) if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 10), (10, 5), (5, 3), (3, 5), (5, 10), (10, 20)]


def test_autoencoder_code_layer_is_linear_and_the_output_logistic():
    assert kinds(M.deep_autoencoder([20, 10, 3])) == [
        "Linear",
        "Sigmoid",
        "Linear",
        "Linear",
        "Sigmoid",
        "Linear",
        "Sigmoid",
    ]


def test_faces_autoencoder_has_linear_outputs_unless_asked():
    assert isinstance(M.deep_autoencoder.faces()[-1], nn.Linear)
    assert isinstance(M.deep_autoencoder.faces(out_activation="sigmoid")[-1], nn.Sigmoid)


def test_autoencoder_output_has_the_input_shape_and_range():
    y = M.deep_autoencoder([20, 10, 3])(torch.rand(4, 20)).detach()
    assert y.shape == (4, 20) and float(y.min()) > 0 and float(y.max()) < 1


# ---- deep linear network ----


def test_deep_linear_alpha_is_one_over_sqrt_width_to_depth_minus_one_times_d_out():
    assert M.deep_linear(16, 8, 4, 3).alpha == pytest.approx(1 / math.sqrt(8**3 * 3))
    assert M.deep_linear(16, 8, 1, 3).alpha == pytest.approx(1 / math.sqrt(3))


def test_deep_linear_parameter_count_and_shapes():
    m = M.deep_linear(16, 8, 4, 3)
    assert [tuple(p.shape) for p in m.parameters()] == [(8, 16), (8, 8), (8, 8), (3, 8)]
    assert count(m) == 16 * 8 + 2 * 8 * 8 + 8 * 3
    assert [n for n, _ in m.named_parameters()] == [f"layers.{i}.weight" for i in range(4)]


def test_deep_linear_depth_one_is_a_single_matrix():
    assert [tuple(p.shape) for p in M.deep_linear(16, 8, 1, 3).parameters()] == [(3, 16)]


def test_deep_linear_computes_alpha_times_the_product_of_its_matrices():
    m = M.deep_linear(16, 8, 4, 3).double()
    x = torch.randn(5, 16, dtype=torch.float64)
    w = m.layers[3].weight @ m.layers[2].weight @ m.layers[1].weight @ m.layers[0].weight
    torch.testing.assert_close(m(x), m.alpha * x @ w.T, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(m.end_to_end(), m.alpha * w, rtol=1e-12, atol=1e-14)


def test_deep_linear_output_scale_preserves_the_squared_norm_under_gaussian_init():
    # With N(0, 1) weights, E ||W h||^2 = (rows) ||h||^2 at every layer, so alpha^2 m^(L-1) d_y = 1
    # gives E ||f(x)||^2 = ||x||^2 (Hu et al. 2020, section 3). The ratio ||f(x)||^2 / ||x||^2 is a
    # product of independent chi^2 / dof factors: E[ratio^2] = (1 + 2/m)^(L-1) (1 + 2/d_y).
    width, depth, d_out, trials = 32, 4, 8, 400
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 24, generator=g, dtype=torch.float64)
    ratios = []
    for _ in range(trials):
        m = M.deep_linear(24, width, depth, d_out).double()
        with torch.no_grad():
            for layer in m.layers:
                layer.weight.normal_(0, 1, generator=g)
        ratios.append(float(m(x).pow(2).sum() / x.pow(2).sum()))
    sd = math.sqrt((1 + 2 / width) ** (depth - 1) * (1 + 2 / d_out) - 1)
    assert sum(ratios) / trials == pytest.approx(1.0, abs=4 * sd / math.sqrt(trials))


def test_deep_linear_stays_finite_where_alpha_underflows():
    m = M.deep_linear(8, 256, 300, 2).double()  # 256^299: alpha is below the smallest float64
    with torch.no_grad():
        for layer in m.layers:
            layer.weight.copy_(torch.eye(*layer.weight.shape, dtype=torch.float64) * 16.0)  # sqrt(m) I
    assert m.alpha == 0.0
    y = m(torch.ones(1, 8, dtype=torch.float64))
    assert torch.all(torch.isfinite(y)) and float(y.abs().max()) > 0


def test_deep_linear_rejects_a_zero_depth():
    with pytest.raises(ValueError, match="depth must be a positive integer, got 0"):
        M.deep_linear(4, 4, 0, 2)
