"""Each paper's quick path at smoke size: every claim decided, every file written."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from inertia import reproduce
from inertia.cli import app
from inertia.reproduce import momentum


@pytest.mark.slow
def test_momentum_smoke_decides_every_claim_and_writes_every_file(tmp_path):
    results = reproduce.run("momentum", out=tmp_path, smoke=True)
    assert [r.paper for r in results] == ["momentum"]
    data = json.loads((tmp_path / "results.json").read_text())
    claims = data[0]["claims"]
    assert len(claims) == 5 and all(c["verdict"] in ("PASS", "FAIL") for c in claims)
    for f in data[0]["figures"]:
        assert (tmp_path / "momentum" / f["path"].split("/")[-1]).stat().st_size > 1000
    html = (tmp_path / "report.html").read_text()
    assert html.index("claims pass") < html.index("<figure>")  # the claims table comes first
    assert "data:image/png;base64," in html and (tmp_path / "report.md").exists()


def test_iteration_matrix_spectral_radius_is_the_known_rate():
    # GD (mu = 0) on curvature lam with lr: the rate is |1 - lam lr|
    for g in (0.1, 0.5, 1.5):
        assert momentum.convergence_factor(g, 0.0, False) == pytest.approx(abs(1 - g))
    # heavy ball at its optimum: rate sqrt(mu) when lam lr lies in the complex-eigenvalue band
    assert momentum.convergence_factor(1.0, 0.81, False) == pytest.approx(0.9)


def test_nag_matrix_is_cm_with_effective_momentum():
    for g, mu in ((0.3, 0.9), (0.8, 0.99)):
        np.testing.assert_allclose(
            momentum.iteration_matrix(g, mu, True), momentum.iteration_matrix(g, mu * (1 - g), False)
        )


def test_unknown_paper_or_device_exits_2_and_names_what_is_accepted():
    res = CliRunner().invoke(app, ["reproduce", "glorot2011"])
    assert res.exit_code == 2 and "glorot2011" in res.output and "available: all" in res.output
    res = CliRunner().invoke(app, ["reproduce", "momentum", "--device", "tpu"])
    assert res.exit_code == 2 and "'tpu'" in res.output


def test_all_papers_are_registered():
    assert set(reproduce.PAPERS) <= set(reproduce.ALL_PAPERS) and "momentum" in reproduce.PAPERS


@pytest.mark.slow
def test_temperoni2020_smoke_decides_every_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("INERTIA_CACHE", str(tmp_path / "cache"))
    (r,) = reproduce.run("temperoni2020", out=tmp_path, smoke=True)
    assert len(r.claims) == 4 and all(isinstance(c.passed, bool) for c in r.claims)
    assert r.figures[0].path.stat().st_size > 1000
    rows = r.tables["first-layer Hessian norm at init and the result of training"]
    assert [row["init"] for row in rows][:2] == ["std 1e-5", "std 0.01"]
    assert rows[0]["first-layer Hessian norm at init"] < rows[1]["first-layer Hessian norm at init"]
