"""Haar-orthogonal initialization, and its convolutional form (delta-orthogonal).

A matrix Q is Haar-distributed on O(n) when its law is invariant under left and right
multiplication by orthogonal matrices. The QR factorisation of a Gaussian matrix A = QR gives a
Haar Q only once the signs of R's diagonal are folded into Q (Mezzadri 2007): LAPACK's QR fixes
the sign convention of R, which biases Q (for example, plain QR makes Q_11 > 0 more likely than
not). Hu, Xiao & Pennington (2020) require Haar initial weights.

Non-square ``[rows, cols]`` weights are semi-orthogonal: orthonormal rows if rows <= cols,
orthonormal columns otherwise. Convolution weights ``[out, in, *k]`` are flattened to
``[out, in * prod(k)]``. The QR runs in float32 (float64 for float64 tensors) and the result is
cast back, so float16 and bfloat16 tensors work (``torch.nn.init.orthogonal_`` fails on them:
there is no half-precision QR).
"""

from __future__ import annotations

import torch

from ._checks import check_number, nothing_to_fill, work_dtype

__all__ = ["delta_orthogonal_", "haar_orthogonal", "orthogonal_"]


def haar_orthogonal(
    rows: int, cols: int, dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A ``[rows, cols]`` Haar (semi-)orthogonal matrix on the CPU.

    Draws a Gaussian ``[max, min]`` matrix, takes its reduced QR, multiplies each column of Q by
    the sign of the matching diagonal entry of R, and transposes when rows < cols.

    Examples:

    >>> import inertia
    >>> q = inertia.init.haar_orthogonal(4, 4, generator=torch.Generator().manual_seed(0))
    >>> torch.allclose(q.T @ q, torch.eye(4), atol=1e-6)
    True
    """
    big, small = max(rows, cols), min(rows, cols)
    # Gaussian entries are i.i.d., so draw them directly in column-major layout (the transpose
    # of a contiguous [small, big] tensor): LAPACK's QR then needs no layout copy.
    a = torch.empty(small, big, dtype=dtype).normal_(generator=generator).mT  # [big, small]
    q, r = torch.linalg.qr(a, mode="reduced")  # q [big, small], r [small, small]
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1.0
    q.mul_(signs)  # broadcast over rows: column j times sign(R_jj)
    return q if rows >= cols else q.mT


def orthogonal_(tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill ``tensor`` (``[out, in, *k]``, at least 2-D) with a Haar (semi-)orthogonal matrix
    times ``gain``, flattening trailing dimensions; return it.

    Works for every floating dtype (computed in float32/float64, cast back) and any device; a
    tensor with no elements (e.g. the weight of ``nn.Linear(4, 0)``) is returned unchanged.

    Examples:

    >>> import inertia
    >>> w = torch.empty(3, 5)
    >>> inertia.init.orthogonal_(w).shape
    torch.Size([3, 5])
    >>> torch.allclose(w @ w.T, torch.eye(3), atol=1e-6)  # orthonormal rows
    True
    """
    gain = check_number("gain", gain, nonneg=True)
    if tensor.dim() < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}")
    if nothing_to_fill(tensor, "orthogonal_"):
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    q = haar_orthogonal(rows, cols, work_dtype(tensor), generator)
    if gain != 1.0:
        q.mul_(gain)
    with torch.no_grad():
        tensor.view(rows, cols).copy_(q) if tensor.is_contiguous() else tensor.copy_(q.reshape(tensor.shape))
    return tensor


def delta_orthogonal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Delta-orthogonal init for a convolution weight ``[out, in, *k]`` (Xiao et al. 2018, Alg. 1):
    zero everywhere except the kernel centre, which holds a Haar (semi-)orthogonal ``[out, in]``
    matrix times ``gain``. The convolution then acts as an orthogonal map at initialization,
    giving dynamical isometry in deep CNNs.

    Args:
        tensor: the weight of a 1-, 2- or 3-D convolution, ``[out, in, *k]`` with 3 to 5 dims
            (what ``nn.Conv1d/2d/3d`` hold); every kernel size odd (a well-defined centre).
        gain: scale of the centre matrix, >= 0.

    Examples:

    >>> import inertia
    >>> w = torch.empty(8, 4, 3, 3)  # nn.Conv2d(4, 8, 3).weight
    >>> inertia.init.delta_orthogonal_(w).shape
    torch.Size([8, 4, 3, 3])
    >>> int((w != 0).sum()), torch.allclose(w[:, :, 1, 1].T @ w[:, :, 1, 1], torch.eye(4), atol=1e-6)
    (32, True)
    """
    gain = check_number("gain", gain, nonneg=True)
    if not 3 <= tensor.dim() <= 5:
        raise ValueError(
            f"delta_orthogonal_ needs a convolution weight [out, in, *kernel] with 3 to 5 dims "
            f"(Conv1d/2d/3d), got {tensor.dim()} dims, shape {tuple(tensor.shape)}"
        )
    ks = tensor.shape[2:]
    if any(k % 2 == 0 for k in ks):
        raise ValueError(f"delta_orthogonal_ needs odd kernel sizes (a centre tap), got kernel {tuple(ks)}")
    if nothing_to_fill(tensor, "delta_orthogonal_"):
        return tensor
    q = haar_orthogonal(tensor.shape[0], tensor.shape[1], work_dtype(tensor), generator).mul_(gain)
    centre = tuple(k // 2 for k in ks)
    with torch.no_grad():
        tensor.zero_()
        tensor[(slice(None), slice(None)) + centre] = q.to(tensor.dtype)
    return tensor
