"""Martens' sparse initialization and the echo-state recurrent initialization.

Sparse initialization (SI; Martens 2010, used by Sutskever et al. 2013, section 3): each unit
(each row of a ``[out, in]`` weight) gets exactly ``fan_in`` = 15 nonzero incoming weights drawn
from N(0, std^2) at distinct random inputs; all other weights are 0. The total input to a unit
then does not shrink with the layer width, and units differ from each other more than under a
dense Gaussian init. For tanh units Sutskever et al. scale the weights by 0.25 (``std=0.25``)
and set biases to 0.5. This is **not** ``torch.nn.init.sparse_``, which zeroes a fraction of each
*column* of a dense normal matrix.

Echo-state init (Jaeger & Haas 2004; Sutskever et al. 2013, section 4): a square recurrent
matrix, sparse as above, rescaled so that its spectral radius (largest eigenvalue magnitude)
equals ``spectral_radius`` (1.1 in the paper).
"""

from __future__ import annotations

import torch

from .. import validation
from ._checks import check_number, nothing_to_fill, work_dtype

__all__ = ["echo_state_", "sparse_", "spectral_radius"]


def _check_fan_in(fan_in: int) -> int:
    if not isinstance(fan_in, int) or isinstance(fan_in, bool) or fan_in < 1:
        raise ValueError(f"fan_in must be a positive integer, got {fan_in!r}")
    return fan_in


def _sparse_matrix(
    rows: int, cols: int, fan_in: int, std: float, dtype: torch.dtype, generator: torch.Generator | None
) -> torch.Tensor:
    if fan_in > cols:
        raise ValueError(f"fan_in={fan_in} is larger than the number of inputs {cols}; accepted: 1..{cols}")
    # Distinct random columns per row: the indices of the fan_in smallest of i.i.d. uniforms.
    keys = torch.rand(rows, cols, generator=generator)
    idx = keys.topk(fan_in, dim=1, largest=False).indices  # [rows, fan_in]
    vals = torch.empty(rows, fan_in, dtype=dtype).normal_(0.0, std, generator=generator)
    w = torch.zeros(rows, cols, dtype=dtype)
    w.scatter_(1, idx, vals)
    return w


def sparse_(
    tensor: torch.Tensor, fan_in: int | None = None, std: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Martens' sparse init: exactly ``fan_in`` nonzeros N(0, std^2) per row, at distinct inputs.

    Args:
        tensor: ``[out, in]`` (or a convolution weight ``[out, in, *k]``, treated as
            ``[out, in * prod(k)]``).
        fan_in: nonzero incoming weights per unit, at most the input size. Default: 15 (the
            paper's), or every input of a layer with fewer (Martens' own rule for small layers).
        std: standard deviation of the nonzero weights (1 in the paper; 0.25 for tanh units).

    A tensor with no elements (a layer with no units or no inputs) is returned unchanged.

    Examples:

    >>> import inertia
    >>> w = torch.empty(100, 784)
    >>> inertia.init.sparse_(w).shape
    torch.Size([100, 784])
    >>> (w != 0).sum(dim=1).unique()  # 15 incoming weights per unit
    tensor([15])
    """
    std = check_number("std", std, nonneg=True)
    if fan_in is not None:
        _check_fan_in(fan_in)
    if tensor.dim() < 2:
        raise ValueError(f"sparse_ needs a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}")
    if nothing_to_fill(tensor, "sparse_"):
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    if fan_in is None:
        fan_in = min(15, cols)
    w = _sparse_matrix(rows, cols, fan_in, std, work_dtype(tensor), generator)
    with torch.no_grad():
        tensor.copy_(w.reshape(tensor.shape))
    return tensor


def spectral_radius(matrix: torch.Tensor) -> float:
    """Largest eigenvalue magnitude of a square matrix (computed in float64).

    Examples:

    >>> import inertia
    >>> round(inertia.init.spectral_radius(torch.tensor([[0.0, 2.0], [-2.0, 0.0]])), 6)  # eigenvalues +-2i
    2.0
    """
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"spectral radius needs a square matrix, got shape {tuple(matrix.shape)}")
    return float(torch.linalg.eigvals(matrix.detach().to("cpu", torch.float64)).abs().max())


def echo_state_(
    tensor: torch.Tensor, spectral_radius: float = 1.1, fan_in: int = 15, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sparse square recurrent matrix rescaled to the given spectral radius (Sutskever et al. 2013).

    Args:
        tensor: square ``[n, n]`` hidden-to-hidden weight.
        spectral_radius: target largest |eigenvalue|; must be > 0 (1.1 in the paper).
        fan_in: nonzero incoming weights per unit, at most n (15 in the paper).

    Examples:

    >>> import inertia
    >>> w = torch.empty(50, 50)
    >>> _ = inertia.init.echo_state_(w, spectral_radius=1.1, generator=torch.Generator().manual_seed(0))
    >>> round(inertia.init.spectral_radius(w), 6)
    1.1
    """
    spectral_radius = validation.check_number("spectral_radius", spectral_radius, lo=0, lo_open=True)
    _check_fan_in(fan_in)
    if tensor.dim() != 2 or tensor.shape[0] != tensor.shape[1]:
        raise ValueError(f"echo_state_ needs a square [n, n] matrix, got shape {tuple(tensor.shape)}")
    if nothing_to_fill(tensor, "echo_state_"):  # a [0, 0] matrix
        return tensor
    n = tensor.shape[0]
    for _ in range(100):  # a sparse matrix can be nilpotent (radius 0) when n is tiny: redraw
        w = _sparse_matrix(n, n, fan_in, 1.0, torch.float64, generator)
        rho = float(torch.linalg.eigvals(w).abs().max())
        if rho > 1e-8:
            break
    else:  # pragma: no cover - needs a pathological size
        raise ValueError(f"could not draw a sparse {n}x{n} matrix with nonzero spectral radius (fan_in={fan_in})")
    w.mul_(spectral_radius / rho)
    with torch.no_grad():
        tensor.copy_(w)
    return tensor
