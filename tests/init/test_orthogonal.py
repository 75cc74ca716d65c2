"""orthogonal_ gives (semi-)orthogonal matrices in every dtype; delta_orthogonal_ puts one at the
kernel centre. That they are Haar-distributed is tested in test_distributions.py."""

import pytest
import torch

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
