"""sutskever2013: the smoke run decides every claim and writes every file; the configs are the paper's."""

import json

import pytest
import torch

from inertia import reproduce
from inertia.experiments import components
from inertia.init import spectral_radius
from inertia.optim import schedules
from inertia.reproduce import sutskever2013 as S


@pytest.mark.slow
def test_smoke_decides_every_claim_and_writes_every_file(tmp_path):
    (r,) = reproduce.run("sutskever2013", out=tmp_path, smoke=True)
    assert len(r.claims) >= 6 and all(isinstance(c.passed, bool) for c in r.claims)
    assert {c.verdict for c in r.claims} <= {"PASS", "FAIL"}
    for f in r.figures:
        assert f.path.exists() and f.path.stat().st_size > 1000
    assert [f.path.name for f in r.figures] == [
        "autoencoder.png",
        "sparse_scale.png",
        "addition.png",
        "memorization.png",
        "hessian_free.png",
    ]
    claims = [c.statement for c in r.claims]
    assert sum("5-bit memorization" in c for c in claims) == 2 and sum("Hessian-Free" in c for c in claims) == 2
    hf = r.tables["Hessian-Free vs NAG on the autoencoder (this machine, one thread per run)"]
    assert hf[1]["method"].startswith("HF") and len(hf) == 2
    assert hf[1]["updates"] == 3 and hf[1]["curvature products"] > 0 and hf[0]["wall s"] > 0
    table = r.tables["deep autoencoder, final training error (summed squared error per case; best lr per setting)"]
    assert [row["setting"] for row in table] == ["SGD", "NAG 0.99", "CM 0.99"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data[0]["paper"] == "sutskever2013" and len(data[0]["claims"]) == len(r.claims)
    # a second call reuses every finished trial (resume) and reaches the same verdicts
    (r2,) = reproduce.run("sutskever2013", out=tmp_path, smoke=True)
    assert [c.measured for c in r2.claims] == [c.measured for c in r.claims]
    assert r2.wall_time_s < r.wall_time_s


@pytest.mark.parametrize("quick", [True, False])
def test_autoencoder_sparse_init_has_15_incoming_weights_or_all_inputs(quick):
    cfg = S.get_config(quick)["autoencoder"]
    data = components.build_data(cfg.replace(**{"data.n": 10, "data.n_test": 10}))
    model = components.build_model(cfg, data)
    components.apply_init(model, cfg, generator=torch.Generator().manual_seed(0))
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2 * (len(cfg.model["sizes"]) - 1)
    for lin in linears:
        nnz = (lin.weight != 0).sum(1)
        assert torch.all(nnz == min(15, lin.in_features)), lin
        assert torch.all(lin.bias == 0)
    # the nonzero weights are N(0, 1)
    w = torch.cat([lin.weight.detach()[lin.weight != 0] for lin in linears])
    assert abs(float(w.std()) - 1.0) < 4 / len(w) ** 0.5 * 2 and abs(float(w.mean())) < 4 / len(w) ** 0.5


def test_rnn_init_is_the_papers():
    cfg = S.get_config(True)["addition"]
    data = components.build_data(cfg.replace(**{"data.n": 10, "data.n_test": 10}))
    model = components.build_model(cfg, data)
    components.apply_init(model, cfg, generator=torch.Generator().manual_seed(0))
    assert spectral_radius(model.weight_hh) == pytest.approx(1.1, rel=1e-4)
    assert torch.all((model.weight_hh != 0).sum(1) == 15)
    # within 4 standard errors (the sample std's relative error is 1/sqrt(2n))
    for w, std in ((model.weight_ih, 0.001), (model.weight_ho, 0.1)):
        assert float(w.detach().std()) == pytest.approx(std, rel=4 / (2 * w.numel()) ** 0.5)


@pytest.mark.parametrize("quick", [True, False])
def test_memorization_and_hessian_free_configs_are_the_papers(quick):
    cfg = S.get_config(quick)
    mem = cfg["memorization"]
    assert mem.data["name"] == "memorization5" and mem.model["output"] == "all" and mem.stop_when == "test_solved"
    assert mem.data["seq_len"] == (S.MEMORIZATION_T_QUICK if quick else 200) and mem.model["hidden_size"] == 100
    assert mem.init["rules"]["weight_ih"] == {"scheme": "normal", "std": 0.1}  # memorization's input scale
    for key in ("hf_autoencoder", "hf_addition"):
        hf = cfg[key]
        assert hf.optimizer.name == "hessian_free" and hf.optimizer.lr == 1.0 and hf.schedule is None
        assert hf.optimizer.options["curvature_fraction"] == 0.25
    assert cfg["hf_autoencoder"].optimizer.options["damping"] == 45.0  # Martens' choice for the autoencoders
    assert (
        cfg["hf_autoencoder"].model == cfg["autoencoder"].model
        and cfg["hf_autoencoder"].init == cfg["autoencoder"].init
    )
    assert cfg["hf_addition"].model == cfg["addition"].model and cfg["hf_addition"].data == cfg["addition"].data


def test_value_at_time_and_time_to_solve():
    hist = [
        {"step": 0, "wall_s": 0.1, "train_error": 20.0},
        {"step": 2, "wall_s": 1.0, "train_error": 10.0, "test_solved": False},
        {"step": 4, "wall_s": 2.5, "train_error": 5.0, "test_solved": True},
    ]
    assert S._value_at_time(hist, 2.0, "train_error") == 10.0
    assert S._value_at_time(hist, 0.05, "train_error") == 20.0  # before the first evaluation: the start
    assert S._value_at_time(hist, 9.0, "train_error") == 5.0
    assert S._time_to_solve(hist) == 2.5 and S._time_to_solve(hist[:2]) == float("inf")


def test_quick_schedule_is_compressed_but_has_the_papers_shape():
    cfg = S.get_config(True)["autoencoder"]
    mu = schedules.from_config(cfg.schedule)
    period = cfg.schedule["period"]
    assert [mu(k * period) for k in range(4)] == pytest.approx([0.5, 0.75, 1 - 1 / 6, 0.875])
    assert mu(300) >= 0.99 - 1e-12  # mu_max 0.99 is reached early in the quick budget
    assert mu(cfg.steps - 1) == 0.9  # the final phase
    full = schedules.from_config(S.get_config(False)["autoencoder"].schedule)
    assert full(249) == 0.5 and full(250) == 0.75 and full(749_000) == 0.9


def test_stage_configs_change_only_what_they_vary():
    base = S.get_config(True)["autoencoder"]
    sgd = S._ae_config(base, 0.0, False, 0.01)
    assert sgd.schedule is None and sgd.optimizer.lr == 0.01 and sgd.model == base.model
    nofinal = S._ae_config(base, 0.99, True, 0.05, final_phase=False)
    assert nofinal.schedule["total_steps"] is None and nofinal.schedule["mu_max"] == 0.99
    scaled = S._ae_config(base, 0.99, True, 0.05, scale=0.25)
    assert scaled.init["std"] == 0.25 and all(r["std"] == 0.25 for r in scaled.init["rules"].values())


@pytest.mark.slow
def test_a_second_stage_runs_when_the_reference_setting_tries_several_lrs(tmp_path, monkeypatch):
    original = S.get_config

    def two_lrs(quick=True, smoke=False, sizes=None):
        cfg = original(quick, smoke, sizes)
        cfg["grid"]["ae_settings"] = [
            (lb, mu, nes, [0.05, 0.01] if lb == "NAG 0.99" else lrs) for lb, mu, nes, lrs in cfg["grid"]["ae_settings"]
        ]
        return cfg

    monkeypatch.setattr(S, "get_config", two_lrs)
    r = S.run(out=tmp_path, smoke=True)
    pools = tmp_path / "sutskever2013"
    stage1 = json.loads((pools / "stage1-smoke" / "sweep.json").read_text())
    stage2 = json.loads((pools / "stage2-smoke" / "sweep.json").read_text())
    best = r.tables["the final low-momentum phase"][0]["lr"]
    labels2 = list(stage2["configs"])
    assert best in (0.05, 0.01) and labels2 == [f"nofinal|NAG 0.99|{best}"]  # the final phase at the best lr
    labels1 = set(stage1["configs"])
    assert {"scale|0.25|0.05", "scale|0.25|0.01"} <= labels1  # each scale at every rate of the grid
    rows = r.tables["scale of the sparse init (NAG mu_max 0.99, the best lr per scale of [0.05, 0.01])"]
    assert [row["scale"] for row in rows] == [0.25, 1.0] and all(row["best lr"] in (0.05, 0.01) for row in rows)


def _trial(err):
    return {"status": "completed", "metrics": {"train_error": err}}


def test_table3_keeps_each_scales_best_rate(tmp_path):
    """The paper's Table 3 chooses the rate per scale: a scale is reported at its best rate of the
    reference's grid, not at the rate that is best for scale 1."""
    lrs = [0.01, 0.005]
    grid = {"ae_settings": [(S.REFERENCE, 0.99, True, lrs)], "sparse_scales": [0.25, 1.0, 2.0]}
    by = {
        "scale|0.25|0.01": _trial(16.0),
        "scale|0.25|0.005": _trial(15.0),
        "scale|2.0|0.01": _trial(float("nan")),  # diverged: never the best
        "scale|2.0|0.005": _trial(3.0),
    }
    p = S.Pools({"grid": grid}, 1, tmp_path, None, by, {S.REFERENCE: (0.01, 2.0)}, baseline=18.0)
    res = S.PaperResult("sutskever2013", S.TITLE, "test")
    S.table3(res, p)
    (rows,) = res.tables.values()
    assert [(r["scale"], r["best lr"], r["train error"]) for r in rows] == [
        (0.25, 0.005, 15.0),
        (1.0, 0.01, 2.0),
        (2.0, 0.005, 3.0),
    ]
    small, large = res.claims
    assert small.passed  # 15 >= 0.8 x 18: does not train
    assert large.passed  # 2 and 3 < 0.5 x 18


def test_the_clipped_memorization_setting_is_reported_but_not_claimed():
    grid = S.get_config(True)["grid"]
    labels = [m[0] for m in grid["mem_settings"]]
    assert labels[:2] == ["NAG 0.99", "SGD"] and "clipped" in labels[2]
    cfg = S._rnn_config(S.get_config(True)["memorization"], 0.99, 0.01, 0, clip=1.0)
    assert (
        cfg.clip_grad_norm == 1.0
        and S._rnn_config(cfg.replace(clip_grad_norm=None), 0.0, 0.03, 0).clip_grad_norm is None
    )


def test_hf_comparisons_are_at_equal_seconds_and_need_a_long_enough_hf_run():
    nag = [
        {"wall_s": 0.0, "train_error": 22.0},
        {"wall_s": 4.0, "train_error": 15.0},
        {"wall_s": 8.0, "train_error": 10.0},
    ]
    hf = [
        {"wall_s": 0.0, "train_error": 250.0},
        {"wall_s": 3.0, "train_error": 30.0},
        {"wall_s": 6.0, "train_error": 9.0},
    ]
    # HF's run is the shorter: both are read at 6 s (NAG's last evaluation by then is at 4 s)
    assert S.equal_time_errors(nag, hf) == (6.0, 15.0, 9.0)
    assert S.equal_time_errors(nag, hf + [{"wall_s": 20.0, "train_error": 5.0}]) == (8.0, 10.0, 9.0)
    assert S.solve_time_claim(8.0, float("inf"), 12.0)  # HF ran longer and did not solve
    assert not S.solve_time_claim(8.0, float("inf"), 5.0)  # HF stopped before NAG's time: undecided, not a pass
    assert not S.solve_time_claim(8.0, 6.0, 6.0) and S.solve_time_claim(5.0, 6.0, 6.0)
    assert not S.solve_time_claim(float("inf"), float("inf"), 100.0)
