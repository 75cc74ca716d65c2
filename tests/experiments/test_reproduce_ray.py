"""``inertia reproduce --backend ray``: a paper's training pools run as Ray trials and decide the
same claims with the same measurements as the local pool (the command line's ``--backend ray`` is
``default_backend("ray")`` around ``reproduce.run``; tests/test_cli.py covers the option itself)."""

import pytest

from inertia import reproduce
from inertia.experiments.sweep import default_backend

pytest.importorskip("ray.tune", reason="Ray is in the dev extra; install inertia[dev] or inertia[ray]")
pytestmark = pytest.mark.slow


def _claims(results):
    return [(c.statement, c.measured, c.passed) for r in results for c in r.claims]


def test_a_reproduction_on_ray_decides_what_the_local_pool_decides(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("INERTIA_CACHE", str(tmp_path / "cache"))
    local = reproduce.run("temperoni2020", out=tmp_path / "local", smoke=True)
    capfd.readouterr()
    with default_backend("ray"):
        ray = reproduce.run("temperoni2020", out=tmp_path / "ray", smoke=True)
    printed = capfd.readouterr().out
    assert _claims(ray) == _claims(local) and len(_claims(ray)) == 4
    assert (tmp_path / "ray" / "temperoni2020" / "sweep-smoke" / "ray" / "tune").is_dir()  # the pool went through Tune
    assert "Number of trials" not in printed  # Tune's own tables went to its log
    assert (
        "Number of trials"
        in (tmp_path / "ray" / "temperoni2020" / "sweep-smoke" / "ray" / "tune-output.log").read_text()
    )


def test_the_command_lines_backend_ray_runs_the_papers_pools_under_the_ray_backend(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from inertia.cli import app
    from inertia.experiments import sweep

    seen = []

    def fake_run(paper, **kwargs):  # what the pools would see: the backend in force while the paper runs
        seen.append((paper, sweep._DEFAULT_BACKEND.get()[0], kwargs["quick"]))
        return []

    monkeypatch.setattr(reproduce, "run", fake_run)
    res = CliRunner().invoke(
        app, ["reproduce", "temperoni2020", "--quick", "--quiet", "--backend", "ray", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert seen == [("temperoni2020", "ray", True)]
    assert sweep._DEFAULT_BACKEND.get()[0] == "local"  # and only while it runs
