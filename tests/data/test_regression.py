"""Hu et al. (2020)'s deep-linear regression data."""

import pytest
import torch

from inertia import data as D


def test_y_is_w_star_times_x_in_feature_major_layout():
    d = D.deep_linear_regression(d_in=64, n=8, d_out=3, seed=0)
    assert d.X.shape == (64, 8) and d.W_star.shape == (3, 64) and d.Y.shape == (3, 8)
    torch.testing.assert_close(d.Y, d.W_star @ d.X, rtol=0, atol=1e-12)


def test_inputs_and_targets_are_the_sample_major_transposes():
    d = D.deep_linear_regression(d_in=64, n=8, d_out=3, seed=0)
    assert torch.equal(d.inputs, d.X.T) and torch.equal(d.targets, d.Y.T)


def test_defaults_are_the_papers_sizes_in_float64():
    d = D.deep_linear_regression()
    assert d.X.shape == (1024, 16) and d.Y.shape == (10, 16) and d.X.dtype == torch.float64


def test_entries_of_x_and_w_star_are_standard_normal():
    d = D.deep_linear_regression(seed=1)
    for a in (d.X, d.W_star):  # 16,384 and 10,240 entries: the variance's s.e. is sqrt(2/N) < 0.015
        assert float(a.mean()) == pytest.approx(0, abs=0.04)
        assert float(a.var()) == pytest.approx(1, abs=0.06)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (D.deep_linear_regression(d_in=32, n=4, d_out=2, seed=s) for s in (5, 5, 6))
    assert torch.equal(a.X, b.X) and torch.equal(a.W_star, b.W_star)
    assert not torch.equal(a.X, c.X)


def test_float32_is_a_cast_of_the_float64_data():
    a = D.deep_linear_regression(d_in=32, n=4, d_out=2, seed=3)
    b = D.deep_linear_regression(d_in=32, n=4, d_out=2, seed=3, dtype=torch.float32)
    assert b.Y.dtype == torch.float32 and torch.equal(b.Y, a.Y.float())


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"d_in": 0}, "d_in must be an integer >= 1, got 0"),
        ({"n": 2.0}, "n must be an integer >= 1, got 2.0"),
        ({"dtype": torch.int64}, "dtype must be a floating torch.dtype"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        D.deep_linear_regression(**kwargs)
