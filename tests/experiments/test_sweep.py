"""Sweeps: every grid point and seed runs, the table picks the best lr, a killed sweep resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from inertia.experiments.config import Config, ConfigError
from inertia.experiments.sweep import expand, parse_grid, run_configs, run_sweep, trial_id
from inertia.experiments.train import train


def base(**over):
    cfg = Config(
        experiment="sw",
        data={"name": "curves", "n": 100, "n_test": 20},
        model={"name": "deep_autoencoder", "sizes": [784, 16]},
        init={"scheme": "glorot_uniform"},
        steps=6,
        batch_size=50,
        eval_every=3,
    )
    return cfg.replace(**over)


def test_grid_times_seeds_expands_and_validates_every_point():
    trials = expand(base(), parse_grid(["optimizer.lr=0.1,0.01", "optimizer.momentum=0,0.9"]), seeds=2)
    assert len(trials) == 8 and len({t[0] for t in trials}) == 8
    with pytest.raises(ConfigError, match=r"grid point .*optimizer.momentum must be in \[0, 1\), got 1.5"):
        expand(base(), {"optimizer.momentum": [0.5, 1.5]})


def test_trial_ids_are_stable():
    assert trial_id({"optimizer.lr": 0.1, "seed": 0}) == trial_id({"seed": 0, "optimizer.lr": 0.1})


@pytest.mark.slow
def test_local_sweep_runs_every_trial_and_tables_the_best_lr(tmp_path):
    res = run_sweep(
        base(),
        {"optimizer.lr": [0.05, 1e-9], "optimizer.nesterov": [False, True]},
        seeds=1,
        out=tmp_path,
        name="s",
        workers=2,
    )
    assert len(res.trials) == 4 and all(t["status"] == "completed" for t in res.trials)
    rows = res.table("train_error")
    assert len(rows) == 2 and all(r["best_lr"] == 0.05 for r in rows)
    assert json.loads((tmp_path / "sw" / "s" / "results.json").read_text())["table"]


@pytest.mark.slow
def test_existing_sweep_needs_resume(tmp_path):
    run_sweep(base(), {"optimizer.lr": [0.01]}, out=tmp_path, name="s", workers=1)
    with pytest.raises(ConfigError, match="pass --resume"):
        run_sweep(base(), {"optimizer.lr": [0.01]}, out=tmp_path, name="s", workers=1)


@pytest.mark.slow
def test_kill_9_mid_sweep_then_resume_loses_nothing(tmp_path):
    cfg = base(steps=400, eval_every=50).to_dict()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [
        sys.executable,
        "-m",
        "inertia.cli",
        "sweep",
        str(tmp_path / "c.yaml"),
        "--grid",
        "optimizer.lr=0.01,0.02,0.03,0.04",
        "--workers",
        "2",
        "--name",
        "k",
        "--out",
        str(tmp_path),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, start_new_session=True)
    trials = tmp_path / "sw" / "k" / "trials"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until one trial finished and another is mid-run
        done = (
            [p for p in trials.glob("*/summary.json") if json.loads(p.read_text())["status"] == "completed"]
            if trials.exists()
            else []
        )
        if done and any(trials.glob("*/checkpoint.pt")):
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {
        p.parent.name: p.stat().st_mtime_ns
        for p in trials.glob("*/summary.json")
        if json.loads(p.read_text())["status"] == "completed"
    }
    assert finished_before
    res = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "sw" / "k" / "results.json").read_text())
    assert len(out["trials"]) == 4 and all(t["status"] == "completed" for t in out["trials"])
    for name, mtime in finished_before.items():  # finished trials were kept, not re-run
        assert (trials / name / "summary.json").stat().st_mtime_ns == mtime
    for p in trials.glob("*/metrics.jsonl"):  # nothing corrupt: every line parses, steps in order
        steps = [json.loads(line)["step"] for line in p.read_text().splitlines()]
        assert steps == sorted(steps) and steps[-1] == 400


@pytest.mark.slow
def test_ray_tune_backend_gives_the_local_pools_results(tmp_path):
    pytest.importorskip("ray.tune", reason="Ray is in the dev extra; install inertia[dev] or inertia[ray]")
    grid = {"optimizer.lr": [0.05, 0.01]}
    local = run_sweep(base(), grid, out=tmp_path / "local", name="s", workers=2)
    ray_res = run_sweep(base(), grid, out=tmp_path / "ray", name="s", backend="ray", workers=2)
    assert [t["status"] for t in ray_res.trials] == ["completed", "completed"]
    for a, b in zip(local.trials, ray_res.trials, strict=False):
        assert a["id"] == b["id"]
        assert a["metrics"]["train_loss"] == b["metrics"]["train_loss"]


@pytest.mark.slow
def test_diverged_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    cfg = Config(
        experiment="div",
        data={"name": "deep_linear_regression", "d_in": 32, "n": 16, "d_out": 4},
        model={"name": "deep_linear", "d_in": 32, "width": 16, "depth": 3, "d_out": 4},
        init={"scheme": "normal", "std": 1.0},
        steps=100,
        batch_size=16,
        eval_every=50,
    )
    res = run_sweep(cfg, {"optimizer.lr": [1e-4, 10.0]}, out=tmp_path, name="d", workers=2)
    status = {t["overrides"]["optimizer.lr"]: t["status"] for t in res.trials}
    assert status == {1e-4: "completed", 10.0: "diverged"}
    row = res.table("train_loss")[0]
    assert row["best_lr"] == 1e-4


@pytest.mark.slow
def test_run_configs_runs_unrelated_configs_in_one_pool_and_resumes(tmp_path):
    cfgs = {
        "ae": base(),
        "rnn": Config(
            experiment="sw",
            data={"name": "addition", "n": 40, "seq_len": 5, "n_test": 20},
            model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 8, "output_size": 1, "output": "last"},
            init={"scheme": "glorot_uniform"},
            steps=4,
            batch_size=20,
            eval_every=2,
        ),
    }
    res = run_configs(cfgs, out=tmp_path, name="pool", workers=2)
    by = {t["overrides"]["label"]: t for t in res.trials}
    assert set(by) == {"ae", "rnn"} and all(t["status"] == "completed" for t in res.trials)
    # each trial is exactly train(config) of its config
    assert by["ae"]["metrics"]["train_loss"] == pytest.approx(train(cfgs["ae"])["train_loss"], rel=1e-6)
    again = run_configs(cfgs, out=tmp_path, name="pool", resume=True)
    assert [t["metrics"] for t in again.trials] == [t["metrics"] for t in res.trials]
    # a changed config gets a new folder, never the old results
    changed = run_configs({"ae": base(**{"optimizer.lr": 0.5})}, out=tmp_path, name="pool", resume=True)
    assert changed.trials[0]["id"] != by["ae"]["id"]
    with pytest.raises(ConfigError, match="config 'bad'.*steps"):
        run_configs({"bad": dict(base().to_dict(), steps=-1)}, out=tmp_path, name="other")
    with pytest.raises(ConfigError, match="pass --resume"):
        run_configs(cfgs, out=tmp_path, name="pool")
