"""glorot2010: the smoke run decides every claim and writes every file; the init-time measurements
against brute force and theory; the claim deciders on records whose answer is known."""

import json
import statistics

import pytest
import torch
import torch.nn.functional as F

from inertia import reproduce
from inertia.data import shapeset
from inertia.experiments.config import Config
from inertia.reproduce import glorot2010 as G


@pytest.mark.slow
def test_smoke_decides_every_claim_and_writes_every_file(tmp_path):
    (r,) = reproduce.run("glorot2010", out=tmp_path, smoke=True)
    assert len(r.claims) == 9
    assert all(isinstance(c.passed, bool) and c.measured and c.test for c in r.claims)
    assert len(r.figures) == 4 and all(f.path.stat().st_size > 1000 for f in r.figures)
    assert {f.path.name for f in r.figures} == {
        "histograms_at_init.png",
        "jacobian_singular_values.png",
        "activations_over_training.png",
        "test_error.png",
    }
    rows = r.tables["test error after training (%)"]
    assert len(rows) == 6 and all(0 <= row["test error (%), mean of the last 3 evaluations"] <= 100 for row in rows)
    assert all(row["status"] == "completed" for row in rows)
    (init_rows,) = [v for k, v in r.tables.items() if k.startswith("at initialization")]
    assert len(init_rows) == 6 and all(len(row["mean Jacobian singular value, layers 2-5"]) == 4 for row in init_rows)
    assert "NOT the paper's data" in r.setting and "faithful Shapeset-3x2" in r.setting
    saved = json.loads((tmp_path / "results.json").read_text())[0]
    assert len(saved["claims"]) == 9 and all(c["verdict"] in ("PASS", "FAIL") for c in saved["claims"])
    assert (tmp_path / "report.md").stat().st_size > 0 and (tmp_path / "report.html").stat().st_size > 0


def test_get_config_is_a_config_with_the_papers_architecture():
    quick, full = G.get_config(quick=True), G.get_config(quick=False)
    assert isinstance(quick, Config) and isinstance(full, Config)
    assert quick.model["sizes"] == [1024, 200, 200, 200, 200, 200, 9] and quick.data["name"] == "shapeset_easy"
    assert full.model["sizes"] == [1024] + [1000] * 5 + [9] and full.data["name"] == "shapeset"
    assert quick.batch_size == full.batch_size == 10 and quick.optimizer.name == "sgd"
    cfg = G.setting_config(quick, "softsign", "normalized", seed=2)
    assert cfg.model["activation"] == "softsign" and cfg.init == {"scheme": "glorot_uniform"} and cfg.seed == 2


def test_init_weights_have_the_papers_variances():
    width = 400
    n_in, n_out = 1024, width  # the first layer, where the two formulas differ most
    for init, var in (("standard", 1 / (3 * n_in)), ("normalized", 2 / (n_in + n_out))):
        net = G.make_net(width, "tanh", init, seed=0)
        w = net[0].weight.detach()
        # sample variance of a uniform: relative standard error sqrt(0.8 / n) (excess kurtosis -1.2)
        assert float(w.var()) == pytest.approx(var, rel=4 * (0.8 / w.numel()) ** 0.5)
        assert float(w.abs().max()) <= (3 * var) ** 0.5  # the uniform's bound
        assert all(float(m.bias.detach().abs().max()) == 0 for m in net if isinstance(m, torch.nn.Linear))


def _brute_force(width, examples, act, init, jac_examples):
    """Per-layer d loss / d a_i and d loss / d W_i std by autograd on explicit tensors, and the mean
    singular value of each hidden layer-to-layer Jacobian from a dense Jacobian and svdvals."""
    x, y = shapeset(examples, seed=7)
    x = x.double()
    net = G.make_net(width, act, init, seed=0)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    h, pre = x, []
    for layer in net:
        h = layer(h)
        if isinstance(layer, torch.nn.Linear):
            h.retain_grad()
            pre.append(h)
    F.cross_entropy(h, y).backward()
    grad_std = [float(p.grad.std()) for p in pre[:5]]
    wgrad_std = [float(m.weight.grad.std()) for m in linears[:5]]
    phi = net[1]
    svs = []
    with torch.no_grad():
        hid = phi(linears[0](x[:jac_examples]))
    for lin in linears[1:5]:
        per_example = []
        for e in range(jac_examples):
            jac = torch.autograd.functional.jacobian(lambda z, lin=lin: phi(lin(z)), hid[e])  # [width, width]
            per_example.append(float(torch.linalg.svdvals(jac).mean()))
        svs.append(statistics.fmean(per_example))
        with torch.no_grad():
            hid = phi(lin(hid))
    return grad_std, wgrad_std, svs


