"""A regression test of the doctor's accuracy: its verdicts on a stratified 30-case held-out subset
of the verdict benchmark (benchmarks/bench_doctor_verdicts.py) against the training outcomes that
benchmark measured and committed in docs/results/doctor_verdicts.json.

The outcomes are data (each is "trains" or "does not", measured by training the case; the command
is in docs/doctor.md); a slow test re-measures a few of them here to check they still hold."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_doctor_verdicts as bench  # noqa: E402
import doctor_cases  # noqa: E402

RESULTS = ROOT / "docs" / "results" / "doctor_verdicts.json"
ROWS = json.loads(RESULTS.read_text())["rows"]
CASES = {c.name: c for c in doctor_cases.all_cases()}
SUBSET = doctor_cases.regression_subset(ROWS)


def test_the_subset_is_thirty_held_out_cases_of_every_family():
    rows = {r["name"]: r for r in ROWS}
    assert len(SUBSET) == 30
    assert all(rows[n]["split"] == "held_out" for n in SUBSET)
    assert {rows[n]["family"] for n in SUBSET} == {r["family"] for r in ROWS}
    assert {rows[n]["trains"] for n in SUBSET} == {True, False}


def test_the_committed_outcomes_are_the_benchmark_cases():
    assert {r["name"] for r in ROWS} == set(CASES)
    assert len(CASES) >= 200


def test_the_doctor_agrees_with_training_on_at_least_90_percent_of_the_subset():
    truth = {r["name"]: r["trains"] for r in ROWS}
    verdicts = {n: bench.verdict(CASES[n]) for n in SUBSET}
    wrong = {n: v.get("crash") or v["codes"] for n, v in verdicts.items() if v["healthy"] != truth[n]}
    assert len(wrong) <= 3, f"the doctor disagrees with training on {len(wrong)} of 30: {wrong}"
    false_errors = [n for n, v in verdicts.items() if truth[n] and any(c.startswith("error:") for c in v["codes"])]
    assert not false_errors, f"error findings on cases that train: {false_errors}"


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBSET[::6])
def test_a_committed_outcome_is_what_training_gives_today(name):
    row = next(r for r in ROWS if r["name"] == name)
    got = bench.outcome(CASES[name])
    assert got["trains"] == row["trains"], (got, row)
