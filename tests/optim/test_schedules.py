"""Schedules: Sutskever et al.'s momentum schedule and the usual learning-rate shapes."""

import math
import pickle

import pytest

from inertia.optim import schedules as S


def test_sutskever_values_at_the_papers_steps():
    s = S.sutskever_momentum(0.999)
    got = [s(t) for t in (0, 249, 250, 500, 750, 1000)]
    assert got == pytest.approx([0.5, 0.5, 0.75, 0.833333, 0.875, 0.9], abs=1e-6)


def test_sutskever_formula_equals_one_minus_half_over_k_plus_one():
    s = S.sutskever_momentum(0.9999)
    for t in range(0, 20000, 137):
        assert s(t) == pytest.approx(min(1 - 1 / (2 * (t // 250 + 1)), 0.9999), abs=1e-15)


def test_sutskever_is_capped_at_mu_max():
    s = S.sutskever_momentum(0.9)
    assert s(10_000) == 0.9 and s(750) == 0.875


def test_mu_max_zero_is_plain_sgd_everywhere():
    s = S.sutskever_momentum(0.0, total_steps=2000)
    assert all(s(t) == 0.0 for t in range(0, 2000, 50))


def test_final_phase_drops_to_final_momentum_for_the_last_updates():
    s = S.sutskever_momentum(0.999, total_steps=5000, final_steps=1000)
    assert s(3999) > 0.9 and s(4000) == 0.9 and s(4999) == 0.9


def test_final_phase_never_raises_momentum_above_the_cap():
    s = S.sutskever_momentum(0.5, total_steps=5000, final_steps=1000)
    assert s(4500) == 0.5


def test_period_compresses_the_schedule():
    assert S.sutskever_momentum(0.99, period=10)(20) == pytest.approx(1 - 1 / 6)


@pytest.mark.parametrize(
    "sched,values",
    [
        (S.constant(0.3), {0: 0.3, 99: 0.3}),
        (S.step_decay(1.0, 0.5, every=10), {0: 1.0, 9: 1.0, 10: 0.5, 25: 0.25}),
        (S.exponential_decay(1.0, 0.5, decay_steps=10), {0: 1.0, 5: 2**-0.5, 20: 0.25}),
        (S.linear_warmup(1.0, 10), {0: 0.0, 5: 0.5, 10: 1.0, 50: 1.0}),
        (S.cosine(1.0, 100, final=0.1), {0: 1.0, 50: 0.55, 100: 0.1, 200: 0.1}),
        (
            S.join([S.constant(1.0), S.linear_warmup(2.0, 10), S.constant(3.0)], [5, 15]),
            {0: 1.0, 4: 1.0, 5: 0.0, 10: 1.0, 15: 3.0},
        ),
    ],
)
def test_schedule_values(sched, values):
    for t, v in values.items():
        assert sched(t) == pytest.approx(v, abs=1e-12), (t, sched(t), v)


def test_repr_is_readable_and_round_trips_through_pickle():
    s = S.sutskever_momentum(0.99, period=50)
    assert repr(s).startswith("sutskever_momentum(mu_max=0.99, period=50")
    assert pickle.loads(pickle.dumps(s)) == s


def test_registry_and_from_config():
    s = S.from_config({"name": "sutskever_momentum", "mu_max": 0.9})
    assert s == S.sutskever_momentum(0.9)
    assert S.from_config(0.5) == S.constant(0.5)
    with pytest.raises(ValueError, match=r"unknown schedule 'nope'; known: .*sutskever_momentum"):
        S.get("nope")


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: S.sutskever_momentum(1.0), r"mu_max must be a finite number in \[0, 1\), got 1.0"),
        (lambda: S.sutskever_momentum(0.9, period=0), r"period must be a positive integer, got 0"),
        (lambda: S.join([S.constant(1)], [3]), r"len\(boundaries\) == len\(schedules\) - 1"),
        (lambda: S.cosine(1.0, 0), r"total_steps must be a positive integer, got 0"),
    ],
)
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_negative_step_is_rejected():
    with pytest.raises(ValueError, match="step must be a non-negative integer, got -1"):
        S.constant(1.0)(-1)


def test_plot_writes_png_and_svg(tmp_path):
    for ext in ("png", "svg"):
        path = tmp_path / f"s.{ext}"
        S.plot(S.sutskever_momentum(0.99), 2000, path=path)
        assert path.stat().st_size > 1000


def test_plot_accepts_any_callable():
    fig = S.plot(lambda t: math.exp(-t / 100), 300)
    assert len(fig.axes[0].lines) == 1


def _boxes(fig):
    fig.canvas.draw()  # Agg canvas of a pyplot-free Figure: layout happens here
    r = fig.canvas.get_renderer()
    return r, fig.bbox, fig.axes[0].get_window_extent(r)


def test_the_readme_plot_keeps_its_description_inside_the_figure_and_off_the_curve():
    """`inertia schedules plot sutskever_momentum -p mu_max=0.999`: the long repr was a legend wider
    than the figure, clipped, over the y label."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = S.plot(S.sutskever_momentum(0.999), 5000)
    FigureCanvasAgg(fig)
    r, page, axes = _boxes(fig)
    title = fig.axes[0].title.get_window_extent(r)
    assert fig.axes[0].get_legend() is None
    assert page.x0 <= title.x0 and title.x1 <= page.x1 and title.y1 <= page.y1
    assert title.y0 >= axes.y1 - 1  # above the data area


def test_many_schedules_on_one_axes_get_a_legend_below_the_data_area():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for mu in (0.9, 0.99, 0.995, 0.999, 0.9995, 0.9999):
        S.plot(S.sutskever_momentum(mu), 1000, ax=ax)
    r, page, axes = _boxes(fig)
    legend = ax.get_legend().get_window_extent(r)
    assert legend.y1 <= axes.y0  # never over the curves
    assert len(ax.get_legend().get_texts()) == 6
