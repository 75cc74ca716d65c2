"""Every random initializer in the registry draws from the law it promises, checked as torch's
test/nn/test_init.py does: a Kolmogorov-Smirnov test (scipy.stats.kstest) of the draws against
that law, with a fixed seed, failing below p = 1e-3. Bounded laws must also fill their support:
no draw beyond the bound, and the largest within the bound's outermost tail of probability q,
with q such that N draws all miss it with probability 1e-6.

Second moments (with their sampling error) are in test_variance_scaling.py; the exact spectral
radius of echo-state matrices in test_sparse.py."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import inertia.init as I

FAN_OUT, FAN_IN = 200, 300  # weights [FAN_OUT, FAN_IN]
FAN_AVG = (FAN_IN + FAN_OUT) / 2
KS_P = 1e-3
EDGE_P = 1e-6

# Registered names whose output is not random, and why they have no test here.
NOT_RANDOM = {
    "constant": "fills a fixed value",
    "hessian_calibrated": "model level: the base scheme (tested here) times calibrated scales",
}

# name -> (law, variance) for weights [FAN_OUT, FAN_IN] with the scheme's defaults.
VARIANCE_LAWS = {
    "variance_scaling": ("truncated_normal", 1 / FAN_IN),
    "glorot_uniform": ("uniform", 1 / FAN_AVG),  # bound sqrt(6 / (fan_in + fan_out))
    "xavier_uniform": ("uniform", 1 / FAN_AVG),
    "glorot_normal": ("normal", 1 / FAN_AVG),
    "xavier_normal": ("normal", 1 / FAN_AVG),
    "standard_uniform": ("uniform", 1 / (3 * FAN_IN)),  # bound 1 / sqrt(fan_in)
    "he_uniform": ("uniform", 2 / FAN_IN),  # bound sqrt(6 / fan_in)
    "kaiming_uniform": ("uniform", 2 / FAN_IN),
    "he_normal": ("normal", 2 / FAN_IN),
    "kaiming_normal": ("normal", 2 / FAN_IN),
    "lecun_uniform": ("uniform", 1 / FAN_IN),  # bound sqrt(3 / fan_in)
    "lecun_normal": ("truncated_normal", 1 / FAN_IN),
    "normal": ("normal", 1.0),
}
OTHER_LAWS = ("orthogonal", "delta_orthogonal", "sparse", "echo_state")  # tested one by one below


def gen(seed):
    return torch.Generator().manual_seed(seed)


def law(distribution, var):
    """The frozen scipy law with mean 0 and variance ``var``."""
    std = math.sqrt(var)
    if distribution == "normal":
        return stats.norm(scale=std)
    if distribution == "uniform":
        bound = math.sqrt(3 * var)
        return stats.uniform(-bound, 2 * bound)
    # Cut at +-2 sigma0, with sigma0 chosen so the truncated law has variance var.
    return stats.truncnorm(-2, 2, scale=std / stats.truncnorm(-2, 2).std())


def assert_follows(values, dist):
    values = np.asarray(values, dtype=np.float64).ravel()
    p = stats.kstest(values, dist.cdf).pvalue
    assert p > KS_P, f"KS p = {p:.3g}"
    bound = dist.support()[1]
    if math.isfinite(bound):
        q = -math.log(EDGE_P) / values.size  # (1 - q)^N = EDGE_P
        biggest = float(np.abs(values).max())
        assert biggest <= bound * (1 + 1e-6)  # float32 rounding of the bound
        assert biggest >= dist.isf(q / 2), f"max |w| = {biggest:.6g}, bound {bound:.6g}"


def test_every_random_registered_scheme_has_a_distribution_test():
    assert set(I.available()) - set(NOT_RANDOM) == set(VARIANCE_LAWS) | set(OTHER_LAWS)


@pytest.mark.parametrize("name", sorted(VARIANCE_LAWS))
def test_named_scheme_draws_from_its_law(name):
    w = I.get(name)(torch.empty(FAN_OUT, FAN_IN), generator=gen(11))
    assert_follows(w, law(*VARIANCE_LAWS[name]))


@pytest.mark.parametrize("distribution", ["normal", "uniform", "truncated_normal"])
@pytest.mark.parametrize("mode,fan", [("fan_in", FAN_IN), ("fan_out", FAN_OUT), ("fan_avg", FAN_AVG)])
def test_variance_scaling_draws_scale_over_fan_from_its_law(mode, fan, distribution):
    w = I.variance_scaling_(
        torch.empty(FAN_OUT, FAN_IN), scale=2.0, mode=mode, distribution=distribution, generator=gen(12)
    )
    assert_follows(w, law(distribution, 2.0 / fan))


def test_gain_scales_the_law():
    w = I.he_uniform_(torch.empty(FAN_OUT, FAN_IN), gain=3.0, generator=gen(13))
    assert_follows(w, law("uniform", 9.0 / FAN_IN))


def test_a_wrong_fan_fails_the_test():
    # The test can tell fan_in from fan_out: he_normal's draws against the fan_out law.
    w = I.he_normal_(torch.empty(FAN_OUT, FAN_IN), generator=gen(14))
    assert stats.kstest(w.double().ravel().numpy(), law("normal", 2 / FAN_OUT).cdf).pvalue < 1e-6


# Haar (semi-)orthogonal matrices. A Haar [rows, cols] matrix with rows >= cols has its first
# column uniform on the unit sphere of R^rows (rows < cols: its first row, on that of R^cols), so
# (Q_11 + 1) / 2 ~ Beta((n - 1) / 2, (n - 1) / 2), n = max(rows, cols) (Muirhead 1982, thm 1.5.7).
N_DRAWS = 2000


def haar_entry_law(n):
    return stats.beta((n - 1) / 2, (n - 1) / 2)


def _sampled(fn, shape, entry, seed):
    g = gen(seed)
    return np.array([float(fn(torch.empty(shape, dtype=torch.float64), generator=g)[entry]) for _ in range(N_DRAWS)])


def test_haar_entries_follow_the_beta_law():
    q11 = _sampled(I.orthogonal_, (8, 8), (0, 0), 123)
    qnn = _sampled(I.orthogonal_, (8, 8), (-1, -1), 124)
    assert stats.kstest((q11 + 1) / 2, haar_entry_law(8).cdf).pvalue > KS_P
    assert stats.kstest((qnn + 1) / 2, haar_entry_law(8).cdf).pvalue > KS_P


@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (4, 2, 2, 2)])  # tall, wide, conv [4, 8]
def test_semi_orthogonal_first_entry_follows_the_haar_law(shape):
    q11 = _sampled(I.orthogonal_, shape, (0,) * len(shape), 125)
    assert stats.kstest((q11 + 1) / 2, haar_entry_law(8).cdf).pvalue > KS_P


def test_haar_trace_has_mean_zero_and_variance_one():
    # E tr Q = 0 and E (tr Q)^2 = 1 on O(n); tr Q's 4th moment is 3 for n >= 4 (Diaconis &
    # Shahshahani 1994), so the sample second moment has standard deviation sqrt(2 / N).
    g = gen(126)
    tr = np.array(
        [float(torch.trace(I.orthogonal_(torch.empty(8, 8, dtype=torch.float64), generator=g))) for _ in range(N_DRAWS)]
    )
    assert abs(tr.mean()) < 4.5 * math.sqrt(1 / N_DRAWS)
    assert abs((tr**2).mean() - 1) < 4.5 * math.sqrt(2 / N_DRAWS)


def test_plain_sign_uncorrected_qr_fails_the_haar_test():
    g = gen(123)
    q11 = np.array(
        [float(torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))[0][0, 0]) for _ in range(N_DRAWS)]
    )
    assert stats.kstest((q11 + 1) / 2, haar_entry_law(8).cdf).pvalue < 1e-6


@pytest.mark.parametrize("shape", [(8, 5, 3), (5, 8, 3, 3)])
def test_delta_orthogonal_centre_follows_the_haar_law(shape):
    centre = (0, 0) + (1,) * (len(shape) - 2)
    q11 = _sampled(I.delta_orthogonal_, shape, centre, 127)
    assert stats.kstest((q11 + 1) / 2, haar_entry_law(8).cdf).pvalue > KS_P


# Sparse initialization (Martens 2010): exactly fan_in nonzeros per unit, N(0, std^2), at inputs
# chosen uniformly without replacement.


def test_sparse_units_have_exactly_fan_in_nonzeros_drawn_from_the_normal_law():
    w = I.sparse_(torch.empty(2000, 50), fan_in=15, std=0.25, generator=gen(21))
    assert torch.all((w != 0).sum(1) == 15)
    assert_follows(w[w != 0], stats.norm(scale=0.25))


def test_sparse_nonzero_positions_are_uniform_over_inputs():
    # Each input is chosen with probability fan_in / n_in per row: a chi-square test of counts.
    w = I.sparse_(torch.empty(3000, 40), fan_in=15, generator=gen(22))
    assert stats.chisquare((w != 0).sum(0).double().numpy()).pvalue > KS_P


def test_echo_state_is_the_sparse_matrix_rescaled_to_the_spectral_radius():
    w = I.echo_state_(torch.empty(100, 100, dtype=torch.float64), spectral_radius=1.1, generator=gen(23))
    s = I.sparse_(torch.empty(100, 100, dtype=torch.float64), generator=gen(23))
    assert torch.allclose(w, s * (1.1 / I.spectral_radius(s)), rtol=1e-12, atol=0)
