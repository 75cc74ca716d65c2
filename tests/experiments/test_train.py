"""train(config): deterministic, resumable to the same numbers, and divergence is recorded."""

import json

import pytest

from inertia.experiments.config import Config, ConfigError, from_dict
from inertia.experiments.store import read_jsonl
from inertia.experiments.train import deterministic, train


def small(**over):
    cfg = Config(
        experiment="t",
        data={"name": "curves", "n": 200, "n_test": 50},
        model={"name": "deep_autoencoder", "sizes": [784, 32, 16]},
        init={"scheme": "sparse", "fan_in": 15, "std": 1.0},
        schedule={"name": "sutskever_momentum", "mu_max": 0.99, "period": 5},
        steps=30,
        batch_size=50,
        eval_every=10,
    )
    cfg.optimizer.lr = 0.01
    cfg.optimizer.nesterov = True
    return cfg.replace(**over)


def test_same_config_and_seed_give_identical_metrics():
    a, b = train(small()), train(small())
    assert a.status == b.status == "completed"
    assert deterministic(a) == deterministic(b)


def test_training_lowers_the_loss(tmp_path):
    res = train(small(steps=60), tmp_path / "run")
    metrics = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [0, 10, 20, 30, 40, 50, 60]
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
    assert res.status == "completed"


def test_resume_reproduces_the_uninterrupted_run_exactly(tmp_path):
    full = train(small(), tmp_path / "full")
    part = train(small(), tmp_path / "resumed", stop_after=20)
    assert part.status == "running"
    resumed = train(small(), tmp_path / "resumed", resume=True)
    assert deterministic(resumed) == deterministic(full)
    assert [deterministic(m) for m in read_jsonl(tmp_path / "resumed" / "metrics.jsonl")] == [
        deterministic(m) for m in read_jsonl(tmp_path / "full" / "metrics.jsonl")
    ]


def test_wall_s_grows_and_carries_over_a_resume(tmp_path):
    part = train(small(), tmp_path / "run", stop_after=20)
    before = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    train(small(), tmp_path / "run", resume=True)
    walls = [m["wall_s"] for m in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert part.status == "running" and len(walls) == 4
    assert all(b > a for a, b in zip(walls, walls[1:], strict=False))  # monotone across the resume too
    assert walls[2] == before[2]["wall_s"]


def test_stop_when_ends_the_run_at_the_first_true_evaluation(tmp_path):
    # the task is solved once test error < 0.04: with a lr of 0 it never is, so the run goes on;
    # a metric that is true from the start (train_batch_loss is nan at update 0, truthy) stops at 0
    cfg = small(stop_when="train_batch_loss")
    res = train(cfg, tmp_path / "run")
    assert res.status == "completed" and res.step == 0 and "stopped at update 0" in res.message
    never = train(
        small(
            stop_when="test_solved",
            **{
                "data": {"name": "addition", "n": 64, "seq_len": 6, "n_test": 32},
                "model": {"name": "tanh_rnn", "input_size": 2, "hidden_size": 8, "output_size": 1, "output": "last"},
                "init": {"scheme": "normal", "std": 0.1},
                "optimizer.lr": 0.0,
                "schedule": None,
                "batch_size": 16,
            },
        )
    )
    assert never.status == "completed" and never.step == 30 and never["test_solved"] is False


def test_stop_when_solved_stops_a_learnable_task_early():
    from inertia.experiments.config import from_dict as fd

    cfg = fd(
        dict(
            experiment="t",
            data={"name": "addition", "n": 256, "seq_len": 3, "n_test": 128},
            model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 16, "output_size": 1, "output": "last"},
            init={"scheme": "normal", "std": 0.3},
            optimizer={"name": "momentum", "lr": 0.05, "momentum": 0.9},
            steps=3000,
            batch_size=32,
            eval_every=25,
            stop_when="test_solved",
        )
    )
    res = train(cfg)
    assert res.status == "completed" and res["test_solved"] is True and res.step < 3000
    assert res.step % 25 == 0 and "test_solved is true" in res.message


