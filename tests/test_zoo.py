"""init, diagnostics, the Monitor and the doctor on the zoo of tests/zoo.py (ResNet, MobileNet,
VGG, GPT and BERT style transformers, LSTM and GRU language models, a ConvTranspose decoder, Conv1d
and Conv3d nets), in train and in eval mode: no crash (or a clear error where torch has no second
derivative), and nothing of the model changed by measuring it."""

from __future__ import annotations

import contextlib
import copy
import math
import sys
from pathlib import Path

import pytest
import torch

import inertia
import inertia.init as I
from inertia import diagnostics as D

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo import ZOO  # noqa: E402

CASES = [(name, mode) for name in ZOO for mode in ("train", "eval")]
IDS = [f"{n}-{m}" for n, m in CASES]
SCHEMES = [s for s in I.available() if s not in ("hessian_calibrated", "constant")]  # constant needs a value


def build(name, mode):
    torch.manual_seed(0)
    model, x, y, loss = ZOO[name]()
    model.train(mode == "train")
    return model, x, y, loss


def snapshot(model):
    return (
        {k: v.detach().clone() for k, v in model.state_dict().items()},
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [m.training for m in model.modules()],
        torch.get_rng_state(),
    )


def same(a, b):
    sa, ga, ma, ra = a
    sb, gb, mb, rb = b
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), "parameters or buffers changed"
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(ga, gb, strict=True)), "grads changed"
    assert ma == mb, "modes changed"
    assert torch.equal(ra, rb), "the global RNG moved"


@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_init_apply_reports_every_parameter_once(name, mode):
    model, *_ = build(name, mode)
    report = I.apply(model, "glorot_uniform", generator=torch.Generator().manual_seed(0))
    names = [r["name"] for r in report] + [t for r in report for t in r.get("tied", [])]
    assert sorted(names) == sorted({n for n, _ in model.named_parameters(remove_duplicate=False)})
    for m in model.modules():
        if isinstance(m, torch.nn.Embedding) and m.padding_idx is not None:
            assert not m.weight[m.padding_idx].any()


@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_layer_statistics_and_curvature_leave_the_model_as_it_was(name, mode):
    model, x, y, loss = build(name, mode)
    before = snapshot(model)
    with D.state.preserved(model):  # layer_stats' own backward leaves .grad as any backward does
        records = D.layer_stats(model, x, loss, y)
    assert records and all(r["numel"] > 0 for r in records)
    params = [p for p in model.parameters() if p.requires_grad]
    with D.state.preserved(model):  # mobilenet's hardsigmoid gate too (through clamp, which has a double backward)
        top = D.hessian_eigenvalues(lambda: loss(model(x), y), params, k=1, max_iter=8)
        assert torch.isfinite(top.values).all()
    same(before, snapshot(model))


@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_the_doctor_runs_and_changes_nothing(name, mode):
    model, x, y, loss = build(name, mode)
    before = snapshot(model)
    twin = copy.deepcopy(model)
    report = inertia.doctor(model, x, y, loss_fn=loss, lr=0.01, momentum=0.9, trial_steps=5, trial_seconds=30)
    same(before, snapshot(model))
    assert report.loss is not None and report.layers
    assert all(isinstance(s.why, str) and s.why for s in report.skipped)
    assert not [s for s in report.skipped if s.name in ("curvature", "jacobians")], report.skipped
    assert report.lam_max is not None and report.jacobian_blocks
    assert [type(m) for m in twin.modules()] == [type(m) for m in model.modules()]


@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_every_init_function(name, mode):
    """apply with every registered scheme (or an error naming the parameter and suggesting rules=),
    lsuv_ and hessian_calibrated_ on the model."""
    model, x, y, loss = build(name, mode)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    for scheme in SCHEMES:
        m = copy.deepcopy(model)
        try:
            I.apply(m, scheme, generator=g())
        except ValueError as e:  # e.g. echo_state on a non-square weight: it says which and how to choose
            assert "rules=" in str(e) and "'" in str(e), (scheme, str(e))
            continue
        assert all(torch.isfinite(p).all() for p in m.parameters()), scheme
        for e in (e for e in m.modules() if isinstance(e, torch.nn.Embedding) and e.padding_idx is not None):
            assert not e.weight[e.padding_idx].any(), scheme
    m = copy.deepcopy(model)
    recurrent = any(isinstance(e, torch.nn.RNNBase) for e in m.modules())
    with pytest.warns(UserWarning, match="recurrent") if recurrent else contextlib.nullcontext():
        result = I.lsuv_(m, x, generator=g())
    assert result and all(abs(r["std"] - 1) < 0.1 or r["iterations"] == 10 for r in result.values())
    m = copy.deepcopy(model)
    first = next(
        n
        for n, e in m.named_modules()
        if isinstance(getattr(e, "weight", None), torch.nn.Parameter)
        and e.weight.dim() >= 2
        and not isinstance(e, torch.nn.Embedding)
    )
    report = I.hessian_calibrated_(
        m, lambda: loss(m(x), y), layers=[first], base=None, probes=4, max_iter=3, exact_limit=0, generator=g()
    )
    assert report[0]["layer"] == first and report[0]["hessian_norm"] > 0