@pytest.mark.parametrize("act, init", [("tanh", "standard"), ("softsign", "normalized")])
def test_gradient_stds_and_jacobian_means_match_brute_force(act, init):
    m = G.init_measurements(width=24, examples=20, seed=0, jacobian_examples=3, activations=(act,))
    v = m[(act, init)]
    grad_std, wgrad_std, svs = _brute_force(24, 20, act, init, 3)
    assert [r["std"] for r in v["backprop_grad"]] == pytest.approx(grad_std, rel=1e-9)
    assert [r["std"] for r in v["weight_grad"]] == pytest.approx(wgrad_std, rel=1e-9)
    assert v["jacobian_mean_sv"] == pytest.approx(svs, rel=1e-9)
    assert [r["layer"] for r in v["activation"]] == ["1", "3", "5", "7", "9"]


def test_ratios_are_layer_one_over_layer_five():
    recs = [{"std": s} for s in (1.0, 2.0, 3.0, 4.0, 8.0)]
    assert G.ratio(recs) == 1 / 8 and G.ratio(recs[::-1]) == 8.0


def _record(step, layers, numel):
    return [
        {
            "layer": name,
            "kind": "activation",
            "mean": mean,
            "std": 0.1,
            "p98": p98,
            "saturated": 0.0,
            "numel": numel,
            "step": step,
        }
        for name, (mean, p98) in layers.items()
    ]


def test_activation_curves_keep_the_training_minibatch_record_after_evaluation_records():
    names = ["1", "3"]
    evaluation = _record(10, {"1": (0.9, 0.9), "3": (0.9, 0.9)}, 4000)  # hooks armed during evaluation
    minibatch = _record(10, {"1": (0.2, 0.5), "3": (0.4, 0.6)}, 20)
    grads = [{"layer": "0", "kind": "backprop_grad", "std": 1.0}]
    diag = [
        {"step": 0, "layers": _record(0, {"1": (0.1, 0.3), "3": (0.3, 0.5)}, 20)},
        {"step": 10, "layers": evaluation + evaluation + minibatch + grads},
        {"step": 20, "layers": _record(20, {"1": (0.1, 0.3)}, 20)},
    ]  # layer 3 missing: skipped
    c = G.activation_curves(diag, names)
    assert c["step"] == [0, 10]
    assert c["mean"] == [[0.1, 0.3], [0.2, 0.4]] and c["p98"] == [[0.3, 0.5], [0.5, 0.6]]


def _curve(means=None, p98=None):
    rows = means if means is not None else p98
    return {
        "step": [100 * t for t in range(len(rows))],
        "mean": means or [[0.0] * 5] * len(rows),
        "std": [[0.1] * 5] * len(rows),
        "p98": p98 or [[0.5] * 5] * len(rows),
        "saturated": [[0.0] * 5] * len(rows),
    }


def test_sigmoid_claim_passes_when_only_the_top_layer_falls():
    falls = _curve(means=[[0.5, 0.5, 0.5, 0.5, 0.5], [0.5, 0.52, 0.55, 0.6, 0.3], [0.5, 0.5, 0.55, 0.62, 0.2]])
    assert G.sigmoid_saturation_claim(falls).passed
    stays = _curve(means=[[0.5] * 5, [0.5, 0.5, 0.5, 0.5, 0.3]])  # 0.3 > 0.5 x 0.5
    assert not G.sigmoid_saturation_claim(stays).passed
    lower_moves = _curve(means=[[0.5] * 5, [0.5, 0.5, 0.5, 0.2, 0.1]])  # layer 4 leaves 0.5 +- 0.15
    assert not G.sigmoid_saturation_claim(lower_moves).passed
    assert not G.sigmoid_saturation_claim(_curve(means=[[0.5] * 5])).passed  # one record decides nothing


def test_tanh_claim_needs_layers_to_saturate_in_order_from_layer_one():
    lo, hi = 0.5, 0.99
    in_order = _curve(p98=[[lo] * 5, [hi, lo, lo, lo, lo], [hi, hi, lo, lo, lo], [hi, hi, hi, lo, lo]])
    assert G.first_saturated_steps(in_order) == [100, 200, 300, None, None]
    assert G.tanh_saturation_claim(in_order).passed
    only_first = _curve(p98=[[lo] * 5, [hi, lo, lo, lo, lo], [hi, lo, lo, lo, lo]])
    assert not G.tanh_saturation_claim(only_first).passed
    together = _curve(p98=[[lo] * 5, [hi, hi, lo, lo, lo]])  # layers 1 and 2 at the same update
    assert not G.tanh_saturation_claim(together).passed
    top_first = _curve(p98=[[lo] * 5, [lo, lo, lo, lo, hi], [hi, hi, lo, lo, hi]])
    assert not G.tanh_saturation_claim(top_first).passed


