"""Shapeset-3x2 (Breuleux, Bengio et al.; used by Glorot & Bengio 2010), drawn with numpy.

Each image holds 1 or 2 shapes from {triangle, parallelogram, ellipse} with random position,
size, rotation and grey level; the label says which shapes are present: a multiset of size 1
or 2 over the 3 types, 9 classes (``SHAPESET_CLASS_NAMES``).

Geometry (all shapes are sized by the radius R of a circle that contains them):

- triangle: vertices on the circle at angles 0, 2pi/3 + j1, 4pi/3 + j2 (j ~ U[-0.5, 0.5] rad),
  so every triangle shape (not only isosceles ones) occurs, none degenerate;
- parallelogram: vertices +-p, +-q with |p| = R, |q| = a R (a ~ U[0.5, 1]) and the angle
  between p and q ~ U[pi/4, 3pi/4] (rectangles, rhombi and squares included);
- ellipse: semi-axes R and a R.

Then a random rotation in [0, 2pi) and a centre uniform in [R, s - R]^2, so every shape lies
inside the image. A pixel belongs to a shape when its centre does (no anti-aliasing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ._validate import check_count, make_rng

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SHAPES", "SHAPESET_CLASSES", "SHAPESET_CLASS_NAMES", "as_images", "render_grid", "shapeset"]

SHAPES = ("triangle", "parallelogram", "ellipse")
# The 9 classes: which shapes are present (multisets of size 1 or 2 over the 3 types).
SHAPESET_CLASSES = ((0,), (1,), (2,), (0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
SHAPESET_CLASS_NAMES = tuple(" + ".join(SHAPES[i] for i in c) for c in SHAPESET_CLASSES)

# Circumradius R as a fraction of the image side: the faithful set and the easy variant.
_RADIUS = {False: (0.15, 0.30), True: (0.25, 0.40)}
_MIN_CONTRAST = 0.2  # |shape grey - background grey| in the faithful set
_MIN_PIXELS = 4  # a shape covering fewer pixels than this is redrawn (it would be invisible)
_REDRAW_FIRST_EVERY = 5  # rounds of failed placements before the first shape is redrawn too
_MAX_ROUNDS = 20000


def _draw(rng: np.random.Generator, kinds: np.ndarray, size: int, radius: tuple) -> np.ndarray:
    """Boolean masks [m, size, size] of random shapes of the given kinds (0 triangle,
    1 parallelogram, 2 ellipse)."""
    m = kinds.shape[0]
    f32 = lambda a: a.astype(np.float32)  # noqa: E731  (float32 halves the cost of the pixel tests)
    r = rng.uniform(radius[0], radius[1], m) * size
    cx, cy = f32(rng.uniform(r, size - r)), f32(rng.uniform(r, size - r))
    angle = rng.uniform(0.0, 2 * math.pi, m)
    jitter = f32(rng.uniform(-0.5, 0.5, (m, 2)))  # triangle vertex angles
    aspect = f32(rng.uniform(0.5, 1.0, m))  # ellipse axis ratio; parallelogram |q| / |p|
    phi = f32(rng.uniform(math.pi / 4, 3 * math.pi / 4, m))  # parallelogram angle between p and q
    r, angle = f32(r), f32(angle)

    g = np.arange(size, dtype=np.float32) + np.float32(0.5)
    x = g[None, None, :] - cx[:, None, None]  # [m, 1, s]
    y = g[None, :, None] - cy[:, None, None]  # [m, s, 1]
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = (c * x + s * y) / r[:, None, None]  # [m, s, s] shape frame, unit circumradius
    v = (-s * x + c * y) / r[:, None, None]

    out = np.zeros((m, size, size), dtype=bool)
    col = lambda a: a[:, None, None]  # noqa: E731  (per-shape scalar against the pixel grid)
    tri = kinds == 0
    if tri.any():
        theta = np.stack(
            [
                np.zeros(tri.sum(), np.float32),
                np.float32(2 * math.pi / 3) + jitter[tri, 0],
                np.float32(4 * math.pi / 3) + jitter[tri, 1],
            ],
            1,
        )  # [k, 3] counter-clockwise
        vx, vy = np.cos(theta), np.sin(theta)
        inside = np.ones((tri.sum(), size, size), dtype=bool)
        for i in range(3):  # left of every edge v_i -> v_{i+1}
            j = (i + 1) % 3
            ex, ey = col(vx[:, j] - vx[:, i]), col(vy[:, j] - vy[:, i])
            inside &= ex * (v[tri] - col(vy[:, i])) - ey * (u[tri] - col(vx[:, i])) >= 0
        out[tri] = inside
    par = kinds == 1
    if par.any():
        # x = s (p - q)/2 + t (p + q)/2 with |s|, |t| <= 1 spans the parallelogram +-p, +-q
        qx, qy = aspect[par] * np.cos(phi[par]), aspect[par] * np.sin(phi[par])
        a11, a21, a12, a22 = (1 - qx) / 2, -qy / 2, (1 + qx) / 2, qy / 2
        det = a11 * a22 - a12 * a21
        uu, vv = u[par], v[par]
        s_ = (col(a22) * uu - col(a12) * vv) / col(det)
        t_ = (-col(a21) * uu + col(a11) * vv) / col(det)
        out[par] = (np.abs(s_) <= 1) & (np.abs(t_) <= 1)
    ell = kinds == 2
    if ell.any():
        out[ell] = u[ell] ** 2 + (v[ell] / col(aspect[ell])) ** 2 <= 1
    return out


def _draw_visible(rng: np.random.Generator, kinds: np.ndarray, size: int, radius: tuple) -> np.ndarray:
    """Like :func:`_draw`, redrawing shapes that cover fewer than ``_MIN_PIXELS`` pixels."""
    masks = _draw(rng, kinds, size, radius)
    for _ in range(_MAX_ROUNDS):
        small = np.flatnonzero(masks.sum((1, 2)) < _MIN_PIXELS)
        if small.size == 0:
            return masks
        masks[small] = _draw(rng, kinds[small], size, radius)
    raise ValueError(f"image_size {size} is too small to draw visible shapes")


def _grey_levels(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A grey level in [0, 1] per image at least ``_MIN_CONTRAST`` away from its background."""
    below = np.clip(background - _MIN_CONTRAST, 0, None)  # length of [0, bg - c]
    above = np.clip(1 - background - _MIN_CONTRAST, 0, None)  # length of [bg + c, 1]
    w = rng.uniform(0, 1, background.shape) * (below + above)
    return np.where(w < below, w, background + _MIN_CONTRAST + (w - below))


