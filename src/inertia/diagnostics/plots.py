"""Figures of diagnostics records (matplotlib; PNG, SVG or PDF by the path's suffix).

Each function takes records as produced by :class:`~inertia.diagnostics.Monitor` /
:class:`~inertia.diagnostics.layers.LayerStats` (or results of the curvature and Jacobian
functions), writes ``path`` if given, and returns the figure. Empty input raises ``ValueError``.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot: a library must not switch
the user's backend or leave figures open in pyplot's global list. ``fig.savefig`` picks the
renderer from the file's suffix; to show one in a notebook, display ``fig``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..render import legend_outside, series_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .curvature import SpectralDensity
    from .jacobians import JacobianSpectrum

__all__ = [
    "plot_curvature",
    "plot_histograms",
    "plot_jacobian_singular_values",
    "plot_layer_stats",
    "plot_spectral_density",
    "subplots",
]

PathLike = str | os.PathLike[str]
_SUFFIXES = (".png", ".svg", ".pdf")


def subplots(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kwargs: Any
) -> tuple[Figure, Any]:
    """``(figure, axes)`` like ``pyplot.subplots``, without pyplot: no backend is selected and
    no global figure is kept, so nothing needs closing. ``kwargs`` go to ``Figure.subplots``
    (``sharex``, ``sharey``, ``squeeze``, ...).

    Examples:

    >>> fig, axes = subplots(1, 2, figsize=(6, 3))
    >>> type(fig).__name__, len(axes)
    ('Figure', 2)
    """
    from matplotlib.figure import Figure  # imported when a figure is made: 0.65 s that `import inertia` skips

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _save(fig: Figure, path: PathLike | None) -> Figure:
    """Lay out ``fig`` (room for a legend outside the axes) and write it to ``path`` if given."""
    target = None
    if path is not None:
        target = Path(path)
        if target.suffix.lower() not in _SUFFIXES:
            raise ValueError(f"figure path must end in {', '.join(_SUFFIXES)}, got {str(target)!r}")
    fig.tight_layout()
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target)
    return fig


def _layer_records(records: Sequence[dict]) -> list[dict]:
    """Flatten Monitor records (``{"layers": [...]}``) or LayerStats records into one list."""
    flat = []
    for r in records:
        if "layers" in r:
            flat.extend(r["layers"])
        elif "layer" in r:
            flat.append(r)
    return flat


def plot_layer_stats(
    records: Sequence[dict], kind: str = "activation", path: PathLike | None = None, title: str | None = None
) -> Figure:
    """Mean (line), std (band) and 98th percentile (dashed) of each layer's ``kind`` over steps
    (Glorot & Bengio 2010, Figures 2-4)."""
    flat = [r for r in _layer_records(records) if r["kind"] == kind]
    if not flat:
        raise ValueError(f"no {kind!r} layer records to plot")
    layers = list(dict.fromkeys(r["layer"] for r in flat))
    fig, ax = subplots(figsize=(7, 4))
    for i, layer in enumerate(layers):
        rs = sorted((r for r in flat if r["layer"] == layer), key=lambda r: r["step"])
        steps = [r["step"] for r in rs]
        mean = [float(r["mean"]) for r in rs]  # float(): a record read back from JSON has "nan" strings
        std = [float(r["std"]) for r in rs]
        style = series_style(i)
        color = style["color"]
        ax.plot(steps, mean, **style, label=f"{layer}")
        ax.fill_between(
            steps,
            [m - s for m, s in zip(mean, std, strict=False)],
            [m + s for m, s in zip(mean, std, strict=False)],
            color=color,
            alpha=0.15,
        )
        ax.plot(steps, [float(r["p98"]) for r in rs], color=color, ls="--", lw=0.6, alpha=0.8)
    ax.set_xlabel("update")
    ax.set_ylabel(f"{kind} (mean, ±std, 98th pct thin dashed)")
    ax.set_title(title or f"{kind} per layer")
    legend_outside(ax, "layer")
    return _save(fig, path)


def plot_histograms(
    records: Sequence[dict],
    kind: str = "activation",
    step: int | None = None,
    path: PathLike | None = None,
    title: str | None = None,
) -> Figure:
    """Normalized histogram of ``kind`` for each layer at ``step`` (default: the first recorded)
    (Glorot & Bengio 2010, Figures 6-7)."""
    flat = [r for r in _layer_records(records) if r["kind"] == kind and "hist" in r]
    if not flat:
        raise ValueError(f"no {kind!r} histograms to plot (record with histograms=True)")
    if step is None:
        step = min(r["step"] for r in flat)
    flat = [r for r in flat if r["step"] == step]
    if not flat:
        raise ValueError(f"no {kind!r} histograms at step {step}")
    fig, ax = subplots(figsize=(7, 4))
    for i, r in enumerate(flat):
        counts = r["hist"]
        lo, hi = r["hist_range"]
        width = (hi - lo) / len(counts)
        centres = [lo + (j + 0.5) * width for j in range(len(counts))]
        total = sum(counts) or 1
        ax.plot(centres, [c / total for c in counts], **series_style(i), label=r["layer"])
    ax.set_xlabel(kind)
    ax.set_ylabel("fraction of the layer's values")
    ax.set_title(title or f"{kind} histograms at update {step}")
    legend_outside(ax, "layer")
    return _save(fig, path)


def plot_jacobian_singular_values(
    spectra: Sequence[JacobianSpectrum], path: PathLike | None = None, title: str | None = None
) -> Figure:
    """Distribution of each layer Jacobian's singular values (from
    :func:`~inertia.diagnostics.layer_jacobian_singular_values`)."""
    if not spectra:
        raise ValueError("no Jacobian spectra to plot")
    fig, ax = subplots(figsize=(7, 4))
    data = [s.singular_values.reshape(-1).numpy() for s in spectra]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(spectra) + 1), [s.name for s in spectra])
    ax.plot(range(1, len(spectra) + 1), [s.mean for s in spectra], "o-", label="mean")
    ax.set_xlabel("layer")
    ax.set_ylabel("singular value")
    ax.set_title(title or "layer-to-layer Jacobian singular values")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_curvature(
    records: Sequence[dict],
    keys: Sequence[str] = ("hessian_frobenius_norm", "hessian_top_eigenvalue"),
    path: PathLike | None = None,
    title: str | None = None,
    loss_key: str | None = None,
) -> Figure:
    """Curvature quantities over training (log scale), with the loss on a second axis if
    ``loss_key`` names a field of the records."""
    present = [k for k in keys if any(k in r for r in records)]
    if not records or not present:
        raise ValueError(f"no records with any of {list(keys)} to plot")
    fig, ax = subplots(figsize=(7, 4))
    for i, k in enumerate(present):
        rs = [r for r in records if k in r]
        ax.plot([r["step"] for r in rs], [abs(float(r[k])) for r in rs], **series_style(i), label=k)
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("curvature")
    if loss_key and any(loss_key in r for r in records):
        ax2 = ax.twinx()
        rs = [r for r in records if loss_key in r]
        ax2.plot([r["step"] for r in rs], [float(r[loss_key]) for r in rs], color="k", ls=":", label=loss_key)
        ax2.set_ylabel(loss_key)
    ax.set_title(title or "curvature over training")
    if loss_key and any(loss_key in r for r in records):  # one legend for both axes
        ax.plot([], [], color="k", ls=":", label=loss_key)
    legend_outside(ax)
    return _save(fig, path)


def plot_spectral_density(
    density: SpectralDensity | None, path: PathLike | None = None, title: str | None = None
) -> Figure:
    """A :class:`~inertia.diagnostics.curvature.SpectralDensity` (log-scale density)."""
    if density is None or len(density.grid) == 0:
        raise ValueError("no spectral density to plot")
    fig, ax = subplots(figsize=(7, 4))
    ax.semilogy(density.grid.numpy(), density.density.clamp_min(1e-12).numpy())
    ax.set_xlabel("eigenvalue")
    ax.set_ylabel("density")
    ax.set_title(title or "Hessian spectral density (SLQ)")
    return _save(fig, path)
