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
    assert res.exit_code == 2 and "glorot2011" in res.output and "accepted: all" in res.output
    res = CliRunner().invoke(app, ["reproduce", "momentum", "--device", "tpu"])
    assert res.exit_code == 2 and "'tpu'" in res.output


def test_every_paper_has_its_module_with_a_run_function():
    import importlib

    assert reproduce.PAPERS == ("sutskever2013", "glorot2010", "hu2020", "temperoni2020", "momentum")
    for p in reproduce.PAPERS:
        assert callable(importlib.import_module(f"inertia.reproduce.{p}").run)


@pytest.mark.slow
def test_temperoni2020_smoke_decides_every_claim(tmp_path, monkeypatch):
    monkeypatch.setenv("INERTIA_CACHE", str(tmp_path / "cache"))
    (r,) = reproduce.run("temperoni2020", out=tmp_path, smoke=True)
    assert len(r.claims) == 4 and all(isinstance(c.passed, bool) for c in r.claims)
    assert r.figures[0].path.stat().st_size > 1000
    rows = r.tables["first-layer Hessian norm at init and the result of training"]
    assert [row["init"] for row in rows][:2] == ["std 1e-5", "std 0.01"]
    assert rows[0]["first-layer Hessian norm at init"] < rows[1]["first-layer Hessian norm at init"]


@pytest.mark.parametrize("paper", reproduce.PAPERS)
def test_each_paper_has_one_frozen_sizes_record_per_mode(paper):
    import dataclasses
    import importlib

    module = importlib.import_module(f"inertia.reproduce.{paper}")
    assert set(module.SIZES) == {"smoke", "quick", "full"}
    for sizes in module.SIZES.values():
        assert isinstance(sizes, module.Sizes) and module.Sizes.__dataclass_params__.frozen
        with pytest.raises(dataclasses.FrozenInstanceError):
            sizes.__setattr__(dataclasses.fields(sizes)[0].name, None)


def test_the_quick_sizes_are_the_ones_the_claims_were_fixed_for():
    from inertia.reproduce import glorot2010, hu2020, sutskever2013, temperoni2020

    s = sutskever2013.SIZES["quick"]
    assert (s.ae_sizes, s.ae_images, s.ae_steps, s.ae_period, s.final_steps) == (
        [784, 200, 100, 50, 25, 6],
        10_000,
        1000,
        5,
        100,
    )
    assert (s.addition_t, s.addition_hidden, s.addition_steps, s.memorization_t, s.memorization_steps) == (
        40,
        50,
        3000,
        15,
        2000,
    )
    assert (s.hf_ae_steps, s.hf_addition_steps, s.rnn_seeds, s.sparse_scales) == (24, 20, 3, [0.25, 0.5, 1.0, 2.0])
    g = glorot2010.SIZES["quick"]
    assert (g.width, g.steps, g.n, g.init_width, g.init_examples, g.jacobian_examples) == (
        200,
        18_000,
        10_000,
        500,
        300,
        8,
    )
    h = hu2020.SIZES["quick"]
    assert (h.widths, h.depths, h.steps) == ([32, 64, 128, 256], [2, 4, 8, 16, 32, 64, 128, 256], 100)
    t = temperoni2020.SIZES["quick"]
    assert (t.steps, t.n_train, t.n_test, t.seeds) == (1000, 4000, 1000, 3)
    m = momentum.SIZES["quick"]
    assert (len(m.lrs), m.mus, m.max_steps, m.target, m.rosenbrock_steps) == (
        13,
        [0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99],
        3000,
        1e-8,
        1000,
    )


def test_the_reproduction_report_escapes_claims_and_tables_and_embeds_figures(tmp_path):
    from matplotlib.figure import Figure as MplFigure

    from inertia.render import save_figure
    from inertia.reproduce import Claim, Figure, PaperResult, write_report

    fig = MplFigure(figsize=(2, 2))
    fig.subplots().plot([1, 2])
    png = save_figure(fig, tmp_path / "p" / "f.png")
    r = PaperResult("p", "a <b> title", "quick")
    r.claims.append(Claim("x < y | z", 0.123456, "<script>", True, None))
    r.tables["t <1>"] = [{"a|b": [0.5, None]}]
    r.figures.append(Figure(png, "caption 'quoted'"))
    _, md, page = write_report([r], tmp_path)
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text and "<h3>t &lt;1&gt;</h3>" in text
    assert text.index("1 of 1 claims pass.") < text.index("<h2>p: a &lt;b&gt; title</h2>") < text.index("<figure>")
    assert "alt='caption &#x27;quoted&#x27;'" in text and "data:image/png;base64," in text
    md_text = md.read_text()
    assert "| p | x < y \\| z | 0.1235 | - | <script> | PASS |" in md_text
    assert "| a\\|b |" in md_text and "| 0.5, - |" in md_text and "![caption 'quoted'](p/f.png)" in md_text
