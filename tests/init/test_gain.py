"""gain(): g with g^2 E[phi(z)^2] = 1 for z ~ N(0, 1), accurate to 1e-4 even for kinked phi."""

import doctest
import math
import re
import sys

import numpy as np
import pytest
import torch

import inertia.init as I


def brute_force_gain(fn):
    # Dense trapezoid rule on [-12, 12] with the kink at 0 on a grid point.
    z = np.linspace(-12, 12, 2_400_001)
    f = fn(torch.from_numpy(z)).numpy()
    m2 = np.trapezoid(f * f * np.exp(-z * z / 2) / np.sqrt(2 * np.pi), z)
    return 1 / math.sqrt(m2)


def test_closed_forms():
    assert I.gain("linear") == pytest.approx(1.0, abs=1e-10)
    assert I.gain("relu") == pytest.approx(math.sqrt(2), abs=1e-10)
    assert I.gain("leaky_relu", negative_slope=0.2) == pytest.approx(math.sqrt(2 / (1 + 0.04)), abs=1e-10)
    assert I.gain("selu") == pytest.approx(1.0, abs=1e-6)  # SELU preserves the second moment


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softsign", "elu", "gelu", "silu", "softplus", "relu6"])
def test_named_gain_matches_brute_force_integration(name):
    assert I.gain(name) == pytest.approx(brute_force_gain(I.activation_fn(name)), abs=1e-4)


def test_callable_gives_the_same_gain_as_its_name():
    assert I.gain(lambda x: torch.relu(x)) == pytest.approx(I.gain("relu"), abs=1e-9)


def test_torch_convention_is_torchs_table():
    assert I.gain("tanh", convention="torch") == pytest.approx(5 / 3)
    assert I.gain("selu", convention="torch") == pytest.approx(0.75)
    assert I.gain("leaky_relu", convention="torch", negative_slope=0.1) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.1)
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'swishy'; known: .*relu.*tanh"):
        I.gain("swishy")


def test_unknown_convention_is_rejected():
    with pytest.raises(ValueError, match="convention must be 'second_moment' or 'torch', got 'keras'"):
        I.gain("relu", convention="keras")


@pytest.mark.parametrize("value", [True, [0.1], "0.1", float("nan"), float("inf")])
def test_activation_parameter_must_be_a_finite_number(value):
    with pytest.raises(ValueError, match=rf"negative_slope must be a finite number, got {re.escape(repr(value))}"):
        I.gain("leaky_relu", negative_slope=value)


def test_torch_convention_checks_the_parameter_too():
    with pytest.raises(ValueError, match="negative_slope must be a finite number, got True"):
        I.gain("leaky_relu", convention="torch", negative_slope=True)


@pytest.mark.parametrize("convention", ["second_moment", "torch"])
def test_a_parameter_the_activation_does_not_take_lists_the_accepted_ones(convention):
    with pytest.raises(ValueError, match=r"does not take parameters \['slope'\]; accepted: \['negative_slope'\]"):
        I.gain("leaky_relu", convention=convention, slope=0.1)


def test_parameters_with_a_callable_are_refused():
    with pytest.raises(ValueError, match=r"parameters \['negative_slope'\] apply only to named activations"):
        I.gain(torch.relu, negative_slope=0.1)


@pytest.mark.parametrize(
    "name", ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
)
def test_convolutions_transposed_or_not_are_linear_in_both_conventions(name):
    assert torch.nn.init.calculate_gain(name) == 1
    assert I.gain(name) == pytest.approx(1.0, abs=1e-10)
    assert I.gain(name, convention="torch") == 1.0


def test_docstring_examples_hold():
    results = doctest.testmod(sys.modules["inertia.init.gain"])
    assert results.attempted > 0 and results.failed == 0
