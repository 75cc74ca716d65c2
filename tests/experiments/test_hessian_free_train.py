"""train(config) with optimizer.name hessian_free: options validated, training works, resume is exact."""

import pytest

from inertia.experiments.config import Config, ConfigError
from inertia.experiments.store import read_jsonl
from inertia.experiments.train import deterministic, train


def tiny_hf(**over):
    cfg = Config(
        experiment="hf",
        data={"name": "curves", "n": 120, "n_test": 40},
        model={"name": "deep_autoencoder", "sizes": [784, 24, 6]},
        init={"scheme": "sparse", "fan_in": 6, "std": 1.0},
        steps=6,
        batch_size=60,
        eval_every=2,
    )
    cfg.optimizer.name = "hessian_free"
    cfg.optimizer.lr = 1.0
    cfg.optimizer.options = {"damping": 1.0, "cg_max_iter": 30, "curvature_fraction": 0.5}
    return cfg.replace(**over)


def test_hessian_free_trains_a_tiny_autoencoder(tmp_path):
    res = train(tiny_hf(), tmp_path / "run")
    assert res.status == "completed"
    metrics = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [0, 2, 4, 6]
    assert metrics[-1]["train_loss"] < 0.8 * metrics[0]["train_loss"]
    assert metrics[-1]["hf_curvature_products"] > metrics[1]["hf_curvature_products"] > 0
    assert metrics[-1]["hf_damping"] > 0


def test_hessian_free_resume_reproduces_the_uninterrupted_run(tmp_path):
    full = train(tiny_hf(), tmp_path / "full")
    part = train(tiny_hf(), tmp_path / "resumed", stop_after=3)
    assert part.status == "running"
    resumed = train(tiny_hf(), tmp_path / "resumed", resume=True)
    assert deterministic(resumed) == deterministic(full)
    assert [deterministic(m) for m in read_jsonl(tmp_path / "resumed" / "metrics.jsonl")] == [
        deterministic(m) for m in read_jsonl(tmp_path / "full" / "metrics.jsonl")
    ]


@pytest.mark.parametrize(
    "over,match",
    [
        (
            {"optimizer.options.cg_iters": 5},
            r"unknown optimizer.options \['cg_iters'\] for hessian_free; accepted: .*"
            r"cg_max_iter.*curvature_fraction",
        ),
        (
            {"optimizer.options.damping": -1},
            r"optimizer \(hessian_free\): damping must be a non-negative finite number",
        ),
        ({"optimizer.options.lr": 0.5}, r"optimizer.options.lr: set optimizer.lr instead"),
        ({"optimizer.options.curvature_fraction": 0}, r"optimizer.options.curvature_fraction must be in \(0, 1\]"),
        ({"schedule": {"name": "sutskever_momentum", "mu_max": 0.9}}, r"schedule is not used by hessian_free"),
        ({"optimizer.name": "momentum"}, r"optimizer.options is only for optimizer.name 'hessian_free'"),
    ],
)
def test_bad_hessian_free_options_are_config_errors(over, match):
    with pytest.raises(ConfigError, match=match):
        tiny_hf(**over)


def test_configs_without_options_keep_their_serialised_form():
    assert "options" not in Config().to_dict()["optimizer"]
    assert tiny_hf().to_dict()["optimizer"]["options"]["cg_max_iter"] == 30


def tiny_rnn_hf(structural: float, fraction: float = 0.5):
    cfg = Config(
        experiment="hf",
        data={"name": "addition", "n": 200, "seq_len": 8, "n_test": 100},
        model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 12, "output_size": 1, "output": "last"},
        init={"scheme": "normal", "std": 0.3},
        steps=4,
        batch_size=100,
        eval_every=2,
    )
    cfg.optimizer.name = "hessian_free"
    cfg.optimizer.lr = 1.0
    cfg.optimizer.options = {
        "damping": 1.0,
        "cg_max_iter": 30,
        "curvature_fraction": fraction,
        "structural_damping": structural,
    }
    return cfg.replace()


@pytest.mark.parametrize("fraction", [0.5, 1.0])  # a curvature subset, or the gradient batch's own graph
def test_structural_damping_trains_an_rnn_from_a_config(fraction):
    plain = train(tiny_rnn_hf(0.0, fraction))
    damped = train(tiny_rnn_hf(0.3, fraction))
    assert plain.status == damped.status == "completed"
    assert damped["train_loss"] < train(tiny_rnn_hf(0.3, fraction).replace(steps=0))["train_loss"]
    assert deterministic(damped) != deterministic(plain)  # the hidden-state term changed the steps


def test_structural_damping_needs_a_model_with_hidden_states():
    with pytest.raises(ConfigError, match="structural_damping needs a model that returns its hidden states"):
        train(tiny_hf(**{"optimizer.options.structural_damping": 0.3}))
