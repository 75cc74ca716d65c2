"""train_stacked: K runs trained as one equal the same runs trained alone by train(), including the
optimizer state, the schedules, clipping, early stops, divergence and resume, in either direction."""

import pytest
import torch

from inertia.experiments.config import ConfigError, from_dict
from inertia.experiments.stacked import group_stackable, stack_key, train_stacked
from inertia.experiments.store import load_checkpoint, read_jsonl
from inertia.experiments.sweep import run_configs
from inertia.experiments.train import deterministic, train

RNN = dict(
    data={"name": "addition", "n": 200, "seq_len": 6, "n_test": 50},
    model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 8, "output_size": 1, "output": "last"},
    init={"scheme": "normal", "std": 0.3},
    steps=24,
    eval_every=6,
    batch_size=20,
    dtype="float64",
)
AE = dict(
    data={"name": "curves", "n": 120, "n_test": 40},
    model={"name": "deep_autoencoder", "sizes": [784, 32, 16]},
    init={"scheme": "sparse", "fan_in": 15, "std": 1.0},
    loss="sum_squared",
    steps=20,
    eval_every=5,
    batch_size=30,
    dtype="float64",
)


def nag(lr=0.01, mu_max=0.99, **over):
    return {
        "optimizer": {"name": "momentum", "lr": lr, "momentum": 0.0, "nesterov": True},
        "schedule": {"name": "sutskever_momentum", "mu_max": mu_max, "period": 4},
        **over,
    }


def cm(lr=0.02, mu=0.9, **over):
    return {"optimizer": {"name": "momentum", "lr": lr, "momentum": mu, "nesterov": False}, **over}


def sgd(lr=0.05, **over):
    return {"optimizer": {"name": "sgd", "lr": lr}, **over}


def configs(base, *variants):
    return [from_dict({**base, **v}) for v in variants]


def rnn_table():
    """A table's worth of runs: NAG and CM with schedules, SGD, weight decay, clipping, an lr schedule."""
    return configs(
        RNN,
        nag(seed=0),
        nag(lr=0.005, mu_max=0.995, seed=1),
        cm(seed=2, clip_grad_norm=0.05),
        sgd(seed=3),
        cm(seed=4, lr_schedule={"name": "step_decay", "init": 0.03, "factor": 0.5, "every": 7}),
        {**cm(seed=5), "optimizer": {"name": "momentum", "lr": 0.02, "momentum": 0.9, "weight_decay": 0.01}},
    )


def assert_same_run(folder_a, folder_b, rtol=1e-9, atol=1e-10):
    """Two run folders hold the same run: metrics at every evaluation, final parameters, velocity."""
    ma, mb = (read_jsonl(f / "metrics.jsonl") for f in (folder_a, folder_b))
    assert [m["step"] for m in ma] == [m["step"] for m in mb]
    for a, b in zip(ma, mb, strict=True):
        for key, va in deterministic(a).items():
            if isinstance(va, float):
                assert va == pytest.approx(b[key], rel=rtol, abs=atol, nan_ok=True), (key, a["step"])
            else:
                assert va == b[key], key
    ca, cb = (load_checkpoint(f / "checkpoint.pt") for f in (folder_a, folder_b))
    assert ca["step"] == cb["step"]
    for name, pa in ca["model"].items():
        torch.testing.assert_close(pa, cb["model"][name], rtol=rtol, atol=atol)
    va = _velocities(ca["optimizer"])
    vb = _velocities(cb["optimizer"])
    for x, y in zip(va, vb, strict=True):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)
    assert ca["optimizer"]["param_groups"][0].get("step") == cb["optimizer"]["param_groups"][0].get("step")


def _velocities(opt_state: dict) -> list:
    """Momentum's v = -k d of every parameter, in parameter order (other optimizers: their state
    tensors as stored)."""
    out = []
    for i in sorted(opt_state["state"]):
        st = opt_state["state"][i]
        if "velocity_scale" in st:
            out.append(-st["velocity_scale"] * st["velocity_direction"])
        else:
            out.extend(v for _, v in sorted(st.items()) if isinstance(v, torch.Tensor))
    return out


def train_alone(cfgs, root):
    for i, c in enumerate(cfgs):
        train(c, root / f"alone{i}")


@pytest.mark.parametrize("base,table", [(RNN, rnn_table), (AE, lambda: configs(AE, nag(seed=0), cm(seed=0), sgd()))])
def test_a_stacked_run_equals_the_same_run_alone(tmp_path, base, table):
    cfgs = table()
    results = train_stacked(cfgs, [tmp_path / f"stacked{i}" for i in range(len(cfgs))])
    train_alone(cfgs, tmp_path)
    assert [r.status for r in results] == ["completed"] * len(cfgs)
    for i in range(len(cfgs)):
        assert_same_run(tmp_path / f"stacked{i}", tmp_path / f"alone{i}")


def test_stacked_float32_runs_match_alone_to_float32_tolerance(tmp_path):
    cfgs = [c.replace(dtype="float32") for c in rnn_table()[:3]]
    train_stacked(cfgs, [tmp_path / f"stacked{i}" for i in range(3)])
    train_alone(cfgs, tmp_path)
    for i in range(3):
        assert_same_run(tmp_path / f"stacked{i}", tmp_path / f"alone{i}", rtol=2e-4, atol=1e-6)


def test_a_run_that_diverges_leaves_the_stack_and_the_others_are_unchanged(tmp_path):
    cfgs = configs(RNN, nag(seed=0), cm(lr=1e300, mu=0.99, seed=1), sgd(seed=2))
    results = train_stacked(cfgs, [tmp_path / f"stacked{i}" for i in range(3)])
    alone = [train(c, tmp_path / f"alone{i}") for i, c in enumerate(cfgs)]
    assert [r.status for r in results] == [a.status for a in alone] == ["completed", "diverged", "completed"]
    assert results[1].step == alone[1].step and results[1].message == alone[1].message
    for i in (0, 2):
        assert_same_run(tmp_path / f"stacked{i}", tmp_path / f"alone{i}")


