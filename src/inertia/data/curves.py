"""CURVES-like images: a stand-in for the CURVES set of Hinton & Salakhutdinov (2006), used by
Sutskever et al. (2013) for the 784-400-200-100-50-25-6 deep autoencoder.

Each image is a quadratic Bezier curve

    B(t) = (1 - t)^2 P0 + 2 (1 - t) t P1 + t^2 P2,    t in [0, 1],

with the 3 control points drawn uniformly in [2, s - 2]^2 (6 degrees of freedom, matching the
6-unit code of the autoencoder; the curve starts at P0, ends at P2 and is pulled towards P1),
drawn with a Gaussian pen: pixel (i, j) with centre g = (j + 0.5, i + 0.5) has intensity

    exp(-d(g)^2 / (2 sigma^2)),    d(g) = distance from g to the curve,

so intensities are in [0, 1], 1 on the curve. d is computed against the curve's 32-segment
chordal polyline, which is within |P0 - 2 P1 + P2| / (4 * 32^2) <= 0.017 px of the curve
(28 x 28 images); the intensity error is therefore at most 0.017 * max|d/dd exp(-d^2/2s^2)| =
0.017 * e^(-1/2) / sigma, 0.013 for sigma = 0.8 (a test checks it against an exact reference).
Intensities below float32's smallest normal number (1.2e-38; far from the pen, exp underflows
through the denormal range) are set to 0: about 5% of the pixels would otherwise be denormal, and
on x86 CPUs a denormal operand sends every matrix product that reads it down a slow path (an
update of the deep autoencoder took 9x longer, benchmarks/bench_denormal.py).
"""

from __future__ import annotations

import numpy as np
import torch

from ._validate import check_count, make_rng

__all__ = ["curves"]

_SEGMENTS = 32
_MARGIN = 2.0
_CHUNK = 128  # curves per block: [128, 784, 32] float32 temporaries, about 13 MB each
_TINY = torch.finfo(torch.float32).tiny


def curves(n: int, seed: int = 0, image_size: int = 28, pen_sigma: float = 0.8) -> torch.Tensor:
    """``n`` CURVES-like images (see the module docstring for the definition).

    Args:
        n: number of images.
        seed: non-negative integer for ``numpy.random.default_rng``.
        image_size: side s in pixels (>= 8); 28 as in the paper.
        pen_sigma: the pen's Gaussian width in pixels (> 0).

    Returns:
        float32 ``[n, s*s]`` (row-major) with values in [0, 1]. Predicting the mean image gives a
        summed squared error of about 22.5 per image (28 x 28, sigma 0.8).

    Examples:

    >>> import inertia
    >>> x = inertia.data.curves(4, seed=0)
    >>> x.shape, x.dtype, bool(x.min() >= 0 and x.max() <= 1)
    (torch.Size([4, 784]), torch.float32, True)
    """
    n = check_count("n", n)
    image_size = check_count("image_size", image_size, minimum=8)
    if isinstance(pen_sigma, bool) or not isinstance(pen_sigma, (int, float)) or not pen_sigma > 0:
        raise ValueError(f"pen_sigma must be a positive number of pixels, got {pen_sigma!r}")
    rng = make_rng(seed)
    ctrl = rng.uniform(_MARGIN, image_size - _MARGIN, (n, 3, 2))  # [n, 3, (x, y)]
    return _render(ctrl, image_size, float(pen_sigma))


def _render(ctrl: np.ndarray, size: int, sigma: float) -> torch.Tensor:
    """Gaussian-pen images [n, size*size] of the quadratic Bezier curves with control points
    ``ctrl`` [n, 3, 2] (pixel units, x then y)."""
    t = np.linspace(0.0, 1.0, _SEGMENTS + 1)
    basis = np.stack([(1 - t) ** 2, 2 * (1 - t) * t, t**2])  # [3, S+1]
    pts = torch.from_numpy(np.einsum("kt,nkd->ntd", basis, ctrl).astype(np.float32))  # [n, S+1, 2]
    start = pts[:, :-1]  # segment k runs from start[k] to start[k] + step[k]
    step = pts[:, 1:] - start  # [n, S, 2]
    step_sq = (step * step).sum(-1)  # [n, S]
    inv_step_sq = 1.0 / step_sq.clamp_min(1e-12)
    start_dot_step = (start * step).sum(-1)
    start_sq = (start * start).sum(-1)

    g = torch.arange(size, dtype=torch.float32) + 0.5
    gx = g.repeat(size)[None, :, None]  # [1, P, 1] pixel centre x (column), row-major
    gy = g.repeat_interleave(size)[None, :, None]  # [1, P, 1] pixel centre y (row)
    g_sq = gx * gx + gy * gy

    out = torch.empty(ctrl.shape[0], size * size)
    for s in range(0, ctrl.shape[0], _CHUNK):
        c = slice(s, s + _CHUNK)
        sx, sy = start[c, None, :, 0], start[c, None, :, 1]  # [b, 1, S]
        dx, dy = step[c, None, :, 0], step[c, None, :, 1]
        # r = g - start: r.step and |r|^2 without forming r, then the projection onto the segment
        r_dot = torch.addcmul(-start_dot_step[c, None, :], gx, dx).addcmul_(gy, dy)  # [b, P, S]
        proj = (r_dot * inv_step_sq[c, None, :]).clamp_(0, 1)
        r_sq = torch.addcmul(g_sq + start_sq[c, None, :], gx, sx, value=-2).addcmul_(gy, sy, value=-2)
        # |r - proj * step|^2 = |r|^2 - proj * (2 r.step - proj |step|^2)
        v = torch.addcmul(r_dot.mul_(2), proj, step_sq[c, None, :], value=-1)
        d_sq = r_sq.addcmul_(proj, v, value=-1).amin(2).clamp_min_(0)  # [b, P]
        img = d_sq.mul_(-0.5 / sigma**2).exp_()
        out[c] = img.masked_fill_(img < _TINY, 0.0)  # no denormals (module docstring)
    return out
