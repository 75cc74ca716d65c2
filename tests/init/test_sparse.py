"""Martens' sparse init and the echo-state init (Sutskever et al. 2013); their laws (nonzeros per
unit, values, positions) are tested in test_distributions.py."""

import pytest
import torch

import inertia.init as I


def test_conv_weight_is_sparse_per_output_channel():
    w = I.sparse_(torch.empty(8, 4, 3, 3), fan_in=5, generator=torch.Generator().manual_seed(3))
    assert torch.all((w.reshape(8, -1) != 0).sum(1) == 5)


def test_fan_in_larger_than_inputs_raises():
    with pytest.raises(ValueError, match=r"fan_in=15 is larger than the number of inputs 10"):
        I.sparse_(torch.empty(5, 10), fan_in=15)


def test_negative_std_raises():
    with pytest.raises(ValueError, match="std must be a non-negative finite number, got -1"):
        I.sparse_(torch.empty(5, 20), std=-1)


def test_sparse_is_not_torchs_sparse():
    # torch.nn.init.sparse_ zeroes a fraction of each column; rows then have varying counts.
    w = torch.empty(300, 100)
    torch.nn.init.sparse_(w, sparsity=0.85, generator=torch.Generator().manual_seed(0))
    assert len(set((w != 0).sum(1).tolist())) > 1


@pytest.mark.parametrize("radius", [0.9, 1.1, 3.0])
def test_echo_state_spectral_radius_is_exact(radius):
    w = I.echo_state_(torch.empty(100, 100), spectral_radius=radius, generator=torch.Generator().manual_seed(4))
    assert I.spectral_radius(w) == pytest.approx(radius, rel=1e-4)
    assert torch.all((w != 0).sum(1) == 15)


def test_echo_state_rejects_non_square_and_non_positive_radius():
    with pytest.raises(ValueError, match=r"square \[n, n\].*\(4, 5\)"):
        I.echo_state_(torch.empty(4, 5))
    with pytest.raises(ValueError, match="spectral_radius must be a positive finite number, got 0"):
        I.echo_state_(torch.empty(20, 20), spectral_radius=0)


def test_same_seed_same_sparse_matrix():
    a = I.sparse_(torch.empty(30, 40), generator=torch.Generator().manual_seed(9))
    b = I.sparse_(torch.empty(30, 40), generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
