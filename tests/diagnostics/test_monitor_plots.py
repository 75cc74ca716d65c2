"""The Monitor records without changing training; plots write files and refuse empty input."""

import json

import pytest
import torch
from torch import nn

import inertia.init as I
from inertia import diagnostics as D
from inertia.diagnostics import plots
from inertia.optim import Momentum


def train(monitor_quantities=None, steps=12, path=None, probe=None):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    opt = Momentum(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    mon = None
    if monitor_quantities is not None:
        mon = D.Monitor(
            m,
            monitor_quantities,
            every=3,
            path=path,
            loss_fn=lambda: nn.functional.cross_entropy(m(x), y),
            inputs=x,
            probe=probe(m) if probe else None,
        )
    losses = []
    for t in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        if mon:
            mon.step(t, loss=loss.item())
        opt.step()
        losses.append(loss.item())
    if mon:
        mon.close()
    return losses, mon


def test_monitor_does_not_change_training():
    plain, _ = train(None)
    watched, mon = train(
        [
            "layer_stats",
            "hessian_top_eigenvalue",
            "hessian_frobenius_norm",
            "hessian_trace",
            "jacobian_singular_values",
            "weight_norms",
        ]
    )
    assert plain == watched
    assert [r["step"] for r in mon.records] == [0, 3, 6, 9]


def test_monitor_writes_json_lines(tmp_path):
    path = tmp_path / "diag.jsonl"
    _, mon = train(["layer_stats", "hessian_frobenius_norm"], path=path)
    lines = [json.loads(s) for s in path.read_text().splitlines()]
    assert [r["step"] for r in lines] == [0, 3, 6, 9]
    assert {r["kind"] for r in lines[0]["layers"]} == {"activation", "backprop_grad", "weight_grad"}
    assert lines[0]["hessian_frobenius_norm"] > 0


def test_layer_stats_are_recorded_only_at_monitored_steps():
    _, mon = train(["layer_stats"])
    assert {r["step"] for r in mon.layer_stats.records} == {0, 3, 6, 9}


def test_probe_batch_layer_stats_leave_training_unchanged_and_describe_the_probe():
    g = torch.Generator().manual_seed(1)
    xp, yp = 5.0 * torch.randn(300, 10, generator=g), torch.randint(0, 3, (300,), generator=g)
    plain, _ = train(None)
    watched, mon = train(["layer_stats"], probe=lambda m: (xp, lambda out: nn.functional.cross_entropy(out, yp)))
    assert plain == watched  # gradients, parameters and RNG untouched
    assert [r["step"] for r in mon.records] == [0, 3, 6, 9]
    # the step-0 record is exactly the statistics of one pass on the probe batch at the initial weights
    torch.manual_seed(0)
    m0 = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    ref = D.layer_stats(m0, xp, lambda out, t: nn.functional.cross_entropy(out, t), yp)
    got = {(r["layer"], r["kind"]): r for r in mon.records[0]["layers"]}
    assert len(got) == len(mon.records[0]["layers"]) == len(ref)  # one pass: no training-batch records mixed in
    for r in ref:
        assert got[(r["layer"], r["kind"])]["std"] == pytest.approx(r["std"], rel=1e-6)


def test_probe_must_be_inputs_and_a_loss():
    m = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="probe must be"):
        D.Monitor(m, ["layer_stats"], probe=torch.zeros(2, 3))


def test_unknown_quantity_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown monitor quantity 'nope'; known: .*hessian_trace"):
        D.Monitor(nn.Linear(2, 2), ["nope"])


def test_curvature_quantity_without_loss_fn_is_explained():
    mon = D.Monitor(nn.Linear(2, 2), ["hessian_trace"], every=1)
    with pytest.raises(ValueError, match="needs loss_fn"):
        mon.step(0)


@pytest.mark.parametrize("ext", ["png", "svg"])
def test_every_plot_writes_a_file(tmp_path, ext):
    _, mon = train(["layer_stats", "hessian_frobenius_norm", "hessian_top_eigenvalue"])
    m = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    spectra = D.layer_jacobian_singular_values(m, x)
    density = D.hessian_spectral_density(
        lambda: nn.functional.cross_entropy(m(x), y), list(m.parameters()), iterations=20
    )
    figs = {
        "stats": lambda p: plots.plot_layer_stats(mon.records, "activation", path=p),
        "hist": lambda p: plots.plot_histograms(mon.records, "backprop_grad", path=p),
        "jac": lambda p: plots.plot_jacobian_singular_values(spectra, path=p),
        "curv": lambda p: plots.plot_curvature(mon.records, path=p, loss_key="loss"),
        "density": lambda p: plots.plot_spectral_density(density, path=p),
    }
    for name, make in figs.items():
        path = tmp_path / f"{name}.{ext}"
        make(path)
        assert path.stat().st_size > 500, name


@pytest.mark.parametrize(
    "fn", [plots.plot_layer_stats, plots.plot_histograms, plots.plot_jacobian_singular_values, plots.plot_curvature]
)
def test_plots_refuse_empty_records(fn):
    with pytest.raises(ValueError, match="no "):
        fn([])


def test_hessian_calibrated_init_hits_the_target_per_layer():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 3))
    x, y = torch.randn(64, 10), torch.randn(64, 3)
    loss_fn = lambda: ((m(x) - y) ** 2).mean()  # noqa: E731
    report = I.hessian_calibrated_(m, loss_fn, target=0.5, rtol=0.01)
    assert all(r["reached"] for r in report)
    for r in report:
        w = dict(m.named_modules())[r["layer"]].weight
        exact = D.hessian_frobenius_norm(loss_fn, [w], exact=True).value
        assert exact == pytest.approx(0.5, rel=0.01)


def test_hessian_calibrated_with_stochastic_estimates_is_within_estimator_error():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(30, 40), nn.ReLU(), nn.Linear(40, 5))
    x, y = torch.randn(64, 30), torch.randn(64, 5)
    loss_fn = lambda: ((m(x) - y) ** 2).mean()  # noqa: E731
    I.hessian_calibrated_(m, loss_fn, target=2.0, probes=30, exact_limit=0)
    for name in ("0", "2"):
        w = dict(m.named_modules())[name].weight
        exact = D.hessian_frobenius_norm(loss_fn, [w], exact=True).value
        est = D.hessian_frobenius_norm(loss_fn, [w], probes=30, generator=torch.Generator().manual_seed(9))
        assert abs(exact - 2.0) < 4 * est.stderr + 0.02 * 2.0


def test_hessian_calibrated_is_registered_but_not_usable_through_apply():
    assert "hessian_calibrated" in I.available()
    with pytest.raises(ValueError, match="initializes a whole model from its loss"):
        I.apply(nn.Linear(2, 2), "hessian_calibrated")