def test_stop_when_names_a_missing_metric_before_training():
    with pytest.raises(ConfigError, match="'test_accuracy' is not an evaluation metric.*train_loss"):
        train(small(stop_when="test_accuracy"))
    with pytest.raises(ConfigError, match="stop_when must be null or the name"):
        small(stop_when=3)


def test_a_non_finite_loss_ends_the_run_as_diverged(tmp_path):
    cfg = Config(
        experiment="div",
        data={"name": "deep_linear_regression", "d_in": 32, "n": 16, "d_out": 4},
        model={"name": "deep_linear", "d_in": 32, "width": 16, "depth": 3, "d_out": 4},
        init={"scheme": "normal", "std": 1.0},
        steps=200,
        batch_size=16,
        eval_every=50,
    )
    cfg.optimizer.lr = 10.0
    res = train(cfg, tmp_path / "run")
    assert res.status == "diverged"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "diverged" and "diverged" in summary["message"]
    assert read_jsonl(tmp_path / "run" / "metrics.jsonl")  # what was recorded stays


def test_rnn_task_reports_solved_and_monitor_records(tmp_path):
    cfg = Config(
        experiment="rnn",
        data={"name": "addition", "n": 100, "seq_len": 10, "n_test": 50},
        model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 16, "output_size": 1, "output": "last"},
        init={"scheme": "normal", "std": 0.1, "rules": {"weight_hh": ["echo_state", {"spectral_radius": 1.1}]}},
        steps=10,
        batch_size=20,
        eval_every=5,
        monitor={"quantities": ["layer_stats", "hessian_trace"], "every": 5},
    )
    res = train(from_dict(cfg.to_dict()), tmp_path / "run")
    assert "test_solved" in res and isinstance(res["test_error"], float)
    assert len(read_jsonl(tmp_path / "run" / "diagnostics.jsonl")) == 2


def test_unknown_registry_names_are_config_errors():
    with pytest.raises(ConfigError, match=r"data.name: unknown name 'curvez'; accepted: .*curves"):
        small(**{"data.name": "curvez"})
    with pytest.raises(ConfigError, match=r"init.scheme: unknown name 'xavier_gaussian'"):
        small(**{"init.scheme": "xavier_gaussian"})


