"""hu2020: smoke run decides every claim; the step size, the rescaled model and the boundary fit."""

import math

import pytest
import torch

from inertia import reproduce
from inertia.data import deep_linear_regression
from inertia.experiments import components
from inertia.reproduce import hu2020 as H


def test_smoke_decides_every_claim_and_writes_every_file(tmp_path):
    (r,) = reproduce.run("hu2020", out=tmp_path, smoke=True)
    assert len(r.claims) == 3 and all(isinstance(c.passed, bool) for c in r.claims)
    assert r.figures[0].path.stat().st_size > 1000
    assert (tmp_path / "report.md").exists() and (tmp_path / "results.json").exists()
    grid = r.tables["orthogonal init: log10(final loss / initial loss) (rows: width, columns: depth)"]
    assert [row["width"] for row in grid] == H.get_config(True, smoke=True)["widths"]
    # depth 2 at the largest smoke width converges for both inits (a well-conditioned shallow net)
    assert grid[-1]["L=2"] < math.log10(H.CONVERGED)


def test_step_size_is_the_papers_formula():
    x = deep_linear_regression(seed=0).X
    s = torch.linalg.svdvals(x)[0].item()
    assert H.step_size(x, 4) == pytest.approx(10 / (2 * 4 * s ** 2), rel=1e-12)


def test_one_config_step_equals_the_papers_gd_step_on_half_the_squared_frobenius_loss():
    base = H.get_config(True, smoke=True)["base"]
    data = deep_linear_regression(seed=0)
    eta = H.step_size(data.X, 3)
    cfg = H.cell_config(base, 16, 3, "gaussian", eta)
    d = components.build_data(cfg, dtype=torch.float64)
    model = components.build_model(cfg, d).double()
    components.apply_init(model, cfg, generator=torch.Generator().manual_seed(0))
    ws = [layer.weight.detach().clone().requires_grad_() for layer in model.layers]
    # the paper's f(X) = alpha W_3 W_2 W_1 X and loss 0.5 ||f(X) - Y||_F^2, by hand
    alpha = 1 / math.sqrt(16 ** 2 * 10)
    paper_loss = 0.5 * ((alpha * ws[2] @ ws[1] @ ws[0] @ data.X - data.Y) ** 2).sum()
    grads = torch.autograd.grad(paper_loss, ws)
    expected = [w - eta * g for w, g in zip(ws, grads)]
    loss_fn = components.build_loss(cfg.loss, d)
    opt = components.build_optimizer(cfg, model)
    loss_fn(model(d.x_train), d.y_train).backward()
    opt.step()
    for layer, e in zip(model.layers, expected):
        torch.testing.assert_close(layer.weight.detach(), e.detach(), rtol=1e-10, atol=1e-12)


def test_orthogonal_cells_preserve_norms_and_gaussian_cells_spread_with_depth():
    base = H.get_config(True, smoke=True)["base"]
    x = torch.randn(64, H.D_IN, dtype=torch.float64, generator=torch.Generator().manual_seed(1))

    def spread(init, depth):
        cfg = H.cell_config(base, 128, depth, init, 1e-3)
        m = components.build_model(cfg, None).double()
        components.apply_init(m, cfg, generator=torch.Generator().manual_seed(0))
        hidden = torch.nn.Sequential(*m.layers[:-1])  # the m-wide layers, before the d_y projection
        with torch.no_grad():
            r = hidden(x).norm(dim=1) / x.norm(dim=1)
        return float(r.log().std())

    # after the first (1024 -> 128 projection) layer, orthogonal m x m layers are exact isometries:
    # the spread of the log-norm ratio does not change with depth; Gaussian products spread like
    # sqrt(depth / width)
    assert spread("orthogonal", 32) == pytest.approx(spread("orthogonal", 2), abs=1e-9)
    assert spread("gaussian", 32) > 2 * spread("gaussian", 2) > 0


def test_fit_slope_recovers_a_known_exponent():
    xs = [2, 4, 8, 16, 32]
    assert H.fit_slope(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert H.fit_slope(xs, [64] * 5) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(H.fit_slope([8], [8]))
