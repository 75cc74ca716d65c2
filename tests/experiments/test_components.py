"""A config is built piece by piece before a run starts (dry_build): whatever cannot be built,
or does not fit together, is a ConfigError naming the piece, raised before any run folder exists."""

import pytest

from inertia.experiments import components
from inertia.experiments.config import ConfigError, from_dict


def _cfg(**over):
    d = {
        "data": {"name": "curves", "n": 20, "n_test": 4},
        "model": {"name": "deep_autoencoder", "sizes": [784, 4]},
        "steps": 2,
        "batch_size": 10,
        "eval_every": 1,
    }
    d.update(over)
    return from_dict(d)


@pytest.mark.parametrize(
    "over,match",
    [
        (
            {"model": {"name": "deep_autoencoder", "sizes": [784, 0, 4]}},
            r"model 'deep_autoencoder': sizes must be at least two positive integers, got \[784, 0, 4\]",
        ),
        ({"data": {"name": "curves", "n": -5}}, r"data 'curves': n must be an integer >= 1, got -5"),
        (
            {"schedule": {"name": "sutskever_momentum", "mu_max": 0.9, "period": 0}},
            r"schedule 'sutskever_momentum': .*period",
        ),
        ({"init": {"scheme": "sparse", "fan_in": -1}}, r"init 'sparse': .*fan_in"),
        (
            {"lr_schedule": {"name": "constant", "value": -1}},
            r"optimizer 'momentum': lr must be a non-negative finite number \(schedule constant.* at step 0\), got -1",
        ),
        ({"monitor": {"quantities": ["layer_stats"], "params": ["no.such"]}}, r"monitor.params: \['no.such'\] are not"),
        (
            {"optimizer": {"name": "hessian_free", "lr": 1.0, "options": {"structural_damping": 0.1}}},
            r"structural_damping needs a model that returns its hidden states",
        ),
    ],
)
def test_a_piece_that_cannot_be_built_is_named(over, match):
    with pytest.raises(ConfigError, match=match):
        components.dry_build(_cfg(**over))


@pytest.mark.parametrize(
    "over,match",
    [
        (
            {"model": {"name": "deep_autoencoder", "sizes": [100, 4]}},
            r"model 'deep_autoencoder' does not take the inputs of data 'curves' \(shape \[784\] per example\)",
        ),
        (
            {"data": {"name": "digits"}, "model": {"name": "mlp", "sizes": [64, 5]}},
            r"model 'mlp' gives outputs of shape \[5\] per example; "
            r"data 'digits' has 10 classes, so it needs 10 outputs",
        ),
        (
            {"model": {"name": "mlp", "sizes": [784, 10]}},
            r"model 'mlp' gives outputs of shape \[10\] per example; the targets of data 'curves' have shape \[784\]",
        ),
        ({"loss": "cross_entropy"}, r"loss 'cross_entropy' does not fit model 'deep_autoencoder'"),
        (
            {"data": {"name": "addition", "n": 8}, "model": {"name": "mlp", "sizes": [2, 1]}},
            r"loss 'auto' does not fit model 'mlp' .*predictions must have shape",
        ),
    ],
)
def test_a_model_that_does_not_fit_the_data_is_refused_before_training(over, match):
    with pytest.raises(ConfigError, match=match):
        components.dry_build(_cfg(**over))


def test_stop_when_must_name_a_metric_of_the_run():
    with pytest.raises(
        ConfigError,
        match=r"stop_when 'test_solvd' is not an evaluation metric of this run; "
        r"its metrics are \['step', 'test_error'",
    ):
        components.dry_build(_cfg(stop_when="test_solvd"))


def test_dry_build_returns_the_metrics_train_records():
    from inertia.experiments.train import train

    cfg = _cfg(
        data={"name": "addition", "n": 8, "seq_len": 5, "n_test": 4},
        stop_when="test_solved",
        model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 3, "output_size": 1, "output": "last"},
        clip_grad_norm=1.0,
    )
    names = components.dry_build(cfg)
    assert "test_solved" in names and "max_grad_norm" in names
    assert sorted(names) == sorted(train(cfg))


def test_a_test_set_size_is_passed_to_sets_that_take_one():
    data = components.build_data(_cfg(data={"name": "mnist1d", "n_train": 40, "n_test": 10}))
    assert (data.n_train, data.x_test.shape[0]) == (40, 10)


GENERATED = [n for n in __import__("inertia.data", fromlist=["x"]).available() if n not in ("mnist", "cifar10")]
SMALL = {"deep_linear_regression": {"d_in": 8, "n": 4, "d_out": 2}, "mnist1d": {}, "digits": {}}


@pytest.mark.parametrize("name", GENERATED)
def test_a_config_builds_the_data_sets_registered_builder(name):
    import torch

    from inertia import data as D

    kw = SMALL.get(name, {"n": 6, "n_test": 3})
    data = components.build_data(_cfg(data={"name": name, **kw}, seed=7))
    ref = D.get(name).build(seed=7, **kw)
    assert data.kind == ref.kind
    for f in ("x_train", "y_train", "x_test", "y_test"):
        want = getattr(ref, f)
        assert torch.equal(getattr(data, f), want.float() if want.is_floating_point() else want), f


def test_a_config_without_sizes_uses_the_registrys_defaults_and_the_papers_T():
    from inertia import data as D

    data = components.build_data(_cfg(data={"name": "memorization5"}, seed=1))
    defaults = D.get("memorization5").defaults
    assert (data.n_train, data.x_test.shape[0]) == (defaults["n"], defaults["n_test"])
    assert data.x_train.shape[1] == D.DEFAULT_SEQ_LEN["memorization5"] + 10 == 210


def test_data_keywords_are_checked_against_the_builder_including_n_test():
    with pytest.raises(ConfigError, match=r"data 'curves': got an unexpected keyword argument 'm'; accepted: .*n_test"):
        _cfg(data={"name": "curves", "m": 3})
    with pytest.raises(ConfigError, match=r"data 'mnist': got an unexpected keyword argument 'seed'"):
        _cfg(data={"name": "mnist", "path": "x", "seed": 1})


def test_stop_when_is_checked_by_one_function_for_dry_build_and_train():
    components.check_stop_when(_cfg(stop_when="test_loss"), ["test_loss"])
    with pytest.raises(ConfigError, match=r"stop_when 'nope' is not an evaluation metric of this run"):
        components.check_stop_when(_cfg(stop_when="nope"), ["test_loss"])


def test_every_config_optimizer_has_a_training_step_strategy():
    from inertia.experiments.config import OPTIMIZERS
    from inertia.experiments.steps import STEPS

    assert STEPS.available() == sorted(OPTIMIZERS)


def test_every_config_loss_but_auto_is_a_loss_function():
    from inertia.experiments.config import LOSSES

    assert sorted(components.LOSS_FUNCTIONS) == sorted(set(LOSSES) - {"auto"})


def test_dry_build_names_the_metrics_a_hessian_free_run_records():
    from inertia.experiments.train import train

    cfg = _cfg(optimizer={"name": "hessian_free", "lr": 1.0, "options": {"cg_max_iter": 3}}, steps=1)
    names = components.dry_build(cfg)
    assert "hf_cg_iters" in names and sorted(names) == sorted(train(cfg))