@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_every_diagnostic_runs_and_changes_nothing(name, mode):
    """hvp, ggn_vp, the curvature estimates, both Jacobian spectra, tensor_stats and LayerStats."""
    model, x, y, loss = build(name, mode)
    before = snapshot(model)
    params = [p for p in model.parameters() if p.requires_grad]
    vs = [torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) for p in params]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with D.state.preserved(model):
        hv = D.hvp(lambda: loss(model(x), y), params, vs)
        gv = D.ggn_vp(lambda: model(x), lambda out: loss(out, y), params, vs)
        assert all(torch.isfinite(t).all() for t in hv + gv)
        ggn_quad = sum(float((a * b).sum()) for a, b in zip(gv, vs, strict=True))
        if name not in ("mobilenet",):  # G is PSD for a convex loss of the outputs
            assert ggn_quad >= -1e-5 * max(1.0, abs(ggn_quad))
        op = D.HessianOperator(lambda: loss(model(x), y), params)
        assert torch.isfinite(D.hessian_eigenvalues(op, k=1, max_iter=6, generator=g()).values).all()
        assert math.isfinite(D.hessian_trace(op, probes=2, generator=g()).value)
        assert D.hessian_frobenius_norm(op, probes=2, generator=g()).value > 0
        density = D.hessian_spectral_density(op, iterations=6, grid_points=50, generator=g())
        assert len(density.grid) == 50 and torch.isfinite(torch.as_tensor(density.density)).all()
    spectra = D.layer_jacobian_singular_values(model, x, examples=2)
    assert spectra and all(s.mean > 0 and s.method in ("exact", "lanczos") for s in spectra)
    if x.is_floating_point():
        assert D.input_output_jacobian_spectrum(model, x, examples=2).max > 0
    else:
        with pytest.raises(ValueError, match="floating-point"):
            D.input_output_jacobian_spectrum(model, x)
    with D.state.preserved(model), torch.no_grad():  # a train-mode forward moves BatchNorm's statistics
        assert D.tensor_stats(model(x))["numel"] > 0
    with D.state.preserved(model):
        ls = D.LayerStats(model)
        loss(model(x), y).backward()
        records = ls.collect(0)
        ls.remove()
    assert {r["kind"] for r in records} >= {"weight_grad"}  # activations where there are activation modules
    same(before, snapshot(model))


@pytest.mark.parametrize("name,mode", CASES, ids=IDS)
def test_training_with_a_monitor_of_every_quantity_is_bit_identical(name, mode):
    model, x, y, loss = build(name, mode)
    twin = copy.deepcopy(model)

    def train(m, monitor):
        torch.manual_seed(3)  # dropout draws
        opt = inertia.optim.Momentum(m.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        losses = []
        for step in range(3):
            out = loss(m(x), y)
            out.backward()
            losses.append(out.detach().clone())
            if monitor is not None:
                monitor.step(step)
            opt.step()
            opt.zero_grad()
        return losses

    quantities = D.QUANTITIES.available()
    mon = D.Monitor(model, quantities, every=2, loss_fn=lambda: loss(model(x), y), inputs=x, probes=2)
    with_monitor = train(model, mon)
    mon.close()
    without = train(twin, None)
    assert all(torch.equal(a, b) for a, b in zip(with_monitor, without, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True))
    records = mon.records
    assert [r["step"] for r in records] == [0, 2]
    assert all(k in records[0] for k in ("hessian_top_eigenvalue", "jacobian_singular_values", "weight_norms"))


@pytest.mark.parametrize("name", list(ZOO))
def test_every_figure_renders_for_the_model(name, tmp_path):
    from inertia.diagnostics import plots

    model, x, y, loss = build(name, "train")
    records = D.layer_stats(model, x, loss, y)
    with D.state.preserved(model):
        density = D.hessian_spectral_density(
            lambda: loss(model(x), y), list(model.parameters()), iterations=5, grid_points=40
        )
    curve = [{"step": i, "hessian_frobenius_norm": 1.0 + i, "hessian_top_eigenvalue": 2.0 + i} for i in range(3)]
    kind = "activation" if any(r["kind"] == "activation" for r in records) else "weight_grad"
    figures = [
        plots.plot_layer_stats(records, kind=kind, path=tmp_path / "a.png"),
        plots.plot_histograms(records, kind=kind, path=tmp_path / "b.png"),
        plots.plot_jacobian_singular_values(
            D.layer_jacobian_singular_values(model, x, examples=2), path=tmp_path / "c.png"
        ),
        plots.plot_curvature(curve, path=tmp_path / "d.png"),
        plots.plot_spectral_density(density, path=tmp_path / "e.png"),
    ]
    import matplotlib.pyplot as plt

    for f in figures:
        plt.close(f)
    assert all((tmp_path / f"{c}.png").stat().st_size > 1000 for c in "abcde")
