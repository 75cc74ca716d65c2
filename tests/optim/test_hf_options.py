"""hessian_free.options: the defaults are written once (HessianFree's signature reads them), and
every bad option is refused with inertia.validation's wording, by the optimizer and check_options alike."""

import inspect

import pytest
import torch

from inertia.optim import HessianFree
from inertia.optim import hessian_free as hf


def test_the_signature_defaults_are_the_options_defaults():
    sig = inspect.signature(HessianFree.__init__).parameters
    assert {k: p.default for k, p in sig.items() if k not in ("self", "params")} == dict(hf.DEFAULTS)


def test_defaults_are_martens_values():
    d = hf.DEFAULTS
    assert (d["cg_max_iter"], d["cg_init_decay"], d["preconditioner_exponent"], d["cg_tol"]) == (250, 0.95, 0.75, 5e-4)


def test_defaults_cannot_be_changed_by_accident():
    with pytest.raises(TypeError):
        hf.DEFAULTS["damping"] = 3.0


def test_the_training_loops_curvature_fraction_default_is_a_quarter():
    assert dict(hf.LOOP_DEFAULTS) == {"curvature_fraction": 0.25}


BAD = [
    ({"lr": 0.0}, r"lr must be a positive finite number, got 0.0"),
    ({"lr": float("nan")}, r"lr must be a positive finite number, got nan"),
    ({"damping": -1.0}, r"damping must be a non-negative finite number, got -1.0"),
    ({"cg_max_iter": 0}, r"cg_max_iter must be a positive integer, got 0"),
    ({"cg_max_iter": 2.5}, r"cg_max_iter must be a positive integer, got 2.5"),
    ({"cg_min_iter": 300}, r"cg_min_iter must be <= cg_max_iter, got 300 > 250"),
    ({"cg_init_decay": 1.5}, r"cg_init_decay must be a finite number in \[0, 1\], got 1.5"),
    ({"structural_damping": -0.1}, r"structural_damping must be a non-negative finite number, got -0.1"),
    ({"preconditioner": "jacobi"}, r"preconditioner must be one of \['martens', 'none', None\], got 'jacobi'"),
    ({"preconditioner_exponent": 2.0}, r"preconditioner_exponent must be a finite number in \[0, 1\], got 2.0"),
    ({"cg_tol": -1e-3}, r"cg_tol must be a non-negative finite number, got -0.001"),
    ({"backtracking": 1}, r"backtracking must be True or False, got 1"),
    ({"line_search": "yes"}, r"line_search must be True or False, got 'yes'"),
    ({"adapt_damping": None}, r"adapt_damping must be True or False, got None"),
    ({"damping_bounds": (1.0, 0.1)}, r"damping_bounds must be a pair \(low, high\) with 0 <= low <= high"),
    ({"damping_bounds": (0.0, float("nan"))}, r"damping_bounds must be a pair \(low, high\)"),
    ({"damping_bounds": 1.0}, r"damping_bounds must be a pair \(low, high\)"),
    ({"curvature": "fisher"}, r"curvature must be one of \['ggn', 'hessian'\], got 'fisher'"),
    ({"curvature": "hessian", "structural_damping": 0.3}, r"structural_damping needs curvature='ggn'"),
    ({"weight_decay": -1.0}, r"weight_decay must be a non-negative finite number, got -1.0"),
    ({"preconditioner_examples": 0}, r"preconditioner_examples must be a positive integer, got 0"),
]


@pytest.mark.parametrize("kwargs,match", BAD)
def test_the_optimizer_refuses_a_bad_option_naming_it_and_what_is_accepted(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HessianFree([torch.nn.Parameter(torch.zeros(3))], **kwargs)


@pytest.mark.parametrize("kwargs,match", BAD)
def test_check_options_refuses_what_the_optimizer_refuses(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HessianFree.check_options(**kwargs)


def test_check_options_names_the_unknown_ones_and_lists_the_accepted():
    with pytest.raises(ValueError, match=r"unknown HessianFree option\(s\) \['cg_iters'\]; accepted: .*cg_max_iter"):
        HessianFree.check_options(cg_iters=10)


def test_good_options_pass_and_a_list_of_bounds_is_a_pair():
    HessianFree.check_options(damping=45.0, cg_max_iter=100, preconditioner=None)
    assert hf.check_options(damping_bounds=[0.0, float("inf")]).damping_bounds == (0.0, float("inf"))
    opt = HessianFree([torch.nn.Parameter(torch.zeros(3))], damping_bounds=[1e-4, 1e4])
    assert opt.param_groups[0]["damping_bounds"] == (1e-4, 1e4)