def shapeset(
    n: int,
    seed: int = 0,
    image_size: int = 32,
    max_overlap: float = 0.5,
    easy: bool = False,
    flatten: bool = True,
    return_masks: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Shapeset-3x2 (Glorot & Bengio 2010, section 2.1): ``n`` images with 1 or 2 shapes from
    {triangle, parallelogram, ellipse}; the label (0..8) says which shapes are present, see
    ``SHAPESET_CLASS_NAMES``: 3 single shapes, 3 same-type pairs, 3 mixed pairs. Classes are
    balanced: counts differ by at most one (exactly n/9 each when 9 divides n).

    Faithful set (``easy=False``): background grey ~ U[0, 1]; each shape's grey level uniform over
    [0, 1] minus the band within 0.2 of the background; circumradius 15-30% of the side. The
    ``easy=True`` variant (larger shapes, plain background; always name it as such in reports,
    since it is not the paper's data): white shapes on black, circumradius 25-40% of the side.

    Overlap: for two-shape images, the number of pixels the shapes share is at most
    ``max_overlap`` times the pixel area of the smaller shape (the paper's "at most 50%"); the
    second shape is redrawn until it holds. The second shape is painted over the first.

    Args:
        n: number of images.
        seed: non-negative integer for ``numpy.random.default_rng``.
        image_size: side s in pixels (>= 16).
        max_overlap: in [0, 1].
        easy: the easier variant described above.
        flatten: ``[n, s*s]`` (for MLPs) if True, else ``[n, 1, s, s]``; see :func:`as_images`.
        return_masks: also return the two shapes' boolean masks.

    Returns:
        ``(images, labels)``: float32 ``[n, s*s]`` (row-major, rows top to bottom) in [0, 1] and
        int64 ``[n]``; with ``return_masks``, also ``mask1, mask2``: bool ``[n, s, s]`` (``mask2``
        all False in one-shape images).

    Examples:

    >>> import inertia
    >>> x, y = inertia.data.shapeset(18, seed=0)
    >>> x.shape, x.dtype, y.dtype
    (torch.Size([18, 1024]), torch.float32, torch.int64)
    >>> torch.bincount(y).tolist()  # balanced: 18 / 9 images per class
    [2, 2, 2, 2, 2, 2, 2, 2, 2]
    """
    n = check_count("n", n)
    image_size = check_count("image_size", image_size, minimum=16)
    if isinstance(max_overlap, bool) or not isinstance(max_overlap, (int, float)) or not 0 <= max_overlap <= 1:
        raise ValueError(f"max_overlap must be a number in [0, 1], got {max_overlap!r}")
    rng = make_rng(seed)
    radius = _RADIUS[bool(easy)]
    labels = rng.permutation(np.arange(n) % 9)
    classes = [SHAPESET_CLASSES[c] for c in labels.tolist()]
    first = np.array([c[0] for c in classes])
    second = np.array([c[-1] if len(c) == 2 else -1 for c in classes])

    m1 = _draw_visible(rng, first, image_size, radius)
    m2 = np.zeros_like(m1)
    todo = np.flatnonzero(second >= 0)  # images still waiting for their second shape
    for rounds in range(1, _MAX_ROUNDS + 1):
        if todo.size == 0:
            break
        if rounds % _REDRAW_FIRST_EVERY == 0:  # the first shape leaves no room: move it too
            m1[todo] = _draw_visible(rng, first[todo], image_size, radius)
        cand = _draw_visible(rng, second[todo], image_size, radius)
        shared = (cand & m1[todo]).sum((1, 2))
        smaller = np.minimum(cand.sum((1, 2)), m1[todo].sum((1, 2)))
        ok = shared <= max_overlap * smaller
        m2[todo[ok]] = cand[ok]
        todo = todo[~ok]
    if todo.size:
        raise ValueError(
            f"could not place {todo.size} second shapes with max_overlap={max_overlap} in "
            f"{_MAX_ROUNDS} rounds; use a larger max_overlap or image_size"
        )

    if easy:
        background = np.zeros(n)
        grey1 = grey2 = np.ones(n)
    else:
        background = rng.uniform(0, 1, n)
        grey1, grey2 = _grey_levels(rng, background), _grey_levels(rng, background)
    img = np.broadcast_to(background[:, None, None], m1.shape)
    img = np.where(m1, grey1[:, None, None], img)
    img = np.where(m2, grey2[:, None, None], img).astype(np.float32)  # [n, s, s]
    x = torch.from_numpy(img)
    x = x.reshape(n, -1) if flatten else x.unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    if return_masks:
        return x, y, torch.from_numpy(m1), torch.from_numpy(m2)
    return x, y


def as_images(x: torch.Tensor, channels: int = 1) -> torch.Tensor:
    """Reshape flat square images ``[n, c*s*s]`` to ``[n, c, s, s]`` (a view when possible);
    images already ``[n, c, s, s]`` are returned as they are.

    Examples:

    >>> as_images(torch.zeros(5, 3 * 32 * 32), channels=3).shape
    torch.Size([5, 3, 32, 32])
    """
    if x.dim() == 4 and x.shape[1] == channels and x.shape[2] == x.shape[3]:
        return x
    if x.dim() != 2 or x.shape[1] % channels:
        raise ValueError(
            f"expected flat images [n, {channels}*s*s] or [n, {channels}, s, s], got shape {tuple(x.shape)}"
        )
    side = math.isqrt(x.shape[1] // channels)
    if channels * side * side != x.shape[1]:
        raise ValueError(f"{x.shape[1]} values per image is not {channels} square channel(s)")
    return x.reshape(x.shape[0], channels, side, side)


def render_grid(
    images: torch.Tensor,
    labels: Sequence | None = None,
    path: str | Path | None = None,
    ncols: int = 8,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Draw images in a grid, each titled with its label, and save a PNG if ``path`` is given.

    Args:
        images: ``[n, s*s]`` or ``[n, 1, s, s]`` (grey) or ``[n, 3, s, s]`` (colour), values in
            [0, 1] (clipped for display).
        labels: ``[n]`` class indices (or strings), or None for no titles.
        path: where to write the PNG (its folder must exist); None: do not write.
        ncols: images per row.
        class_names: names for class indices, e.g. ``SHAPESET_CLASS_NAMES``; default: the index.

    Returns:
        the ``matplotlib.figure.Figure`` (made without pyplot, so no global figure is left open).
    """
    from matplotlib.figure import Figure

    n = images.shape[0]
    if n == 0:
        raise ValueError("no images to render: images has shape " + str(tuple(images.shape)))
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    ncols = check_count("ncols", ncols)
    images = images.detach().cpu()
    if images.dim() == 2:
        images = as_images(images)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [n, s*s], [n, 1, s, s] or [n, 3, s, s], got shape {tuple(images.shape)}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(1.5 * ncols, 1.7 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].clamp(0, 1).float()
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
        if labels is not None:
            lab = labels[i]
            lab = lab.item() if isinstance(lab, torch.Tensor) else lab
            if class_names is not None and isinstance(lab, (int, np.integer)) and 0 <= lab < len(class_names):
                lab = class_names[int(lab)]
            ax.set_title(str(lab), fontsize=6)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