def test_runs_with_fewer_updates_leave_the_stack_when_they_end(tmp_path):
    cfgs = configs(RNN, nag(seed=0), nag(seed=1, steps=12), sgd(seed=2, steps=30))
    results = train_stacked(cfgs, [tmp_path / f"stacked{i}" for i in range(3)])
    alone = [train(c, tmp_path / f"alone{i}") for i, c in enumerate(cfgs)]
    assert [r.step for r in results] == [a.step for a in alone] == [24, 12, 30]
    for i in range(3):
        assert_same_run(tmp_path / f"stacked{i}", tmp_path / f"alone{i}")


def test_stop_when_ends_a_run_inside_the_stack(tmp_path):
    cfgs = configs(RNN, nag(seed=0, stop_when="test_solved"), sgd(seed=1))
    cfgs[0] = cfgs[0].replace(**{"data.seq_len": 2, "steps": 300, "eval_every": 30, "optimizer.lr": 0.05})
    cfgs[1] = cfgs[1].replace(**{"data.seq_len": 2, "steps": 300, "eval_every": 30})
    results = train_stacked(cfgs, [tmp_path / f"stacked{i}" for i in range(2)])
    alone = [train(c, tmp_path / f"alone{i}") for i, c in enumerate(cfgs)]
    assert results[0].step == alone[0].step < 300 and "test_solved" in results[0].message
    for i in range(2):
        assert_same_run(tmp_path / f"stacked{i}", tmp_path / f"alone{i}")


def test_a_paused_stack_resumes_to_the_uninterrupted_run(tmp_path):
    cfgs = rnn_table()
    dirs = [tmp_path / f"stacked{i}" for i in range(len(cfgs))]
    paused = train_stacked(cfgs, dirs, stop_after=9)  # between evaluations and checkpoints
    assert {r.status for r in paused} == {"running"}
    train_stacked(cfgs, dirs, resume=True)
    train_alone(cfgs, tmp_path)
    for i in range(len(cfgs)):
        assert_same_run(dirs[i], tmp_path / f"alone{i}")


def test_a_stacked_checkpoint_resumes_alone_and_a_lone_checkpoint_resumes_stacked(tmp_path):
    cfgs = rnn_table()[:3]
    train_stacked(cfgs, [tmp_path / f"s{i}" for i in range(3)], stop_after=12)
    for i, c in enumerate(cfgs):  # train() continues what the stack began
        train(c, tmp_path / f"s{i}", resume=True)
    # the other way, with runs at different updates: 6 and 18 alone, one fresh
    train(cfgs[0], tmp_path / "m0", stop_after=6)
    train(cfgs[1], tmp_path / "m1", stop_after=18)
    train_stacked(cfgs, [tmp_path / f"m{i}" for i in range(3)], resume=True)
    train_alone(cfgs, tmp_path)
    for i in range(3):
        assert_same_run(tmp_path / f"s{i}", tmp_path / f"alone{i}")
        assert_same_run(tmp_path / f"m{i}", tmp_path / f"alone{i}")


def test_stacks_group_runs_by_their_shared_fields():
    cfgs = {
        "a": from_dict({**RNN, **nag(seed=0)}),
        "b": from_dict({**RNN, **sgd(seed=1)}),
        "c": from_dict({**RNN, **nag(seed=0), "batch_size": 10}),
        "hf": from_dict({**RNN, "optimizer": {"name": "hessian_free", "lr": 1.0}}),
        "d": from_dict({**RNN, **cm(seed=3)}),
    }
    assert stack_key(cfgs["hf"]) is None
    assert group_stackable(cfgs) == [["a", "b", "d"], ["c"], ["hf"]]
    assert group_stackable(cfgs, max_stack=2) == [["a", "b"], ["d"], ["c"], ["hf"]]


def test_runs_that_cannot_share_a_stack_are_refused_before_any_work(tmp_path):
    a, b = configs(RNN, nag(), nag(batch_size=10))
    with pytest.raises(ConfigError, match="must share data, model, loss, batch_size"):
        train_stacked([a, b], [tmp_path / "a", tmp_path / "b"])
    hf = from_dict({**RNN, "optimizer": {"name": "hessian_free", "lr": 1.0}})
    with pytest.raises(ConfigError, match="'hessian_free'.*cannot be stacked"):
        train_stacked([a, hf])
    with pytest.raises(ConfigError, match="one run folder per config, got 1 for 2"):
        train_stacked([a, a], [tmp_path / "a"])
    with pytest.raises(ConfigError, match="at least one config"):
        train_stacked([])
    assert not (tmp_path / "a").exists()


def test_the_stacked_sweep_backend_writes_what_the_local_pool_writes(tmp_path):
    cfgs = dict(zip(["nag", "cm", "sgd"], rnn_table()[:2] + [rnn_table()[3]], strict=True))
    cfgs["hf"] = from_dict({**RNN, "optimizer": {"name": "hessian_free", "lr": 1.0}, "steps": 3, "eval_every": 3})
    stacked = run_configs(cfgs, out=tmp_path, name="stacked", backend="stacked", workers=1)
    local = run_configs(cfgs, out=tmp_path, name="local", backend="local", workers=1)
    assert [t["id"] for t in stacked.trials] == [t["id"] for t in local.trials]
    for ts, tl in zip(stacked.trials, local.trials, strict=True):
        assert ts["status"] == tl["status"] == "completed"
        assert_same_run(stacked.directory / "trials" / ts["id"], local.directory / "trials" / tl["id"])
