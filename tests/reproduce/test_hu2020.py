"""hu2020: the smoke run decides every claim and writes every file; the step size, the rescaled
model's GD step, the spectra at init and the boundary fit."""

import json
import math

import pytest
import torch

from inertia import reproduce
from inertia.data import deep_linear_regression
from inertia.experiments import components
from inertia.reproduce import hu2020 as H


@pytest.mark.slow
def test_smoke_decides_every_claim_and_writes_every_file(tmp_path):
    (r,) = reproduce.run("hu2020", out=tmp_path, smoke=True)
    assert len(r.claims) == 3 and all(isinstance(c.passed, bool) for c in r.claims)
    assert all(c.measured and c.test for c in r.claims)
    for f in r.figures:
        assert f.path.parent == tmp_path / "hu2020" and f.path.stat().st_size > 1000
    for name in ("report.md", "report.html", "results.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(json.loads((tmp_path / "results.json").read_text())[0]["claims"]) == 3
    cfg = H.get_config(True, smoke=True)
    grid = r.tables["orthogonal init: log10(final loss / initial loss) (rows: width, columns: depth)"]
    assert [row["width"] for row in grid] == cfg["widths"]
    assert list(grid[0])[1:] == [f"L={L}" for L in cfg["depths"]]
    # depth 2 at the largest smoke width converges for both inits (a well-conditioned shallow net)
    assert grid[-1]["L=2"] < math.log10(H.CONVERGED)
    conv = r.tables[f"converged (loss ratio < {H.CONVERGED:g}): O orthogonal, G Gaussian, - neither"]
    assert conv[-1]["L=2"] == "OG"


def test_step_size_is_the_papers_formula():
    x = deep_linear_regression(seed=0).X
    s = torch.linalg.svdvals(x)[0].item()
    assert H.step_size(x, 4) == pytest.approx(10 / (2 * 4 * s**2), rel=1e-12)


def _cell_model(width, depth, init, eta=1e-3, seed=0):
    cfg = H.cell_config(H.get_config(True, smoke=True)["base"], width, depth, init, eta, seed=seed)
    d = components.build_data(cfg, dtype=torch.float64)
    model = components.build_model(cfg, d).double()
    components.apply_init(model, cfg, generator=torch.Generator().manual_seed(seed))
    return cfg, d, model


def test_one_rescaled_config_step_equals_the_papers_gd_step_on_w():
    # the model computes (W_i / sqrt(fan_out)) h, i.e. V = W / sqrt(m) in the forward pass; one
    # config step must equal W <- W - eta grad_W of the paper's 0.5 ||alpha W_3 W_2 W_1 X - Y||_F^2
    data = deep_linear_regression(seed=0)
    eta = H.step_size(data.X, 3)
    cfg, d, model = _cell_model(16, 3, "gaussian", eta)
    ws = [layer.weight.detach().clone().requires_grad_() for layer in model.layers]
    alpha = 1 / math.sqrt(16**2 * 10)
    paper_loss = 0.5 * ((alpha * ws[2] @ ws[1] @ ws[0] @ data.X - data.Y) ** 2).sum()
    grads = torch.autograd.grad(paper_loss, ws)
    expected = [w - eta * g for w, g in zip(ws, grads, strict=False)]
    loss_fn = components.build_loss(cfg.loss, d)
    opt = components.build_optimizer(cfg, model)
    loss_fn(model(d.x_train), d.y_train).backward()
    opt.step()
    for layer, w, e in zip(model.layers, ws, expected, strict=False):
        assert (e - w).abs().max() > 1e-6  # a step far larger than the tolerance below
        torch.testing.assert_close(layer.weight.detach(), e.detach(), rtol=1e-10, atol=1e-12)


def test_cell_config_sets_the_papers_init_and_seed():
    base = H.get_config(True, smoke=True)["base"]
    o = H.cell_config(base, 64, 5, "orthogonal", 1e-4, seed=3)
    assert o.init == {"scheme": "orthogonal", "gain": 8.0} and o.seed == 3
    assert (o.model["width"], o.model["depth"]) == (64, 5)
    assert o.optimizer.lr == pytest.approx(1e-4 * H.N / 2)
    assert H.cell_config(base, 64, 5, "gaussian", 1e-4).init == {"scheme": "normal", "std": 1.0}
    with pytest.raises(ValueError, match="init must be one of"):
        H.cell_config(base, 64, 5, "uniform", 1e-4)


def _log_spread(init, depth, width=32):
    _, _, model = _cell_model(width, depth, init)
    with torch.no_grad():
        s = torch.linalg.svdvals(model.end_to_end())  # [d_out]
    return float(s.max().log() - s.min().log()), s


def test_end_to_end_singular_values_at_init_stay_equal_for_orthogonal_and_spread_with_depth_for_gaussian():
    # orthogonal: sqrt(m) Q_L ... sqrt(m) Q_1 times alpha has all d_y singular values sqrt(m / d_y)
    for depth in (2, 16, 64):
        spread, s = _log_spread("orthogonal", depth)
        torch.testing.assert_close(s, torch.full_like(s, math.sqrt(32 / 10)), rtol=1e-9, atol=0)
    # Gaussian: the log singular values of a product of L i.i.d. matrices spread like sqrt(L / m);
    # from depth 2 to 64 the spread grows several-fold (sqrt(32) in the large-L limit)
    g2, g64 = _log_spread("gaussian", 2)[0], _log_spread("gaussian", 64)[0]
    assert g64 > 2.5 * g2 > 0


def test_boundary_of_a_synthetic_linear_grid_recovers_slope_one():
    widths, depths = [8, 16, 32, 64, 128, 256], [2, 4, 8, 16, 32, 64]
    conv = {(w, L): w >= 4 * L for w in widths for L in depths}  # converges iff width >= 4 x depth
    slope, intercept, b = H.boundary_slope(conv, widths, depths)
    assert b == {2: 8, 4: 16, 8: 32, 16: 64, 32: 128, 64: 256}
    assert slope == pytest.approx(1.0) and math.exp(intercept) == pytest.approx(4.0)
    assert H.max_converging_depth(conv, widths, depths) == {8: 2, 16: 4, 32: 8, 64: 16, 128: 32, 256: 64}


def test_boundary_of_a_synthetic_flat_grid_has_slope_zero_and_drops_depths_with_no_width():
    widths, depths = [16, 32, 64, 128], [2, 4, 8, 16, 32]
    flat = {(w, L): w >= 64 for w in widths for L in depths}
    slope, _, b = H.boundary_slope(flat, widths, depths)
    assert set(b.values()) == {64} and slope == pytest.approx(0.0, abs=1e-12)
    # square-root growth, and no width converging at depth 32: fitted over the other four depths
    sqrt_grid = {(w, L): w >= 16 * math.sqrt(L / 2) and L < 32 for w in widths for L in depths}
    slope, _, b = H.boundary_slope(sqrt_grid, widths, depths)
    assert b == {2: 16, 4: 32, 8: 32, 16: 64, 32: None}
    assert slope == pytest.approx(H.fit_slope([2, 4, 8, 16], [16, 32, 32, 64]))
    assert 0.4 < slope < 0.8


def test_fit_slope_recovers_a_known_exponent_and_needs_two_depths():
    xs = [2, 4, 8, 16, 32]
    assert H.fit_slope(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert H.fit_slope(xs, [5 * x**0.5 for x in xs]) == pytest.approx(0.5)
    assert H.fit_slope(xs, [64] * 5) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(H.fit_slope([8], [8])) and math.isnan(H.fit_slope([8, 8], [8, 16]))


def test_run_rejects_a_bad_seed_count(tmp_path):
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        H.run(out=tmp_path, smoke=True, seeds=0)
