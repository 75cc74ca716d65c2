"""Fans are exact for each layer type, and agree with a brute-force count of the Jacobian's
nonzeros: fan_in = inputs feeding one output, fan_out = outputs fed by one input."""

import pytest
import torch
from torch import nn

from inertia.init import fans


@pytest.mark.parametrize(
    "module,name,expected",
    [
        (nn.Linear(3, 5), None, (3, 5)),
        (nn.Conv1d(4, 6, 3), None, (12, 18)),
        (nn.Conv2d(4, 6, 3), None, (36, 54)),
        (nn.Conv3d(2, 4, 3), None, (54, 108)),
        (nn.Conv2d(8, 16, 3, groups=4), None, (18, 36)),  # grouped: torch says fan_out 144
        (nn.Conv2d(8, 8, 3, groups=8), None, (9, 9)),  # depthwise: torch says fan_out 72
        (nn.ConvTranspose2d(8, 4, 3), None, (72, 36)),  # torch swaps them: (36, 72)
        (nn.ConvTranspose2d(8, 4, 4, stride=2), None, (32, 64)),
        (nn.LSTM(10, 20), "weight_ih_l0", (10, 20)),  # one gate of [80, 10]
        (nn.LSTM(10, 20), "weight_hh_l0", (20, 20)),
        (nn.GRU(5, 7), "weight_ih_l0", (5, 7)),
        (nn.RNN(5, 7), "weight_hh_l0", (7, 7)),
        (nn.Embedding(100, 16), None, (1, 16)),
    ],
)
def test_module_fans(module, name, expected):
    assert fans(module, name) == expected


def test_bare_tensor_uses_torch_convention():
    w = torch.empty(6, 4, 3, 3)
    assert fans(w) == nn.init._calculate_fan_in_and_fan_out(w)


def test_tensor_with_fewer_than_two_dims_raises_naming_shape():
    with pytest.raises(ValueError, match=r"got shape \(7,\)"):
        fans(torch.empty(7))


def _jacobian_counts(module, x):
    """Nonzeros per row (an output) and per column (an input) of d out / d in."""
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5)  # no accidental zeros
    j = torch.autograd.functional.jacobian(lambda t: module(t).flatten(), x).reshape(-1, x.numel())
    return (j != 0).sum(1).double(), (j != 0).sum(0).double()


def test_grouped_conv_fans_match_jacobian_of_an_interior_unit():
    conv = nn.Conv2d(4, 6, 3, groups=2, padding=1, bias=False)
    x = torch.randn(1, 4, 9, 9)
    per_out, per_in = _jacobian_counts(conv, x)
    fi, fo = fans(conv)
    assert per_out.max() == fi  # interior outputs see the whole kernel
    assert per_in.max() == fo


def test_strided_transposed_conv_fans_are_jacobian_averages_over_the_interior():
    conv = nn.ConvTranspose2d(4, 2, 4, stride=2, bias=False)
    x = torch.randn(1, 4, 6, 6)
    per_out, per_in = _jacobian_counts(conv, x)
    fi, fo = fans(conv)
    out_hw = conv(x).shape[-1]
    per_out = per_out.reshape(2, out_hw, out_hw)[:, 4:-4, 4:-4]  # interior, away from the edge
    assert per_out.mean().item() == pytest.approx(fi)
    assert per_in.max() == fo
