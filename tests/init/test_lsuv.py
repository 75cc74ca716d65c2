"""LSUV (Mishkin & Matas 2016) brings every layer's output std to the target."""

import pytest
import torch
from torch import nn

import inertia.init as I


def test_every_layer_output_std_is_within_tol_of_target():
    torch.manual_seed(0)
    layers = []
    for _ in range(6):
        layers += [nn.Linear(64, 64), nn.Tanh()]
    m = nn.Sequential(*layers)
    x = torch.randn(256, 64)
    I.lsuv_(m, x, target_std=1.0, tol=0.02, generator=torch.Generator().manual_seed(0))
    outs = []
    hooks = [m[i].register_forward_hook(lambda _m, _i, o: outs.append(float(o.std()))) for i in range(0, 12, 2)]
    with torch.no_grad():
        m(x)
    for h in hooks:
        h.remove()
    assert all(abs(s - 1.0) < 0.02 for s in outs), outs


def test_lsuv_rejects_bad_target():
    with pytest.raises(ValueError, match="target_std must be a positive finite number, got 0"):
        I.lsuv_(nn.Linear(3, 3), torch.randn(4, 3), target_std=0)


class WithZeroWidthBranch(nn.Module):
    """a -> [a's output, a zero-width branch] -> b: the branch adds no features."""

    def __init__(self):
        super().__init__()
        self.a, self.empty, self.b = nn.Linear(8, 8), nn.Linear(8, 0), nn.Linear(8, 8)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        return self.b(torch.cat([h, self.empty(h)], dim=1))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_zero_width_layers_are_left_out_and_the_others_reach_the_target():
    m = WithZeroWidthBranch()
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(1))
    report = I.lsuv_(m, x, tol=0.02, generator=torch.Generator().manual_seed(0))
    assert sorted(report) == ["a", "b"]
    assert all(abs(r["std"] - 1.0) < 0.02 for r in report.values())
