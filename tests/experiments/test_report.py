"""Reports for runs and sweeps: Markdown and self-contained HTML with embedded figures."""

import re
import shutil

import pytest
from typer.testing import CliRunner

from inertia.cli import app
from inertia.experiments.config import Config
from inertia.experiments.report import write_report
from inertia.experiments.sweep import run_sweep
from inertia.experiments.train import train


def cfg(**over):
    c = Config(
        experiment="rep",
        data={"name": "curves", "n": 100, "n_test": 20},
        model={"name": "deep_autoencoder", "sizes": [784, 16]},
        init={"scheme": "glorot_uniform"},
        steps=6,
        batch_size=50,
        eval_every=3,
        monitor={"quantities": ["layer_stats", "hessian_trace"], "every": 3},
    )
    return c.replace(**over)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("r") / "run"
    train(cfg(), d)
    return d


def test_run_report_has_metrics_config_and_embedded_figures(run_dir):
    md, page = write_report(run_dir)
    text = page.read_text()
    assert "final metrics" in text and "train_loss" in text and "deep_autoencoder" in text
    assert len(re.findall(r"src='data:image/png;base64,[A-Za-z0-9+/=]{100,}'", text)) >= 3
    assert "completed" in md.read_text() and "](loss.png)" in md.read_text()


@pytest.mark.slow
def test_sweep_report_has_the_best_lr_table(tmp_path):
    res = run_sweep(
        cfg(monitor={"quantities": [], "every": 10}), {"optimizer.lr": [0.05, 0.001]}, out=tmp_path, name="s", workers=2
    )
    md, page = write_report(res.directory)
    assert "best learning rate per setting" in page.read_text() and "best_lr" in md.read_text()


def test_report_on_a_folder_that_is_neither_exits_2(tmp_path):
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "neither a run folder" in res.output


def test_tensorboard_events_are_written_when_the_extra_is_installed(run_dir):
    pytest.importorskip("tensorboard", reason="TensorBoard is the optional extra inertia[tensorboard]")
    from inertia.experiments.report import write_tensorboard

    out = write_tensorboard(run_dir)
    assert list(out.rglob("events.out.tfevents.*"))


def _copy_run(run_dir, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, content",
    [("summary.json", '{"status": "comp'), ("config.json", ""), ("metrics.jsonl", None), ("diagnostics.jsonl", None)],
)
def test_a_run_report_names_an_unreadable_file_and_shows_the_rest(run_dir, tmp_path, name, content):
    run = _copy_run(run_dir, tmp_path)
    if content is None:  # a garbage line in the middle of a JSON-lines file
        lines = (run / name).read_text().splitlines(keepends=True)
        content = lines[0] + "#garbage\n" + "".join(lines[1:])
    (run / name).write_text(content)
    res = CliRunner().invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    md = (run / "report.md").read_text()
    assert "unreadable files" in md and str(run / name) in md
    assert "deep_autoencoder" in md or name == "config.json"  # the readable parts are still shown


def test_a_run_report_with_an_unreadable_summary_has_status_unreadable(run_dir, tmp_path):
    run = _copy_run(run_dir, tmp_path)
    (run / "summary.json").write_text("{")
    md, _ = write_report(run)
    assert "| unreadable |" in md.read_text()


def test_a_failed_run_report_shows_the_failure_message(tmp_path):
    with pytest.raises(ValueError):
        train(cfg(stop_when="no_such_metric"), tmp_path / "run")
    md, page = write_report(tmp_path / "run")
    assert "| failed |" in md.read_text()
    assert "&#x27;no_such_metric&#x27; is not an evaluation metric" in page.read_text()
    assert "'no_such_metric' is not an evaluation metric" in md.read_text()


@pytest.mark.slow
def test_a_sweep_report_names_an_unreadable_trial_and_reports_the_others(tmp_path):
    res = run_sweep(
        cfg(monitor={"quantities": [], "every": 10}), {"optimizer.lr": [0.05, 0.001]}, out=tmp_path, name="s", workers=1
    )
    bad = res.directory / "trials" / res.trials[0]["id"] / "metrics.jsonl"
    bad.write_text("nonsense\n" + bad.read_text())
    md, _ = write_report(res.directory)
    text = md.read_text()
    assert f"{bad}: line 1 is not a JSON object" in text and res.trials[1]["id"] in text


@pytest.mark.slow
def test_a_truncated_results_json_is_a_clear_error_naming_it(tmp_path):
    res = run_sweep(
        cfg(monitor={"quantities": [], "every": 10}), {"optimizer.lr": [0.05]}, out=tmp_path, name="s", workers=1
    )
    (res.directory / "results.json").write_text('{"trials": [')
    out = CliRunner().invoke(app, ["report", str(res.directory)])
    assert out.exit_code == 2 and "results.json: not valid JSON" in out.output


@pytest.mark.slow
def test_a_report_of_listed_configs_shows_them_in_place_of_a_grid(tmp_path):
    from inertia.experiments.sweep import run_configs

    res = run_configs({"plain": cfg(monitor={"quantities": [], "every": 10})}, out=tmp_path, name="c", workers=1)
    md, _ = write_report(res.directory)
    assert "deep_autoencoder" in md.read_text()
