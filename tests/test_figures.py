"""Every figure kind with many series: the legend stays inside the figure and off the axes' data
area, and no two series share a style (matplotlib's cycle has 10 colours)."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from inertia import render
from inertia.diagnostics import plots
from inertia.experiments.report import _curves_figure

LAYERS = [f"blocks.{i}.conv" for i in range(20)]


def layer_records(kind="activation"):
    out = []
    for step in (0, 10, 20):
        for i, name in enumerate(LAYERS):
            out.append(
                {
                    "layer": name,
                    "kind": kind,
                    "step": step,
                    "mean": 0.1 * i,
                    "std": 0.05,
                    "p98": 0.1 * i + 0.1,
                    "hist": [1, 3, 5, 3, 1],
                    "hist_range": [-1.0, 1.0],
                }
            )
    return [{"step": s, "layers": [r for r in out if r["step"] == s]} for s in (0, 10, 20)]


def boxes(fig):
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return ax.get_legend().get_window_extent(r), ax.get_window_extent(r), fig.bbox


def check_legend(fig, entries):
    legend, axes, page = boxes(fig)
    assert page.x0 - 1 <= legend.x0 and legend.x1 <= page.x1 + 1, (legend, page)  # inside the figure
    assert page.y0 - 1 <= legend.y0 and legend.y1 <= page.y1 + 1, (legend, page)
    assert legend.x0 >= axes.x1 or legend.y1 <= axes.y0 or legend.y0 >= axes.y1, (legend, axes)  # off the data
    assert len(fig.axes[0].get_legend().get_texts()) == entries


def styles(ax):
    return [(line.get_color(), line.get_linestyle()) for line in ax.get_lines() if not line.get_label().startswith("_")]


def test_series_styles_are_distinct_up_to_40():
    assert len({tuple(render.series_style(i).values()) for i in range(40)}) == 40


@pytest.mark.parametrize("make", [plots.plot_layer_stats, plots.plot_histograms], ids=["layer_stats", "histograms"])
def test_per_layer_figures_with_20_layers(make):
    fig = make(layer_records())
    check_legend(fig, 20)
    assert len(set(styles(fig.axes[0]))) == 20


def test_curvature_figure_with_the_loss_on_a_second_axis():
    recs = [
        {"step": s, "hessian_frobenius_norm": 1 + s, "hessian_top_eigenvalue": 2 + s, "loss": 1 / (1 + s)}
        for s in range(5)
    ]
    fig = plots.plot_curvature(recs, loss_key="loss")
    check_legend(fig, 3)


def test_a_sweep_figure_with_12_trials():
    runs = [(lr, seed) for lr in (0.1, 0.03, 0.01, 0.003) for seed in range(3)]
    series = {f"lr={lr:g}, seed={s}": ([0, 1, 2], [1.0, 0.5 + 0.01 * k, 0.2]) for k, (lr, s) in enumerate(runs)}
    fig = _curves_figure(series, "train loss", "loss")
    check_legend(fig, 12)
    assert len(set(styles(fig.axes[0]))) == 12
