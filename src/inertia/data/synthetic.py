"""Generated data sets: Shapeset-3x2, CURVES-like images, and Hu et al.'s deep-linear regression.

Every generator is deterministic for a seed (``numpy.random.default_rng(seed)``), vectorised
with numpy, and returns torch tensors with the documented shapes and dtypes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

SHAPES = ("triangle", "parallelogram", "ellipse")
# The 9 Shapeset-3x2 classes: which shapes are present (multisets of size 1 or 2 over 3 types).
SHAPESET_CLASSES = ((0,), (1,), (2,), (0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
SHAPESET_CLASS_NAMES = tuple(" + ".join(SHAPES[i] for i in c) for c in SHAPESET_CLASSES)


def _check_n(n) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return n


def _masks(kind: np.ndarray, cx, cy, a, b, angle, shear, size: int) -> np.ndarray:
    """Boolean masks [m, size, size] of shapes of the given kinds (0 triangle, 1 parallelogram,
    2 ellipse), centred at (cx, cy) with half-extents a, b, rotated by ``angle``."""
    g = np.arange(size, dtype=np.float32) + 0.5
    x = g[None, None, :] - cx[:, None, None]
    y = g[None, :, None] - cy[:, None, None]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = c * x + s * y  # local coordinates
    v = -s * x + c * y
    a = a[:, None, None]
    b = b[:, None, None]
    ellipse = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    up = u - shear[:, None, None] * v
    parallelogram = (np.abs(up) <= a * (1 - np.abs(shear[:, None, None]) / 2)) & (np.abs(v) <= b)
    # isosceles triangle with apex (0, -b) and base from (-a, b) to (a, b)
    t = (v + b) / (2 * b)  # 0 at the apex, 1 at the base
    triangle = (v <= b) & (v >= -b) & (np.abs(u) <= a * t)
    k = kind[:, None, None]
    return np.where(k == 0, triangle, np.where(k == 1, parallelogram, ellipse))


def _draw_shapes(rng, kinds: np.ndarray, size: int, scale: tuple) -> tuple:
    m = kinds.shape[0]
    lo, hi = scale
    a = rng.uniform(lo, hi, m).astype(np.float32) * size
    b = a * rng.uniform(0.6, 1.0, m).astype(np.float32)
    r = np.maximum(a, b)
    cx = rng.uniform(r, size - r).astype(np.float32)
    cy = rng.uniform(r, size - r).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi, m).astype(np.float32)
    shear = rng.uniform(-0.6, 0.6, m).astype(np.float32)
    return _masks(kinds, cx, cy, a, b, angle, shear, size)


def shapeset(n: int, seed: int = 0, image_size: int = 32, max_overlap: float = 0.5, easy: bool = False,
             flatten: bool = True, return_masks: bool = False) -> tuple:
    """Glorot & Bengio (2010)'s Shapeset-3x2: 1 or 2 shapes from {triangle, parallelogram,
    ellipse} with random position, size, angle, shear and grey level; 9 balanced classes saying
    which shapes are present (see ``SHAPESET_CLASS_NAMES``).

    Faithful version: grey background of random level in [0, 0.5], shapes of random grey level
    in [0.5, 1] (so they contrast with it), half-extents 10-25% of the image. ``easy=True``
    (clearly a variant, for short training budgets): black background, white shapes, half-extents
    20-35%. Two shapes overlap by at most ``max_overlap`` of the smaller shape's area (redrawn
    until they do).

    Returns ``(images, labels)``: float32 ``[n, image_size**2]`` in [0, 1] (``[n, 1, s, s]`` with
    ``flatten=False``) and int64 ``[n]`` in 0..8; with ``return_masks=True`` also the two shapes'
    boolean masks ``[n, s, s]`` (the second all False for one-shape images).
    """
    n = _check_n(n)
    if not 0 <= max_overlap <= 1:
        raise ValueError(f"max_overlap must be in [0, 1], got {max_overlap!r}")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 9)
    scale = (0.20, 0.35) if easy else (0.10, 0.25)
    first = np.array([SHAPESET_CLASSES[c][0] for c in labels])
    second = np.array([SHAPESET_CLASSES[c][1] if len(SHAPESET_CLASSES[c]) == 2 else -1 for c in labels])
    two = second >= 0
    m1 = _draw_shapes(rng, first, image_size, scale)
    m2 = np.zeros_like(m1)
    todo = np.flatnonzero(two)
    for _ in range(200):  # rejection sampling of the second shape's placement
        if todo.size == 0:
            break
        cand = _draw_shapes(rng, second[todo], image_size, scale)
        inter = (cand & m1[todo]).sum((1, 2))
        smaller = np.minimum(cand.sum((1, 2)), m1[todo].sum((1, 2))).clip(min=1)
        ok = inter <= max_overlap * smaller
        m2[todo[ok]] = cand[ok]
        todo = todo[~ok]
    if todo.size:
        raise ValueError(f"could not place {todo.size} second shapes with overlap <= {max_overlap}")
    if easy:
        bg = np.zeros(n, np.float32)
        g1 = g2 = np.ones(n, np.float32)
    else:
        bg = rng.uniform(0.0, 0.5, n).astype(np.float32)
        g1 = rng.uniform(0.5, 1.0, n).astype(np.float32)
        g2 = rng.uniform(0.5, 1.0, n).astype(np.float32)
    img = np.broadcast_to(bg[:, None, None], m1.shape).copy()
    img = np.where(m1, g1[:, None, None], img)
    img = np.where(m2, g2[:, None, None], img)
    x = torch.from_numpy(img.astype(np.float32))
    x = x.reshape(n, -1) if flatten else x.unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    if return_masks:
        return x, y, torch.from_numpy(m1), torch.from_numpy(m2)
    return x, y


def render_grid(images: torch.Tensor, labels: Optional[torch.Tensor] = None, path: Union[str, Path, None] = None,
                ncols: int = 8, class_names: Optional[Sequence] = None):
    """Draw ``images`` (``[n, s*s]`` or ``[n, 1, s, s]``) in a grid with their labels; save a PNG
    if ``path`` is given. Returns the figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = images.shape[0]
    if n == 0:
        raise ValueError("no images to render")
    side = int(round(math.sqrt(images[0].numel())))
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.4 * ncols, 1.6 * nrows), squeeze=False)
    names = class_names if class_names is not None else SHAPESET_CLASS_NAMES
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].reshape(side, side).numpy(), cmap="gray", vmin=0, vmax=1)
            if labels is not None:
                lab = int(labels[i])
                ax.set_title(names[lab] if lab < len(names) else str(lab), fontsize=6)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def curves(n: int, seed: int = 0, image_size: int = 28, pen_sigma: float = 0.8) -> torch.Tensor:
    """CURVES-like images (Hinton & Salakhutdinov 2006's autoencoder benchmark): each a quadratic
    Bezier curve with 3 random control points in the image (6 degrees of freedom, matching the
    6-unit code of the paper's 784-400-200-100-50-25-6 autoencoder), drawn with a Gaussian pen of
    width ``pen_sigma`` pixels: intensity exp(-d^2 / (2 sigma^2)) with d the distance to the curve.

    Returns float32 ``[n, image_size**2]`` with values in [0, 1].
    """
    n = _check_n(n)
    rng = np.random.default_rng(seed)
    margin = 2.0
    ctrl = rng.uniform(margin, image_size - margin, (n, 3, 2)).astype(np.float32)
    t = np.linspace(0, 1, 48, dtype=np.float32)[:, None]
    w = np.stack([(1 - t) ** 2, 2 * (1 - t) * t, t ** 2], axis=0)[..., 0]  # [3, 48]
    pts = torch.from_numpy(np.einsum("kt,nkd->ntd", w, ctrl))  # [n, 48, 2] points along each curve
    g = torch.arange(image_size, dtype=torch.float32) + 0.5
    gy, gx = torch.meshgrid(g, g, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # [P, 2] pixel centres, row-major
    out = torch.empty(n, grid.shape[0])
    for s in range(0, n, 1000):
        d = torch.cdist(pts[s:s + 1000], grid.expand(min(1000, n - s), -1, -1))  # [b, 48, P]
        dmin = d.amin(1)
        out[s:s + 1000] = torch.exp(-dmin * dmin / (2 * pen_sigma ** 2))
    return out


@dataclass
class LinearRegressionData:
    """Hu et al. (2020)'s regression: ``X`` [d_in, n] (feature-major, as in the paper), ``W_star``
    [d_out, d_in], ``Y = W_star X`` [d_out, n]; ``inputs`` / ``targets`` are the sample-major
    transposes [n, d_in] / [n, d_out] for ``nn.Module`` use."""

    X: torch.Tensor
    Y: torch.Tensor
    W_star: torch.Tensor

    @property
    def inputs(self) -> torch.Tensor:
        return self.X.T

    @property
    def targets(self) -> torch.Tensor:
        return self.Y.T


def deep_linear_regression(d_in: int = 1024, n: int = 16, d_out: int = 10, seed: int = 0,
                           dtype: torch.dtype = torch.float64) -> LinearRegressionData:
    """X and W_star with i.i.d. N(0, 1) entries, Y = W_star X (Hu, Xiao & Pennington 2020, section 5)."""
    for name, v in (("d_in", d_in), ("n", n), ("d_out", d_out)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(d_in, n, generator=g, dtype=torch.float64)
    w = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)
    return LinearRegressionData(x.to(dtype), (w @ x).to(dtype), w.to(dtype))

