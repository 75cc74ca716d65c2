"""``train_data_parallel`` / ``inertia run --nproc N``: N gloo processes on 1/N of every batch give
one process's run (parameters, velocity, metrics), rank 0 writes the folder, and a run stopped
midway resumes, with another number of processes, to the uninterrupted run."""

import json
import subprocess
import sys

import pytest
import torch

from inertia.experiments.config import ConfigError, from_dict
from inertia.experiments.train import check_data_parallel, train, train_data_parallel

TIMEOUT_S = 120


def config(**over):
    cfg = from_dict(
        dict(
            experiment="dp",
            data={"name": "curves", "n": 120, "n_test": 40},
            model={"name": "deep_autoencoder", "sizes": [784, 24, 6]},
            init={"scheme": "glorot_uniform"},
            optimizer={"name": "momentum", "lr": 0.01, "nesterov": True},
            schedule={"name": "sutskever_momentum", "mu_max": 0.99, "period": 5},
            steps=30,
            batch_size=40,
            eval_every=10,
            dtype="float64",
        )
    )
    return from_dict({**cfg.to_dict(), **over})


def _state(run_dir):
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(a, b):
    sa, sb = _state(a), _state(b)
    assert sa["step"] == sb["step"]
    for k, v in sa["model"].items():
        torch.testing.assert_close(sb["model"][k], v, rtol=1e-9, atol=1e-12)
    for i, st in sa["optimizer"]["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                torch.testing.assert_close(sb["optimizer"]["state"][i][k], v, rtol=1e-9, atol=1e-12)
    ma, mb = _metrics(a), _metrics(b)
    assert [m["step"] for m in ma] == [m["step"] for m in mb]
    for x, y in zip(ma, mb, strict=True):
        for k in ("train_loss", "test_loss", "train_batch_loss"):
            if isinstance(x.get(k), float) and x[k] == x[k]:
                assert y[k] == pytest.approx(x[k], rel=1e-9), k


def test_two_processes_train_what_one_process_trains(tmp_path):
    one = train(config(), tmp_path / "one")
    two = train_data_parallel(config(), tmp_path / "two", 2, timeout_s=TIMEOUT_S)
    assert two.status == one.status == "completed" and two.step == 30
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-9)
    _assert_same_run(tmp_path / "one", tmp_path / "two")
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_a_stopped_run_resumes_with_another_number_of_processes(tmp_path):
    train(config(), tmp_path / "whole")
    part = train_data_parallel(config(), tmp_path / "split", 2, stop_after=20, timeout_s=TIMEOUT_S)
    assert part.status == "running" and part.step == 20
    train_data_parallel(config(), tmp_path / "split", 4, resume=True, timeout_s=TIMEOUT_S)
    _assert_same_run(tmp_path / "whole", tmp_path / "split")


def test_configs_that_cannot_split_are_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="batch_size 40 does not split over 3 processes"):
        train_data_parallel(config(), tmp_path / "r", 3)
    with pytest.raises(ConfigError, match="Monitor"):
        check_data_parallel(config(monitor={"quantities": ["layer_stats"], "every": 5}), 2)
    with pytest.raises(ConfigError, match="nproc must be a positive integer, got 0"):
        train_data_parallel(config(), tmp_path / "r", 0)
    with pytest.raises(ConfigError, match="needs an initialized torch.distributed process group"):
        train(config(), data_parallel=True)
    assert not (tmp_path / "r").exists()


def test_inertia_run_nproc_trains_data_parallel_and_resumes(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(config().to_dict()))
    base = [sys.executable, "-m", "inertia", "run", str(cfg), "--out", str(tmp_path / "o"), "--run-id", "r"]
    res = subprocess.run(base + ["--nproc", "2"], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert res.returncode == 0, res.stderr
    assert "completed at update 30" in res.stdout and "(2 processes)" in res.stderr
    train(config(), tmp_path / "one")
    _assert_same_run(tmp_path / "one", tmp_path / "o" / "dp" / "r")
    bad = subprocess.run(base + ["--nproc", "7"], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: batch_size 40 does not split over 7 processes; make it a multiple"
    ]
