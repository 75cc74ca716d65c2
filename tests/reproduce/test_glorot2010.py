"""glorot2010: smoke run decides every claim; the init-time measurements against brute force."""

import statistics

import pytest
import torch
import torch.nn.functional as F

from inertia import reproduce
from inertia.reproduce import glorot2010 as G


def test_smoke_decides_every_claim_and_writes_every_file(tmp_path):
    (r,) = reproduce.run("glorot2010", out=tmp_path, smoke=True)
    assert len(r.claims) == 5 and all(isinstance(c.passed, bool) for c in r.claims)
    assert len(r.figures) == 2 and all(f.path.stat().st_size > 1000 for f in r.figures)
    rows = r.tables["test error after training (%)"]
    assert len(rows) == 6 and all(0 <= row["test error (%)"] <= 100 for row in rows)
    assert "easy Shapeset variant (NOT the paper's data)" in r.setting


def test_init_weights_have_the_papers_variances():
    width = 400
    n_in, n_out = 1024, width  # the first layer, where the two formulas differ most
    for init, var in (("standard", 1 / (3 * n_in)), ("normalized", 2 / (n_in + n_out))):
        w = G._net(width, "tanh", init, seed=0)[0].weight.detach()
        # sample variance of a uniform: relative standard error sqrt(0.8 / n) (kurtosis 1.8)
        assert float(w.var()) == pytest.approx(var, rel=4 * (0.8 / w.numel()) ** 0.5)
        assert float(w.abs().max()) <= (3 * var) ** 0.5  # the uniform's bound


def test_measured_gradient_ratio_and_jacobian_mean_match_brute_force():
    m = G.init_measurements(width=24, examples=20, seed=0, jacobian_examples=3)
    v = m[("tanh", "standard")]
    # brute force: the same net and data, gradients of the loss w.r.t. each hidden pre-activation
    from inertia.data import shapeset

    x, y = shapeset(20, seed=7)
    net = G._net(24, "tanh", "standard", 0)
    h, pre = x.double(), []
    for layer in net:
        h = layer(h)
        if isinstance(layer, torch.nn.Linear):
            h.retain_grad()
            pre.append(h)
    F.cross_entropy(h, y).backward()
    stds = [float(p.grad.std()) for p in pre[:5]]
    assert [r["std"] for r in v["grads"]] == pytest.approx(stds, rel=1e-9)
    # Jacobian of hidden layer i -> i+1 at one example: diag(tanh'(a)) W, singular values by SVD
    h1 = x[:3].double()
    svs = []
    for i, layer in enumerate(net[:9]):
        if i % 2 == 0 and 2 <= i <= 8:
            hs = []
            for e in range(3):
                jac = torch.autograd.functional.jacobian(lambda z: net[i + 1](layer(z)), h1[e])
                hs.append(float(torch.linalg.svdvals(jac).mean()))
            svs.append(statistics.fmean(hs))
        with torch.no_grad():
            h1 = layer(h1)
    assert v["jacobian_mean_sv"] == pytest.approx(svs, rel=1e-9)