def test_monitor_layer_stats_see_only_the_training_batch_not_evaluation_passes(tmp_path):
    # eval_every == monitor.every: every recorded step follows an evaluation, whose forward passes
    # (on up to 2000 train and test examples) must not reach the records
    cfg = from_dict(
        dict(
            experiment="mon",
            data={"name": "curves", "n": 120, "n_test": 40},
            model={"name": "deep_autoencoder", "sizes": [784, 16]},
            init={"scheme": "glorot_uniform"},
            steps=6,
            batch_size=20,
            eval_every=3,
            monitor={"quantities": ["layer_stats"], "every": 3},
        )
    )
    train(cfg, tmp_path / "run")
    recs = [json.loads(line) for line in (tmp_path / "run" / "diagnostics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [0, 3]  # updates 0..5
    for r in recs:
        keys = [(x["layer"], x["kind"]) for x in r["layers"]]
        assert len(keys) == len(set(keys)), keys  # one record per layer and kind: the training batch's
        acts = [x for x in r["layers"] if x["kind"] == "activation"]
        assert all(x["numel"] == 20 * 16 or x["numel"] == 20 * 784 for x in acts)


def test_denormals_are_flushed_during_a_run_and_kept_after():
    import torch

    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals (torch.set_flush_denormal needs SSE3 on x86)")
    torch.set_flush_denormal(False)
    tiny = torch.tensor([1e-39])  # a float32 denormal
    seen = []
    train(small(steps=10, eval_every=10), progress=lambda *a: seen.append(float(tiny * 1.0)))
    assert seen == [0.0]  # flushed inside the run (the slow path of x86 matrix products)
    assert float(tiny * 1.0) > 0  # PyTorch's default is back afterwards


def test_clip_grad_norm_bounds_each_update_and_reports_the_norms(tmp_path):
    import torch

    from inertia.experiments import components

    cfg = small(
        steps=1, eval_every=1, clip_grad_norm=1e-3, schedule=None, optimizer={"name": "sgd", "lr": 0.5, "momentum": 0.0}
    )
    res = train(cfg, tmp_path / "run")
    assert res["clipped_steps"] == 1 and res["max_grad_norm"] > 1e-3
    # rebuild theta_0 as train() does; after one SGD step theta moved by lr * clip exactly
    torch.manual_seed(cfg.seed)
    data = components.build_data(cfg)
    model = components.build_model(cfg, data)
    components.apply_init(model, cfg, generator=torch.Generator().manual_seed(cfg.seed))
    theta1 = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    moved = sum(float((theta1[k] - v).pow(2).sum()) for k, v in model.state_dict().items()) ** 0.5
    assert moved == pytest.approx(0.5 * 1e-3, rel=1e-3)
    unclipped = train(cfg.replace(clip_grad_norm=1e6))
    assert unclipped["clipped_steps"] == 0 and unclipped["max_grad_norm"] == pytest.approx(res["max_grad_norm"])
    assert "max_grad_norm" not in train(small(steps=1, eval_every=1))


def test_resume_with_clipping_and_checkpoints_between_evaluations_is_exact(tmp_path):
    cfg = small(clip_grad_norm=0.5, checkpoint_every=5, eval_every=10)
    full = train(cfg, tmp_path / "full")
    train(cfg, tmp_path / "resumed", stop_after=15)  # checkpoint mid-way between evaluations
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    assert full["clipped_steps"] > 0 and deterministic(resumed) == deterministic(full)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"clip_grad_norm": 0}, "clip_grad_norm must be in"),
        ({"clip_grad_norm": -1.0}, "clip_grad_norm must be in"),
        (
            {"clip_grad_norm": 1.0, "schedule": None, "optimizer": {"name": "hessian_free", "lr": 1.0}},
            "clip_grad_norm is for first-order optimizers",
        ),
    ],
)
def test_bad_clip_grad_norm_is_named(over, match):
    with pytest.raises(ConfigError, match=match):
        small(**over)


def test_monitor_probe_records_test_batch_statistics_without_changing_training(tmp_path):
    plain = train(small())
    probed = train(small(**{"monitor": {"quantities": ["layer_stats"], "every": 10, "probe": 20}}), tmp_path / "run")
    assert deterministic(probed) == deterministic(plain)
    recs = read_jsonl(tmp_path / "run" / "diagnostics.jsonl")
    assert [r["step"] for r in recs] == [0, 10, 20] and all(r["layers"] for r in recs)
    assert "probe" not in small().to_dict()["monitor"]  # the default leaves config hashes as they were
    with pytest.raises(ConfigError, match="monitor.probe must be"):
        small(**{"monitor": {"quantities": ["layer_stats"], "probe": -1}})


def test_generated_data_is_cached_per_process_and_handed_out_as_copies():
    from inertia.experiments import components

    cfg = small()
    a, b = components.build_data(cfg), components.build_data(cfg)
    assert torch_equal(a.x_train, b.x_train) and a.x_train is not b.x_train
    assert a.x_train is a.y_train  # an autoencoder's inputs are its targets, still one tensor
    a.x_train.zero_()  # a caller changing its copy does not change the next run's data
    c = components.build_data(cfg)
    assert torch_equal(c.x_train, b.x_train) and float(c.x_train.abs().sum()) > 0
    for seed in range(6):  # the cache stays bounded
        components.build_data(cfg.replace(seed=seed))
    assert len(components._GENERATED) <= components._GENERATED_MAX
    other = components.build_data(cfg.replace(seed=1))
    assert not torch_equal(other.x_train, b.x_train)  # keyed on the seed


def torch_equal(x, y):
    import torch

    return bool(torch.equal(x, y))
