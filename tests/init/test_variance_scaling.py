"""Variance scaling draws Var(W) = scale / fan, checked against the sampling distribution of the
second moment: for N i.i.d. zero-mean draws, m2 = mean(w^2) has mean sigma^2 and standard deviation
sigma^2 * sqrt((kurtosis - 1) / N), with kurtosis 3 (normal), 9/5 (uniform), and that of a normal
truncated at 2 sigma. Every check allows 4.5 standard deviations (two-sided p ~ 7e-6)."""

import math

import pytest
import torch
from scipy import stats

import inertia.init as I

OUT, IN = 200, 300
N = OUT * IN
Z = 4.5


def kurtosis(distribution):
    if distribution == "normal":
        return 3.0
    if distribution == "uniform":
        return 9.0 / 5.0
    t = stats.truncnorm(-2, 2)
    return t.moment(4) / t.var() ** 2


def assert_second_moment(w, var, distribution):
    m2 = float((w.double() ** 2).mean())
    sd = var * math.sqrt((kurtosis(distribution) - 1) / w.numel())
    assert abs(m2 - var) < Z * sd, f"m2={m2:.6g}, expected {var:.6g} +- {Z * sd:.3g}"


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
@pytest.mark.parametrize("mode,fan", [("fan_in", IN), ("fan_out", OUT), ("fan_avg", (IN + OUT) / 2)])
def test_variance_is_scale_over_fan(mode, fan, distribution):
    w = torch.empty(OUT, IN)
    I.variance_scaling_(w, scale=2.0, mode=mode, distribution=distribution, generator=torch.Generator().manual_seed(1))
    assert_second_moment(w, 2.0 / fan, distribution)
    assert abs(float(w.mean())) < Z * math.sqrt(2.0 / fan / N)


def test_truncated_normal_stays_within_two_sigma_of_the_untruncated_law():
    w = torch.empty(OUT, IN)
    I.variance_scaling_(w, 1.0, "fan_in", "truncated_normal", generator=torch.Generator().manual_seed(2))
    sigma0 = math.sqrt(1.0 / IN) / I.variance_scaling.TRUNCATED_NORMAL_STD
    assert float(w.abs().max()) <= 2 * sigma0 * (1 + 1e-6)


def test_truncation_constant_is_the_std_of_the_truncated_standard_normal():
    assert I.variance_scaling.TRUNCATED_NORMAL_STD == pytest.approx(stats.truncnorm(-2, 2).std(), rel=1e-12)


@pytest.mark.parametrize(
    "fn,var,distribution",
    [
        (I.glorot_uniform_, 2.0 / (IN + OUT), "uniform"),
        (I.glorot_normal_, 2.0 / (IN + OUT), "normal"),
        (I.standard_uniform_, 1.0 / (3 * IN), "uniform"),
        (I.he_uniform_, 2.0 / IN, "uniform"),
        (I.he_normal_, 2.0 / IN, "normal"),
        (I.lecun_uniform_, 1.0 / IN, "uniform"),
        (I.lecun_normal_, 1.0 / IN, "truncated_normal"),
    ],
)
def test_named_schemes_have_their_papers_variance(fn, var, distribution):
    w = torch.empty(OUT, IN)
    fn(w, generator=torch.Generator().manual_seed(3))
    assert_second_moment(w, var, distribution)


def test_gain_multiplies_the_std():
    w = torch.empty(OUT, IN)
    I.glorot_uniform_(w, gain=5 / 3, generator=torch.Generator().manual_seed(4))
    assert_second_moment(w, (5 / 3) ** 2 * 2.0 / (IN + OUT), "uniform")


def test_glorot_uniform_bound_is_sqrt_6_over_fan_sum():
    w = torch.empty(OUT, IN)
    I.glorot_uniform_(w, generator=torch.Generator().manual_seed(5))
    bound = math.sqrt(6.0 / (IN + OUT))
    assert float(w.abs().max()) <= bound
    assert float(w.abs().max()) > 0.999 * bound  # 60k uniform draws reach the edge


def test_standard_uniform_bound_is_one_over_sqrt_fan_in():
    w = torch.empty(OUT, IN)
    I.standard_uniform_(w, generator=torch.Generator().manual_seed(6))
    assert float(w.abs().max()) <= 1 / math.sqrt(IN)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_every_float_dtype_gets_the_variance(dtype):
    w = torch.empty(OUT, IN, dtype=dtype)
    I.he_normal_(w, generator=torch.Generator().manual_seed(7))
    assert w.dtype == dtype
    assert_second_moment(w.double(), 2.0 / IN, "normal")


def test_explicit_fans_override_the_shape():
    w = torch.empty(OUT, IN)
    I.variance_scaling_(w, 1.0, "fan_in", "normal", generator=torch.Generator().manual_seed(8), fans=(50, 7))
    assert_second_moment(w, 1.0 / 50, "normal")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"mode": "fan_sum"}, r"mode must be one of fan_in, fan_out, fan_avg, got 'fan_sum'"),
        ({"distribution": "cauchy"}, r"distribution must be one of .*got 'cauchy'"),
        ({"scale": -1.0}, r"scale must be a non-negative finite number, got -1.0"),
    ],
)
def test_bad_arguments_name_value_and_accepted(kwargs, match):
    with pytest.raises(ValueError, match=match):
        I.variance_scaling_(torch.empty(3, 4), **kwargs)


def test_negative_gain_is_rejected():
    with pytest.raises(ValueError, match="gain must be a non-negative finite number, got -1"):
        I.glorot_uniform_(torch.empty(3, 4), gain=-1)


def test_one_dimensional_tensor_is_rejected_with_its_shape():
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*got shape \(5,\)"):
        I.glorot_uniform_(torch.empty(5))
