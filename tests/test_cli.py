"""The command line: real work on good input, one clear message and exit code 2 on bad input."""

import json

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