def test_smoothed_error_averages_the_last_evaluations_after_update_zero():
    metrics = [
        {"step": 0, "test_error": 0.9},
        {"step": 10, "test_error": 0.8},
        {"step": 20, "test_error": 0.6},
        {"step": 30, "test_error": 0.5},
        {"step": 40, "test_error": 0.4},
    ]
    assert G.smoothed_error(metrics) == pytest.approx(0.5)
    assert G.smoothed_error(metrics[:2]) == pytest.approx(0.8)
    assert G.smoothed_error(metrics[:1]) is None


def _errors(**kw):
    err = {(a, i): 0.5 for a in G.ACTIVATIONS for i in G.INITS}
    err.update({tuple(k.split("_")): v for k, v in kw.items()})
    return err


def test_error_claims_follow_table_1_with_a_two_standard_error_margin():
    n = 2000  # two standard errors of a difference near 50%: 2 sqrt(2 x 0.25 / 2000) = 3.2 points
    paper_like = _errors(
        sigmoid_standard=0.83,
        sigmoid_normalized=0.80,
        tanh_standard=0.27,
        tanh_normalized=0.16,
        softsign_standard=0.16,
        softsign_normalized=0.16,
    )
    assert [c.passed for c in G.error_claims(paper_like, n)] == [True, True, True]
    small_gaps = _errors(
        sigmoid_standard=0.89, sigmoid_normalized=0.89, tanh_standard=0.52, tanh_normalized=0.50, softsign_standard=0.50
    )
    assert [c.passed for c in G.error_claims(small_gaps, n)] == [True, False, False]
    sigmoid_learns = _errors(sigmoid_standard=0.45, tanh_standard=0.5)
    assert not G.error_claims(sigmoid_learns, n)[0].passed


def _init_measurement(act_stds, grad_stds, wgrad_stds, svs):
    recs = lambda stds: [{"std": s} for s in stds]  # noqa: E731
    return {
        "activation": recs(act_stds),
        "backprop_grad": recs(grad_stds),
        "weight_grad": recs(wgrad_stds),
        "jacobian_mean_sv": svs,
    }


def test_init_claims_pass_on_the_papers_picture_and_fail_without_it():
    standard = _init_measurement([0.3, 0.17, 0.09, 0.05, 0.03], [1, 2, 3, 5, 10], [1, 1, 1, 1, 1], [0.48] * 4)
    normalized = _init_measurement([0.47, 0.4, 0.33, 0.3, 0.27], [6, 7, 8, 9, 10], [1, 1, 1, 1, 1], [0.78] * 4)
    assert [c.passed for c in G.init_claims({("tanh", "standard"): standard, ("tanh", "normalized"): normalized})] == [
        True,
        True,
        True,
        True,
    ]
    # both inits alike (gradients level, Jacobians at 0.78, activations level): every claim fails
    assert [
        c.passed for c in G.init_claims({("tanh", "standard"): normalized, ("tanh", "normalized"): normalized})
    ] == [False, False, False, False]
    shrinking_weight_grads = _init_measurement(
        [0.3, 0.17, 0.09, 0.05, 0.03], [1, 2, 3, 5, 10], [0.1, 0.3, 0.5, 0.8, 1], [0.48] * 4
    )
    assert not G.init_claims({("tanh", "standard"): shrinking_weight_grads, ("tanh", "normalized"): normalized})[
        2
    ].passed


def test_with_a_grid_of_rates_each_model_keeps_its_best_and_the_other_seeds_run_at_it(tmp_path, monkeypatch):
    import dataclasses

    monkeypatch.setitem(G.SIZES, "smoke", dataclasses.replace(G.SIZES["smoke"], lrs=(0.003, 0.3)))
    res = G.run(smoke=True, seeds=2, out=tmp_path)
    rows = res.tables["test error after training (%)"]
    assert len(rows) == 6 and "lr chosen per model from [0.003, 0.3]" in res.setting
    for row in rows:
        scores = row["smoothed test error (%) per lr tried"]
        assert set(scores) == {"0.003", "0.3"}
        assert scores[str(row["lr (chosen)"])] == min(scores.values())
    seeds = json.loads((tmp_path / "glorot2010" / "train-smoke-seeds" / "sweep.json").read_text())
    assert sorted(seeds["configs"]) == sorted(f"{r['activation']}|{r['init']}|{r['lr (chosen)']}|1" for r in rows)
    assert G.BUDGET.hours(G.SIZES["full"]) == 3 * G.BUDGET.hours(dataclasses.replace(G.SIZES["full"], lrs=(0.05,)))
