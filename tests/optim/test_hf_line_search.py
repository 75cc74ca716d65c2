"""hessian_free.line_search: the Armijo backtracking of Martens' code: the first alpha of
lr, 0.8 lr, 0.8^2 lr, ... with f(alpha) <= f0 + 0.01 alpha g^T p, else rejected after 60 shrinks."""

import math

import pytest

from inertia.optim import hessian_free as hf


def armijo_by_loop(f, f0, slope, alpha, c=1e-2, shrink=0.8, max_shrinks=60):
    """The rule written out: try alpha, shrink alpha, ..., at most max_shrinks shrinks."""
    for _ in range(max_shrinks + 1):
        if f(alpha) <= f0 + c * alpha * slope:
            return alpha
        alpha *= shrink
    return 0.0


@pytest.mark.parametrize("minimizer", [0.05, 0.3, 0.5, 0.9, 1.0, 2.0])
def test_line_search_takes_the_first_alpha_that_satisfies_the_armijo_condition(minimizer):
    def f(alpha):  # a parabola along p with f(0) = 1 and slope -2 m at 0
        return 1.0 + (alpha - minimizer) ** 2 - minimizer**2

    slope = -2.0 * minimizer
    res = hf.armijo_line_search(f, 1.0, slope, alpha=1.0)
    assert res.alpha == armijo_by_loop(f, 1.0, slope, 1.0)
    assert res.value == f(res.alpha) <= 1.0 + 1e-2 * res.alpha * slope
    assert not f(res.alpha / 0.8) <= 1.0 + 1e-2 * (res.alpha / 0.8) * slope or res.alpha == 1.0


def test_line_search_counts_its_evaluations_and_reuses_a_known_first_value():
    calls = []

    def f(alpha):
        calls.append(alpha)
        return (alpha - 0.3) ** 2

    res = hf.armijo_line_search(f, 0.09, -0.6, alpha=1.0)
    assert res.evaluations == len(calls) and calls[0] == 1.0
    calls.clear()
    again = hf.armijo_line_search(f, 0.09, -0.6, alpha=1.0, value=0.49)
    assert again.alpha == res.alpha and again.evaluations == len(calls) == res.evaluations - 1 and 1.0 not in calls


def test_line_search_rejects_the_step_after_the_maximum_number_of_shrinks():
    res = hf.armijo_line_search(lambda alpha: 2.0, 1.0, -1.0, max_shrinks=60)
    assert res == hf.LineSearchResult(alpha=0.0, value=1.0, evaluations=61)


def test_line_search_never_accepts_a_non_finite_value():
    def f(alpha):
        return math.nan if alpha > 0.5 else 1.0 - alpha

    res = hf.armijo_line_search(f, 1.0, -1.0)
    assert res.alpha == pytest.approx(0.8**4) and math.isfinite(res.value)


def test_line_search_without_descent_direction_shrinks_until_rejected():
    res = hf.armijo_line_search(lambda alpha: 1.0 + alpha, 1.0, 1.0, max_shrinks=3)
    assert res.alpha == 0.0 and res.evaluations == 4


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"alpha": 0.0}, r"alpha must be a positive finite number, got 0.0"),
        ({"shrink": 1.0}, r"shrink must be a finite number in \(0, 1\), got 1.0"),
        ({"max_shrinks": -1}, r"max_shrinks must be a non-negative integer, got -1"),
    ],
)
def test_line_search_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hf.armijo_line_search(lambda alpha: 0.0, 1.0, -1.0, **kwargs)
