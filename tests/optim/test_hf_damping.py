"""hessian_free.damping: the Levenberg-Marquardt rule of Martens (2010) section 4.1 on rho values,
its bounds, and the reduction ratio rho itself."""

import math

import pytest

from inertia.optim import hessian_free as hf


@pytest.mark.parametrize(
    "rho,factor",
    [
        (-math.inf, 3 / 2),
        (float("nan"), 3 / 2),
        (-2.0, 3 / 2),
        (0.1, 3 / 2),
        (0.2499, 3 / 2),
        (0.25, 1.0),
        (0.5, 1.0),
        (0.75, 1.0),
        (0.7501, 2 / 3),
        (3.0, 2 / 3),
        (math.inf, 2 / 3),
    ],
)
def test_damping_grows_by_3_2_below_a_quarter_shrinks_by_2_3_above_three_quarters(rho, factor):
    assert hf.adapt_damping(2.0, rho) == pytest.approx(2.0 * factor, rel=1e-15)


def test_damping_is_clamped_to_its_bounds():
    assert hf.adapt_damping(1.0, -1.0, bounds=(0.0, 1.2)) == 1.2
    assert hf.adapt_damping(1.0, 1.0, bounds=(0.9, 10.0)) == 0.9


def test_reduction_ratio_is_the_actual_over_the_predicted_change():
    assert hf.reduction_ratio(f_old=2.0, f_new=1.25, model_change=-1.0) == 0.75


def test_reduction_ratio_is_minus_infinity_when_the_step_raised_f():
    assert hf.reduction_ratio(f_old=2.0, f_new=2.5, model_change=-1.0) == -math.inf


@pytest.mark.parametrize("model_change", [0.0, 0.3])
def test_reduction_ratio_is_nan_when_the_model_predicts_no_decrease(model_change):
    assert math.isnan(hf.reduction_ratio(f_old=2.0, f_new=1.0, model_change=model_change))
