"""orthogonal_ gives Haar (semi-)orthogonal matrices in every dtype; plain QR does not."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import inertia.init as I


def gram_error(w):
    w = w.double().reshape(w.shape[0], -1)
    if w.shape[0] <= w.shape[1]:
        g = w @ w.T
    else:
        g = w.T @ w
    return float((g - torch.eye(g.shape[0], dtype=g.dtype)).abs().max())


@pytest.mark.parametrize("shape", [(64, 64), (32, 100), (100, 32), (16, 4, 3, 3)])
def test_float32_is_orthogonal_to_1e5(shape):
    w = I.orthogonal_(torch.empty(shape), generator=torch.Generator().manual_seed(0))
    assert gram_error(w) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_orthogonal_to_1e2_where_torch_fails(dtype):
    w = I.orthogonal_(torch.empty(64, 64, dtype=dtype), generator=torch.Generator().manual_seed(0))
    assert w.dtype == dtype
    assert gram_error(w) < 1e-2


def test_gain_scales_the_gram_matrix():
    w = I.orthogonal_(torch.empty(20, 20, dtype=torch.float64), gain=3.0, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(w @ w.T, 9 * torch.eye(20, dtype=torch.float64), atol=1e-10)


def _plain_qr(n, g):
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q


def _ours(n, g):
    return I.orthogonal_(torch.empty(n, n, dtype=torch.float64), generator=g)


N_DRAWS, DIM = 2000, 8


def _entries(sampler):
    g = torch.Generator().manual_seed(123)
    qs = [sampler(DIM, g) for _ in range(N_DRAWS)]
    q11 = np.array([float(q[0, 0]) for q in qs])
    qnn = np.array([float(q[-1, -1]) for q in qs])
    tr = np.array([float(torch.trace(q)) for q in qs])
    return q11, qnn, tr


def test_haar_entries_follow_the_beta_law():
    # For Haar Q in O(n), (Q_ij + 1) / 2 ~ Beta((n-1)/2, (n-1)/2).
    q11, qnn, _ = _entries(_ours)
    beta = stats.beta((DIM - 1) / 2, (DIM - 1) / 2)
    assert stats.kstest((q11 + 1) / 2, beta.cdf).pvalue > 1e-3
    assert stats.kstest((qnn + 1) / 2, beta.cdf).pvalue > 1e-3


def test_haar_trace_has_mean_zero_and_variance_one():
    # E tr Q = 0 and E (tr Q)^2 = 1 on O(n); tr Q's 4th moment is 3 for n >= 4 (Diaconis &
    # Shahshahani 1994), so the sample variance has standard deviation sqrt(2 / N).
    _, _, tr = _entries(_ours)
    assert abs(tr.mean()) < 4.5 * math.sqrt(1 / N_DRAWS)
    assert abs((tr ** 2).mean() - 1) < 4.5 * math.sqrt(2 / N_DRAWS)


def test_plain_sign_uncorrected_qr_fails_the_haar_test():
    q11, _, _ = _entries(_plain_qr)
    beta = stats.beta((DIM - 1) / 2, (DIM - 1) / 2)
    assert stats.kstest((q11 + 1) / 2, beta.cdf).pvalue < 1e-6


def test_same_seed_same_matrix():
    a = I.orthogonal_(torch.empty(10, 7), generator=torch.Generator().manual_seed(5))
    b = I.orthogonal_(torch.empty(10, 7), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_delta_orthogonal_is_orthogonal_at_the_centre_and_zero_elsewhere():
    w = I.delta_orthogonal_(torch.empty(16, 8, 3, 3), generator=torch.Generator().manual_seed(0))
    centre = w[:, :, 1, 1]
    assert gram_error(centre) < 1e-5
    w[:, :, 1, 1] = 0
    assert torch.count_nonzero(w) == 0


def test_delta_orthogonal_conv_preserves_norms_of_inputs():
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False).double()
    I.delta_orthogonal_(conv.weight.data, generator=torch.Generator().manual_seed(1))
    x = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    assert torch.allclose(conv(x).norm(), x.norm(), rtol=1e-12)


def test_delta_orthogonal_rejects_even_kernels():
    with pytest.raises(ValueError, match=r"odd kernel sizes.*\(2, 2\)"):
        I.delta_orthogonal_(torch.empty(4, 4, 2, 2))


def test_orthogonal_rejects_vectors():
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        I.orthogonal_(torch.empty(4))


@pytest.mark.parametrize("shape", [(6, 4, 3), (6, 4, 3, 3), (6, 4, 3, 3, 3)])
def test_delta_orthogonal_takes_conv1d_2d_3d_weights(shape):
    w = I.delta_orthogonal_(torch.empty(shape), generator=torch.Generator().manual_seed(0))
    assert gram_error(w[(slice(None), slice(None)) + (1,) * (len(shape) - 2)]) < 1e-5


@pytest.mark.parametrize("shape", [(6, 4), (6, 4, 3, 3, 3, 3)])
def test_delta_orthogonal_refuses_other_numbers_of_dims(shape):
    with pytest.raises(ValueError, match=rf"3 to 5 dims \(Conv1d/2d/3d\), got {len(shape)} dims"):
        I.delta_orthogonal_(torch.empty(shape))
