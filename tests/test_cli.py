"""The command line: real work on good input, one clear message and exit code 2 on bad input."""

import json

import pytest
from typer.testing import CliRunner

from inertia.cli import app

runner = CliRunner()


def test_init_report_prints_a_table_per_scheme_and_writes_json(tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["init-report", "20-10-5", "-s", "standard_uniform", "-s", "glorot_uniform",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "standard_uniform" in res.output and "glorot_uniform" in res.output
    rows = json.loads(out.read_text())["schemes"]["glorot_uniform"]
    assert [r["name"] for r in rows] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert rows[0]["fan_in"] == 20 and rows[0]["fan_out"] == 10


def test_init_report_unknown_scheme_exits_2_listing_known():
    res = runner.invoke(app, ["init-report", "20-10", "-s", "nope"])
    assert res.exit_code == 2
    assert "unknown init scheme 'nope'" in res.output and "glorot_uniform" in res.output


def test_init_report_bad_activation_exits_2():
    res = runner.invoke(app, ["init-report", "20-10-5", "--activation", "swishy"])
    assert res.exit_code == 2
    assert "unknown activation 'swishy'" in res.output


def test_init_report_factory_that_raises_exits_2(tmp_path, monkeypatch):
    (tmp_path / "badmod.py").write_text("def make():\n    raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["init-report", "badmod:make"])
    assert res.exit_code == 2
    assert "raised RuntimeError: boom" in res.output


def _write_config(tmp_path, **over):
    import yaml

    cfg = {"experiment": "cli", "data": {"name": "curves", "n": 100, "n_test": 20},
           "model": {"name": "deep_autoencoder", "sizes": [784, 16]}, "init": {"scheme": "glorot_uniform"},
           "optimizer": {"lr": 0.01, "momentum": 0.9}, "steps": 4, "batch_size": 50, "eval_every": 2}
    cfg.update(over)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_writes_a_run_folder(tmp_path):
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--out", str(tmp_path / "runs"),
                              "--run-id", "r1", "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "runs" / "cli" / "r1" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 4


@pytest.mark.parametrize("override,match", [
    ("optimizer.lr=-1", "optimizer.lr must be in [0, inf], got -1"),
    ("optimizer.momentum=1.0", "optimizer.momentum must be in [0, 1), got 1.0"),
    ("data.name=nope", "data.name: unknown name 'nope'"),
    ("stepz=3", "unknown config field(s) ['stepz']"),
    ("steps=abc", "steps must be an integer, got 'abc'"),
])
def test_run_bad_config_exits_2_with_one_message(tmp_path, override, match):
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--set", override, "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert match in res.output.replace("\n", " ")
    assert not (tmp_path / "cli").exists()  # nothing started


def test_schedules_plot_writes_a_file(tmp_path):
    res = runner.invoke(app, ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=0.99", "--steps", "1500",
                              "--out", str(tmp_path / "mu.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "mu.png").stat().st_size > 1000


def test_schedules_plot_bad_parameter_exits_2(tmp_path):
    res = runner.invoke(app, ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=2", "--out", str(tmp_path / "m.png")])
    assert res.exit_code == 2 and "mu_max must be in [0, 1), got 2" in res.output
