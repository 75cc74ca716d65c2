"""apply() initializes whole models by rules, with exact fans, and reports what it did."""

import math

import pytest
import torch
from torch import nn

import inertia.init as I


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_mlp_weights_get_the_scheme_and_biases_the_constant():
    m = nn.Sequential(nn.Linear(400, 300), nn.Tanh(), nn.Linear(300, 200))
    report = I.apply(m, "glorot_normal", bias=0.1, generator=gen())
    assert [r["name"] for r in report] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for i, (fi, fo) in ((0, (400, 300)), (2, (300, 200))):
        w = m[i].weight.detach().double()
        var = 2 / (fi + fo)
        assert abs(float((w**2).mean()) - var) < 4.5 * var * math.sqrt(2 / w.numel())
        assert torch.all(m[i].bias == 0.1)
        assert report[f"{i}.weight"]["fan_in"] == fi and report[f"{i}.weight"]["fan_out"] == fo


def test_grouped_cnn_uses_exact_fans_not_torchs():
    m = nn.Sequential(nn.Conv2d(32, 64, 3, groups=8), nn.ReLU(), nn.Conv2d(64, 64, 3, groups=64))
    I.apply(m, "glorot_normal", generator=gen())
    for conv in (m[0], m[2]):
        fi, fo = I.fans(conv)
        var = 2 / (fi + fo)
        w = conv.weight.detach().double()
        assert abs(float((w**2).mean()) - var) < 4.5 * var * math.sqrt(2 / w.numel())
    torch_fo = nn.init._calculate_fan_in_and_fan_out(m[2].weight)[1]
    assert torch_fo != I.fans(m[2])[1]  # depthwise: torch's fan_out is 64x too large


def test_sutskever_rnn_rules_echo_state_recurrent_sparse_output_with_bias():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(2, 100, nonlinearity="tanh")
            self.out = nn.Linear(100, 1)

    net = Net()
    report = I.apply(
        net,
        "sparse",
        rules={
            "*weight_hh*": ("echo_state", {"spectral_radius": 1.1}),
            "*weight_ih*": ("normal", {"std": 0.001}),
            nn.Linear: {"scheme": "sparse", "std": 0.25, "fan_in": 15, "bias": 0.5},
        },
        generator=gen(),
    )
    assert I.spectral_radius(net.rnn.weight_hh_l0) == pytest.approx(1.1, rel=1e-4)
    assert float(net.rnn.weight_ih_l0.std()) < 0.002
    assert torch.all(net.out.bias == 0.5)
    assert torch.all(net.rnn.bias_hh_l0 == 0.0)
    assert (net.out.weight != 0).sum() == 15
    assert report["rnn.weight_hh_l0"]["scheme"].startswith("echo_state")


def test_lstm_gates_are_initialized_one_block_at_a_time():
    lstm = nn.LSTM(8, 16)
    I.apply(lstm, "orthogonal", generator=gen())
    for block in lstm.weight_hh_l0.detach().chunk(4, 0):
        assert torch.allclose(block @ block.T, torch.eye(16), atol=1e-5)
    for block in lstm.weight_ih_l0.detach().chunk(4, 0):  # [16, 8]: orthonormal columns
        assert torch.allclose(block.T @ block, torch.eye(8), atol=1e-5)


def test_layernorm_scale_is_left_alone():
    m = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    report = I.apply(m, "he_normal", generator=gen())
    assert torch.all(m[1].weight == 1)
    assert report["1.weight"]["scheme"] == "unchanged"


def test_same_seed_same_model():
    a, b = nn.Linear(10, 10), nn.Linear(10, 10)
    I.apply(a, "glorot_uniform", generator=gen(3))
    I.apply(b, "glorot_uniform", generator=gen(3))
    assert torch.equal(a.weight, b.weight)


def test_report_prints_as_a_table_with_every_parameter():
    text = str(I.apply(nn.Linear(3, 2), "lecun_normal", generator=gen()))
    assert text.splitlines()[0].split() == ["name", "shape", "scheme", "fan_in", "fan_out", "std"]
    assert "2x3" in text and "lecun_normal" in text


def test_unknown_scheme_lists_known_names():
    with pytest.raises(ValueError, match=r"unknown init scheme 'xavier'; known: .*glorot_uniform"):
        I.apply(nn.Linear(3, 2), "xavier")


def test_scheme_kwargs_are_checked_against_the_initializer():
    with pytest.raises(ValueError, match=r"scheme 'sparse' does not take \['sd'\]; accepted: \['fan_in', 'std'\]"):
        I.apply(nn.Linear(30, 2), ("sparse", {"sd": 1.0}))
