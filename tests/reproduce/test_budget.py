"""--budget: one factor cuts every cuttable update count to fit, never below its floor; the report
says what was cut beside every table; bad budgets are refused before any work."""

import json

import pytest
from typer.testing import CliRunner

from inertia import reproduce
from inertia.cli import app
from inertia.reproduce import glorot2010, hu2020, sutskever2013
from inertia.reproduce.budget import apply_budget, check_budget
from inertia.reproduce.claims import PaperResult, write_report

runner = CliRunner()


@pytest.mark.parametrize("module", [sutskever2013, glorot2010, hu2020])
def test_a_budget_scales_the_full_protocol_to_fit_and_names_every_cut_count(module):
    full = module.SIZES["full"]
    estimate = module.BUDGET.hours(full)
    assert estimate > 1  # the full protocols take hours on the reference CPU
    sizes, cut = apply_budget(full, module.BUDGET, estimate / 10)
    assert cut.factor == pytest.approx(0.1)
    for name, floor in module.BUDGET.floors.items():
        used, paper = cut.counts[name]
        assert paper == getattr(full, name) and used == getattr(sizes, name)
        assert used == max(min(paper, floor), int(paper * 0.1))
    note = cut.note()
    assert "fewer than the paper used" in note and f"{cut.counts[next(iter(cut.counts))][1]:,}" in note
    # the estimate is linear in the cut counts, so the cut protocol fits the budget (floors aside)
    assert module.BUDGET.hours(sizes) <= estimate / 10 * 1.01 or any(
        cut.counts[n][0] == min(cut.counts[n][1], f) for n, f in module.BUDGET.floors.items()
    )


def test_a_budget_larger_than_the_protocol_cuts_nothing():
    sizes, cut = apply_budget(hu2020.SIZES["full"], hu2020.BUDGET, 1e9)
    assert sizes == hu2020.SIZES["full"] and not cut.cut and cut.note() == ""


def test_the_sutskever_autoencoder_keeps_room_for_its_final_phase():
    sizes, _ = apply_budget(sutskever2013.SIZES["full"], sutskever2013.BUDGET, 1e-6)
    assert sizes.ae_steps >= 2 * sizes.final_steps


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_check_budget_refuses_what_is_not_a_positive_number_of_hours(bad):
    with pytest.raises(ValueError, match="--budget"):
        check_budget(bad)


def test_the_report_says_what_was_cut_beside_every_table(tmp_path):
    r = PaperResult("p", "T", "full", tables={"a": [{"x": 1}], "b": [{"y": 2}]}, cut="Cut to a budget of 1 h: X.")
    write_report([r], tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert md.count("Cut to a budget of 1 h") == 3  # the setting line and both tables
    assert json.loads((tmp_path / "results.json").read_text())[0]["cut"] == r.cut


@pytest.mark.parametrize(
    "args,match",
    [
        (["hu2020", "--full", "--budget", "0"], "--budget must be"),
        (["hu2020", "--full", "--budget", "-1"], "--budget must be"),
        (["hu2020", "--quick", "--budget", "1"], "--budget applies to --full only"),
        (["nope", "--full"], "unknown paper 'nope'; accepted: all, sutskever2013"),
        (["hu2020", "--full", "--device", "cuda:7"], "CUDA"),
    ],
)
def test_bad_reproduce_options_are_one_error_line_and_exit_2(tmp_path, args, match):
    res = runner.invoke(app, ["reproduce", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert match in res.output and "Traceback" not in res.output
    assert not any(tmp_path.iterdir())


def test_the_library_refuses_a_budget_for_quick_runs():
    with pytest.raises(ValueError, match="--full only"):
        reproduce.run("hu2020", quick=True, budget_hours=1.0)
