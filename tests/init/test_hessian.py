"""Hessian-norm calibration (Temperoni et al. 2020) on models with zero-width layers; its main
tests, against exact Hessian norms, are in tests/diagnostics/test_monitor_plots.py."""

import pytest
import torch
from torch import nn

import inertia.init as I


class WithZeroWidthBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.empty, self.b = nn.Linear(6, 4), nn.Linear(6, 0), nn.Linear(4, 3)

    def forward(self, x):
        return self.b(torch.cat([self.a(x), self.empty(x)], dim=1))  # b sees [batch, 4 + 0]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_zero_width_layer_is_left_out_and_the_others_reach_the_target():
    m = WithZeroWidthBranch()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 6, generator=g), torch.randn(32, 3, generator=g)
    report = I.hessian_calibrated_(m, lambda: ((m(x) - y) ** 2).mean(), target=0.5, generator=g)
    assert [r["layer"] for r in report] == ["a", "b"]
    assert all(r["reached"] for r in report)
