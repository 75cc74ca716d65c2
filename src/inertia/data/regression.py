"""The regression problem of Hu, Xiao & Pennington (2020, section 5) for deep linear networks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import check_count, make_rng

__all__ = ["LinearRegressionData", "deep_linear_regression"]


@dataclass(frozen=True)
class LinearRegressionData:
    """X [d_in, n] (feature-major: one column per example, as in the paper), W_star [d_out, d_in]
    and Y = W_star X [d_out, n]. ``inputs`` / ``targets`` are the sample-major transposes
    [n, d_in] / [n, d_out], what an ``nn.Module`` such as ``models.deep_linear`` takes."""

    X: torch.Tensor
    Y: torch.Tensor
    W_star: torch.Tensor

    @property
    def inputs(self) -> torch.Tensor:
        """X^T, ``[n, d_in]``."""
        return self.X.T

    @property
    def targets(self) -> torch.Tensor:
        """Y^T, ``[n, d_out]``."""
        return self.Y.T


def deep_linear_regression(
    d_in: int = 1024, n: int = 16, d_out: int = 10, seed: int = 0, dtype: torch.dtype = torch.float64
) -> LinearRegressionData:
    """Hu, Xiao & Pennington (2020), section 5: X in R^{d_in x n} and W* in R^{d_out x d_in} with
    i.i.d. N(0, 1) entries, Y = W* X; the paper's sizes are d_in = 1024, n = 16, d_out = 10.

    Drawn in float64 with ``numpy.random.default_rng(seed)`` (X first, then W*), Y computed in
    float64, then all three cast to ``dtype`` (float64 by default: deep products overflow
    float32's range quickly).

    Examples:

    >>> import inertia
    >>> d = inertia.data.deep_linear_regression()
    >>> d.X.shape, d.W_star.shape, d.inputs.shape, d.targets.dtype
    (torch.Size([1024, 16]), torch.Size([10, 1024]), torch.Size([16, 1024]), torch.float64)
    >>> torch.equal(d.Y, d.W_star @ d.X)
    True
    """
    d_in, n, d_out = check_count("d_in", d_in), check_count("n", n), check_count("d_out", d_out)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    rng = make_rng(seed)
    x = torch.from_numpy(rng.standard_normal((d_in, n)))  # [d_in, n]
    w = torch.from_numpy(rng.standard_normal((d_out, d_in)))  # [d_out, d_in]
    return LinearRegressionData(x.to(dtype), (w @ x).to(dtype), w.to(dtype))
