"""Ray Tune for real: every evaluation reaches Tune, ASHA stops poor trials, the best trial is the
local pool's, stopped trials are kept on resume, and a random search runs the same trials on both."""

import json

import pytest

from inertia.experiments.config import Config
from inertia.experiments.search import parse_space
from inertia.experiments.sweep import TuneOptions, run_sweep

pytest.importorskip("ray.tune", reason="Ray is in the dev extra; install inertia[dev] or inertia[ray]")
pytestmark = pytest.mark.slow


def base():
    return Config(
        experiment="tune",
        data={"name": "deep_linear_regression", "d_in": 16, "n": 64, "d_out": 4},
        model={"name": "deep_linear", "d_in": 16, "width": 16, "depth": 2, "d_out": 4},
        init={"scheme": "orthogonal"},
        steps=300,
        batch_size=64,
        eval_every=30,
    )


# the best rate first, the worst last: the later trials meet a filled rung and ASHA stops them
GRID = {"optimizer.lr": [0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4]}


def test_asha_stops_poor_trials_keeps_the_best_and_resume_keeps_them(tmp_path):
    local = run_sweep(base(), GRID, out=tmp_path / "local", name="s", workers=2)
    opts = TuneOptions(scheduler="asha", metric="train_loss", grace_period=60)
    ray_res = run_sweep(base(), GRID, out=tmp_path / "ray", name="s", backend="ray", workers=2, tune=opts)
    by_id = {t["id"]: t for t in local.trials}
    stopped = [t for t in ray_res.trials if t["status"] == "stopped"]
    assert stopped, [t["status"] for t in ray_res.trials]
    for t in stopped:  # stopped between evaluations, at a rung, with its metrics there
        assert 60 <= t["metrics"]["step"] < 300 and t["metrics"]["step"] % 30 == 0
        assert "stopped early by the asha scheduler at update" in t["message"]
        summary = json.loads((ray_res.directory / "trials" / t["id"] / "summary.json").read_text())
        assert summary["status"] == "stopped" and summary["final"]["step"] == t["metrics"]["step"]
        lines = (ray_res.directory / "trials" / t["id"] / "metrics.jsonl").read_text().splitlines()
        # the loss at the rung is the local pool's run at that update: the same run, cut
        local_curve = {
            r["step"]: r["train_loss"]
            for r in map(json.loads, (local.directory / "trials" / t["id"] / "metrics.jsonl").read_text().splitlines())
        }
        assert t["metrics"]["train_loss"] == local_curve[t["metrics"]["step"]]
        assert json.loads(lines[-1])["step"] >= t["metrics"]["step"]
    completed = [t for t in ray_res.trials if t["status"] == "completed"]
    for t in completed:  # trials run to the end equal the local pool's, bit for bit
        assert t["metrics"]["train_loss"] == by_id[t["id"]]["metrics"]["train_loss"]
        assert t["node"]
    best_local = local.table("train_loss")[0]
    best_ray = ray_res.table("train_loss")[0]
    assert best_ray["best_lr"] == best_local["best_lr"] == 0.03
    assert best_ray["mean"] == best_local["mean"]
    assert best_ray["stopped"] == len(stopped) and "stopped" not in best_local
    # resume: nothing left to run, the stopped trials stay stopped and untouched
    mtimes = {t["id"]: (ray_res.directory / "trials" / t["id"] / "summary.json").stat().st_mtime_ns for t in stopped}
    again = run_sweep(base(), GRID, out=tmp_path / "ray", name="s", backend="ray", workers=2, tune=opts, resume=True)
    assert [t["status"] for t in again.trials] == [t["status"] for t in ray_res.trials]
    for tid, mtime in mtimes.items():
        assert (ray_res.directory / "trials" / tid / "summary.json").stat().st_mtime_ns == mtime


def test_a_random_search_runs_the_same_trials_on_ray_as_on_the_local_pool(tmp_path):
    space = parse_space(["optimizer.lr=loguniform(1e-4,3e-2)"])
    cfg = base().replace(steps=40)
    kw = dict(space=space, samples=3, search_seed=7, name="r", workers=2)
    local = run_sweep(cfg, {}, out=tmp_path / "local", **kw)
    ray_res = run_sweep(cfg, {}, out=tmp_path / "ray", backend="ray", **kw)
    assert [t["id"] for t in ray_res.trials] == [t["id"] for t in local.trials]
    for a, b in zip(local.trials, ray_res.trials, strict=True):
        assert a["metrics"]["train_loss"] == b["metrics"]["train_loss"]


def test_a_ray_sweep_whose_driver_is_killed_resumes_to_the_local_pools_results(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(base().replace(steps=4000, eval_every=200).to_dict()))
    cmd = [sys.executable, "-m", "inertia", "sweep", str(cfg), "--grid", "optimizer.lr=0.01,0.003,0.001"]
    cmd += ["--metric", "train_loss", "--name", "k", "--workers", "2", "--quiet"]
    ray_cmd = cmd + ["--backend", "ray", "--out", str(tmp_path / "ray")]
    trials = tmp_path / "ray" / "tune" / "k" / "trials"
    proc = subprocess.Popen(ray_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(trials.glob("*/checkpoint.pt")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-trial
    proc.wait(timeout=60)
    assert any(trials.glob("*/checkpoint.pt")), "no trial had checkpointed before the kill"
    res = subprocess.run(ray_cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    local = subprocess.run(cmd + ["--out", str(tmp_path / "local")], capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stderr[-3000:]
    a = json.loads((tmp_path / "local" / "tune" / "k" / "results.json").read_text())["trials"]
    b = json.loads((tmp_path / "ray" / "tune" / "k" / "results.json").read_text())["trials"]
    assert [t["status"] for t in b] == ["completed"] * 3
    for x, y in zip(a, b, strict=True):
        assert x["id"] == y["id"] and x["metrics"]["train_loss"] == y["metrics"]["train_loss"]
