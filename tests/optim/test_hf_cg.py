"""hessian_free.cg: preconditioned CG against a dense solve, Martens' relative-progress rule against a
plain loop of his formula, the kept iterations, and backtracking against its definition."""

import itertools
import math

import pytest
import torch

from inertia.optim import hessian_free as hf


def spd(dim, cond, seed=0):
    """A random symmetric positive definite matrix with condition number ``cond``, and a b."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    lam = torch.logspace(0, math.log10(cond), dim, dtype=torch.float64)
    return q @ torch.diag(lam) @ q.T, torch.randn(dim, generator=g, dtype=torch.float64)


def martens_rule(phi, i, tol):
    """Martens (2010) section 4.4, written out: k = max(10, ceil(0.1 i)); stop when i > k,
    phi_i < 0 and (phi_i - phi_{i-k}) / phi_i < k tol."""
    k = max(10, math.ceil(0.1 * i))
    if i <= k or not phi[i] < 0:
        return False
    return (phi[i] - phi[i - k]) / phi[i] < k * tol


def plain_cg_values(a, b, n):
    """phi(x_i) = 1/2 x_i^T A x_i - b^T x_i for i = 0..n of textbook CG from 0, by the dense formula."""
    x, r = torch.zeros_like(b), b.clone()  # r = b - A x
    p, values = r.clone(), [0.0]
    for _ in range(n):
        ap = a @ p
        alpha = (r @ r) / (p @ ap)
        x = x + alpha * p
        r_new = r - alpha * ap
        p = r_new + (r_new @ r_new) / (r @ r) * p
        r = r_new
        values.append(float(0.5 * x @ a @ x - b @ x))
    return values


@pytest.mark.parametrize("preconditioned,warm", [(False, False), (True, False), (True, True)])
def test_cg_solves_an_spd_system_like_a_dense_solve(preconditioned, warm):
    a, b = spd(40, 1e3, seed=3)
    exact = torch.linalg.solve(a, b)
    precond = a.diagonal() ** -0.75 if preconditioned else None
    x0 = torch.full_like(b, 0.1) if warm else None
    res = hf.conjugate_gradient(lambda v: a @ v, b, x0, precond_inv=precond, max_iter=400, tol=0.0)
    torch.testing.assert_close(res.x, exact, rtol=1e-8, atol=1e-10)
    assert res.reason != "max_iter"  # converged, or no progress left to rounding (tol = 0)
    assert res.values[-1] == pytest.approx(-0.5 * float(b @ exact), rel=1e-12)  # phi* = -1/2 b^T A^{-1} b


def test_cg_counts_a_warm_start_as_one_more_product():
    a, b = spd(10, 10.0, seed=1)
    calls = []

    def apply_a(v):
        calls.append(1)
        return a @ v

    cold = hf.conjugate_gradient(apply_a, b, max_iter=5, tol=0.0)
    assert cold.products == cold.iterations == len(calls) == 5
    calls.clear()
    warm = hf.conjugate_gradient(apply_a, b, torch.ones_like(b), max_iter=5, tol=0.0)
    assert warm.products == warm.iterations + 1 == len(calls) == 6


def test_cg_values_are_phi_of_its_iterates():
    a, b = spd(30, 1e3, seed=5)
    res = hf.conjugate_gradient(lambda v: a @ v, b, max_iter=20, tol=0.0)
    assert res.values == pytest.approx(plain_cg_values(a, b, 20), rel=1e-9, abs=1e-12)
    for it in res.iterates:
        assert it.value == pytest.approx(float(0.5 * it.x @ a @ it.x - b @ it.x), rel=1e-9)


def test_cg_stops_at_the_first_iteration_where_martens_rule_holds():
    a, b = spd(200, 1e4, seed=4)
    tol = 5e-4
    res = hf.conjugate_gradient(lambda v: a @ v, b, max_iter=500, tol=tol)
    phi = plain_cg_values(a, b, 500)
    first = next(i for i in range(1, 501) if martens_rule(phi, i, tol))
    assert res.reason == "progress" and res.iterations == first


def test_relative_progress_stop_is_martens_formula():
    g = torch.Generator().manual_seed(0)
    phi = [0.0] + (-torch.rand(80, generator=g, dtype=torch.float64).cumsum(0)).tolist()  # decreasing
    phi[40] = 0.5  # a positive value: the rule never stops there
    for i, tol in itertools.product(range(1, 81), (5e-4, 1e-2, 0.1)):
        assert hf.relative_progress_stop(phi, i, tol) == martens_rule(phi, i, tol), (i, tol)


def test_cg_respects_min_iter_before_the_rule_may_stop_it():
    a, b = spd(200, 1e4, seed=4)
    free = hf.conjugate_gradient(lambda v: a @ v, b, max_iter=500, tol=5e-4)
    held = hf.conjugate_gradient(lambda v: a @ v, b, max_iter=500, min_iter=free.iterations + 7, tol=5e-4)
    assert held.iterations == free.iterations + 7 and held.reason == "progress"


def test_cg_stops_at_negative_curvature():
    a = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    res = hf.conjugate_gradient(lambda v: a @ v, torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert res.reason == "negative_curvature"


def test_cg_keeps_the_iterates_at_the_backtracking_iterations_and_the_last():
    a, b = spd(200, 1e4, seed=4)
    res = hf.conjugate_gradient(lambda v: a @ v, b, max_iter=500, tol=5e-4)
    kept = [1]
    while kept[-1] < res.iterations:
        kept.append(hf.next_kept_iteration(kept[-1]))
    expected = [k for k in kept if k < res.iterations] + [res.iterations]
    assert [it.iteration for it in res.iterates] == expected
    assert expected[:8] == [1, 2, 3, 4, 6, 8, 11, 15]


@pytest.mark.parametrize("kept", range(1, 60))
def test_next_kept_iteration_is_the_ceiling_of_gap_times_the_last_and_always_later(kept):
    assert hf.next_kept_iteration(kept) == max(math.ceil(1.3 * kept), kept + 1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"max_iter": -1}, r"max_iter must be a non-negative integer, got -1"),
        ({"tol": -1.0}, r"tol must be a non-negative finite number, got -1.0"),
        ({"gap": 1.0}, r"gap must be a finite number > 1, got 1.0"),
        ({"precond_inv": torch.ones(3)}, r"precond_inv must be a tensor shaped like b \(4,\)"),
    ],
)
def test_cg_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hf.conjugate_gradient(lambda v: v, torch.ones(4), **kwargs)


# -- backtracking ------------------------------------------------------------------------------------------
def chosen_by_definition(values):
    """Section 4.6 written out: the earliest j such that f strictly decreases from the last iterate
    back to j (values[j] < values[j+1] < ... < values[-1])."""
    j = len(values) - 1
    while j > 0 and values[j - 1] < values[j]:
        j -= 1
    return j


def iterates_with(values):
    return [hf.Iterate(10 * k + 1, torch.tensor(float(k)), 0.0) for k in range(len(values))]


@pytest.mark.parametrize(
    "values,chosen",
    [
        ([5.0, 3.0, 2.0, 4.0, 6.0], 2),  # f fell going back to the third iterate, then rose
        ([1.0, 2.0, 3.0], 0),  # every earlier iterate is better: the first
        ([3.0, 2.0, 1.0], 2),  # the last is best: no going back
        ([2.0, 2.0, 2.0], 2),  # ties do not move it back
    ],
)
def test_backtrack_picks_the_earliest_iterate_of_the_decreasing_run_from_the_last(values, chosen):
    choice = hf.backtrack(iterates_with(values), lambda x: values[int(x)])
    assert choice.iteration == 10 * chosen + 1 and choice.value == values[chosen]
    assert int(choice.step) == chosen


def test_backtrack_agrees_with_its_definition_on_random_values():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        values = torch.randint(0, 6, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).double().tolist()
        choice = hf.backtrack(iterates_with(values), lambda x, v=values: v[int(x)])
        assert int(choice.step) == chosen_by_definition(values), values


def test_backtrack_evaluates_back_only_until_f_rises():
    values, seen = [5.0, 3.0, 2.0, 4.0, 6.0], []

    def objective(x):
        seen.append(int(x))
        return values[int(x)]

    hf.backtrack(iterates_with(values), objective)
    assert seen == [4, 3, 2, 1]  # iterate 0 is never evaluated
    seen.clear()
    hf.backtrack(iterates_with(values)[-1:], objective)  # only the last: no backtracking
    assert seen == [4]
