"""Sweeps that go wrong: failed trials, bad grids, changed configs on resume, two processes on one
folder, a killed main process, damaged files."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from inertia.cli import app
from inertia.experiments.config import Config, ConfigError
from inertia.experiments.sweep import SweepResult, expand, load_sweep, parse_grid, run_sweep

GRID = {"optimizer.lr": [0.05, 0.01]}


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


def broken(**over):
    """A config that validates but fails inside train (the model's input size is not the data's)."""
    return base(**{"model.sizes": [10, 16], **over})


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    run_sweep(base(), GRID, out=out, name="s", workers=2)
    return out / "sw" / "s"


@pytest.fixture
def sweep_copy(finished_sweep, tmp_path):
    """A private copy of a finished two-trial sweep: (out folder, sweep folder)."""
    shutil.copytree(finished_sweep, tmp_path / "sw" / "s")
    return tmp_path, tmp_path / "sw" / "s"


def _mtimes(root: Path) -> dict:
    return {p.relative_to(root): p.stat().st_mtime_ns for p in (root / "trials").rglob("*") if p.is_file()}


# --- item 14: failed trials ------------------------------------------------------------------


def _trial(lr, status, err=None, seed=0):
    metrics = {"train_error": err} if err is not None else {}
    return {
        "id": f"lr{lr}-s{seed}",
        "overrides": {"optimizer.lr": lr, "seed": seed},
        "status": status,
        "metrics": metrics,
        "message": "RuntimeError: boom" if status == "failed" else "",
    }


def test_table_never_ranks_failed_trials():
    res = SweepResult(
        Path("x"),
        [
            _trial(0.1, "failed"),
            _trial(0.1, "failed", seed=1),
            _trial(0.01, "completed", 0.5),
            _trial(0.01, "completed", 0.7, seed=1),
        ],
    )
    (row,) = res.table("train_error")
    assert row["best_lr"] == 0.01 and row["mean"] == pytest.approx(0.6) and row["seeds"] == 2
    assert row["failed"] == 2 and row["diverged"] == 0


def test_table_names_no_best_lr_when_every_trial_failed():
    res = SweepResult(Path("x"), [_trial(0.1, "failed"), _trial(0.01, "failed")])
    (row,) = res.table("train_error")
    assert row["best_lr"] is None and row["mean"] is None and row["failed"] == 2


@pytest.mark.slow
def test_sweep_result_says_how_many_trials_failed_and_why(tmp_path):
    res = run_sweep(broken(), GRID, out=tmp_path, name="f", workers=2)
    assert len(res.failed) == 2
    msg = res.failure_message()
    assert msg.startswith("2 of 2 trials failed") and "mat1 and mat2 shapes cannot be multiplied" in msg
    table = json.loads((tmp_path / "sw" / "f" / "results.json").read_text())["table"]
    assert table[0]["best_lr"] is None and table[0]["failed"] == 2


def test_sweep_command_exits_nonzero_when_a_trial_failed(tmp_path, monkeypatch):
    # a trial that fails inside train: configs that cannot train are refused by the dry build
    # before any trial starts, so the sweep's result is given here
    import inertia.experiments.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "run_sweep", lambda *a, **k: SweepResult(tmp_path, [_trial(0.01, "failed")]))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(base().to_dict()))
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(tmp_path / "c.yaml"),
            "--grid",
            "optimizer.lr=0.01",
            "--workers",
            "1",
            "--name",
            "f",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert res.exit_code == 1, res.output
    assert "1 of 1 trials failed" in res.output and "RuntimeError: boom" in res.output


def test_sweep_command_refuses_a_config_that_cannot_train_before_any_trial(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(broken().to_dict()))
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(tmp_path / "c.yaml"),
            "--grid",
            "optimizer.lr=0.01",
            "--workers",
            "1",
            "--name",
            "f",
            "--out",
            str(tmp_path),
            "--quiet",
        ],
    )
    assert res.exit_code == 2 and res.output.startswith("error: ") and "shapes cannot be multiplied" in res.output
    assert not (tmp_path / "sw").exists()


# --- item 15: grids --------------------------------------------------------------------------


def test_seed_values_in_a_grid_are_the_trials_seeds():
    trials = expand(base(), {"optimizer.lr": [0.1], "seed": [3, 7]})
    assert [cfg.seed for _, _, cfg in trials] == [3, 7]
    assert len({tid for tid, _, _ in trials}) == 2


def test_a_seed_grid_together_with_a_seed_count_is_refused():
    with pytest.raises(ConfigError, match=r"seeds are given twice.*\[3, 7\].*seeds=2"):
        expand(base(), {"seed": [3, 7]}, seeds=2)


@pytest.mark.parametrize(
    "entry, texts",
    [
        ("optimizer.lr=0.01,0.01", "'0.01' and '0.01'"),
        ("optimizer.lr=0.1,0.10", "'0.1' and '0.10'"),
        ("optimizer.lr=1,1.0", "'1' and '1.0'"),
    ],
)
def test_a_grid_value_listed_twice_is_refused(entry, texts):
    with pytest.raises(ConfigError, match=f"lists one value twice: {texts}"):
        parse_grid([entry])


def test_a_grid_key_given_twice_is_refused():
    with pytest.raises(ConfigError, match="grid key 'optimizer.lr' is given twice"):
        parse_grid(["optimizer.lr=0.1", "optimizer.lr=0.2"])


def test_expand_refuses_equal_values_in_a_grid_mapping():
    with pytest.raises(ConfigError, match=r"'optimizer.lr' lists the value 0.1 twice"):
        expand(base(), {"optimizer.lr": [0.1, 0.1]})


# --- item 16: resume compares the config -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, key",
    [
        (dict(base=base(steps=9)), "steps"),
        (dict(grid={"optimizer.lr": [0.05, 0.02]}), "grid"),
        (dict(seeds=2), "seeds"),
    ],
)
def test_resume_with_a_changed_sweep_is_refused_naming_the_keys(sweep_copy, change, key):
    out, root = sweep_copy
    before, meta = _mtimes(root), (root / "sweep.json").read_text()
    args = {"base": base(), "grid": GRID, "seeds": 1, **change}
    with pytest.raises(ConfigError, match=key):
        run_sweep(args["base"], args["grid"], args["seeds"], out=out, name="s", resume=True)
    assert (root / "sweep.json").read_text() == meta and _mtimes(root) == before


def test_resume_with_the_same_sweep_keeps_every_trial(sweep_copy):
    out, root = sweep_copy
    before = _mtimes(root)
    res = run_sweep(base(), GRID, out=out, name="s", resume=True)
    assert [t["status"] for t in res.trials] == ["completed", "completed"] and _mtimes(root) == before


# --- item 17: one process per sweep folder ---------------------------------------------------


def _sweep_in_subprocess(out: Path, name: str) -> subprocess.Popen:
    """A sweep of two long trials (two workers) in its own process."""
    script = textwrap.dedent(f"""
        from inertia.experiments.config import from_dict
        from inertia.experiments.sweep import run_sweep
        run_sweep(from_dict({base(steps=10**6, eval_every=10**5).to_dict()!r}), {GRID!r},
                  out={str(out)!r}, name={name!r}, workers=2)
        """)
    return subprocess.Popen([sys.executable, "-c", script])


def _wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate():
        time.sleep(0.2)


@pytest.mark.slow
def test_a_second_process_on_a_sweep_folder_gets_a_clear_error(tmp_path):
    root = tmp_path / "sw" / "s"
    first = _sweep_in_subprocess(tmp_path, "s")
    try:
        _wait_for(lambda: (root / "sweep.json").exists())  # written while holding the folder
        with pytest.raises(ConfigError, match=re.escape(f"{root} is in use by another process")):
            run_sweep(base(steps=10**6, eval_every=10**5), GRID, out=tmp_path, name="s", resume=True)
    finally:
        _kill_sweep(first)


# --- item 18: pool workers die with the sweep ------------------------------------------------


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_sweep(proc: subprocess.Popen) -> list[int]:
    """``kill -9`` a sweep process; return the pids of its pool workers still alive 10 s later
    (and then end them: they are this test's)."""
    workers = [p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    proc.kill()
    proc.wait()
    _wait_for(lambda: not any(_alive(p) for p in workers), timeout=10)
    left = [p for p in workers if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_pool_workers_exit_when_the_sweep_process_is_killed(tmp_path):
    proc = _sweep_in_subprocess(tmp_path, "k")
    try:
        _wait_for(lambda: len(list(tmp_path.glob("sw/k/trials/*/summary.json"))) == 2)  # both workers train
        assert len([p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]) == 2
    finally:
        left = _kill_sweep(proc)
    assert left == []


# --- item 20: damaged files ------------------------------------------------------------------


@pytest.mark.slow
def test_resume_reruns_trials_with_unreadable_files_and_keeps_the_others(tmp_path):
    grid = {"optimizer.lr": [0.05, 0.02, 0.01, 0.005]}
    first = run_sweep(base(), grid, out=tmp_path, name="s", workers=2)
    root = tmp_path / "sw" / "s"
    damaged, intact = [root / "trials" / t["id"] for t in first.trials[:3]], root / "trials" / first.trials[3]["id"]
    (damaged[0] / "summary.json").write_text('{"status": "compl')
    (damaged[1] / "config.json").write_text("{")
    with open(damaged[2] / "metrics.jsonl", "a") as f:
        f.write("garbage\n")
    intact_mtime = (intact / "summary.json").stat().st_mtime_ns
    with pytest.warns(UserWarning) as record:
        again = run_sweep(base(), grid, out=tmp_path, name="s", workers=2, resume=True)
    warned = " ".join(str(w.message) for w in record)
    assert all(str(d) in warned for d in damaged)
    assert [t["status"] for t in again.trials] == ["completed"] * 4
    assert [t["metrics"]["train_loss"] for t in again.trials] == [t["metrics"]["train_loss"] for t in first.trials]
    assert (intact / "summary.json").stat().st_mtime_ns == intact_mtime
    kept = root / "damaged"  # nothing a run wrote is lost: the damaged folders are kept aside
    assert (kept / damaged[0].name / "summary.json").read_text() == '{"status": "compl'
    assert (kept / damaged[1].name / "config.json").read_text() == "{"
    assert (kept / damaged[2].name / "metrics.jsonl").read_text().endswith("garbage\n")


def test_an_unreadable_sweep_json_is_named_kept_aside_and_rewritten_on_resume(sweep_copy):
    out, root = sweep_copy
    before = _mtimes(root)
    (root / "sweep.json").write_text('{"base": ')
    with pytest.warns(UserWarning, match="sweep.json: not valid JSON"):
        run_sweep(base(), GRID, out=out, name="s", resume=True)
    assert json.loads((root / "sweep.json").read_text())["grid"] == GRID
    assert (root / "damaged" / "sweep.json").read_text() == '{"base": '
    assert _mtimes(root) == before


def test_an_unreadable_sweep_json_still_refuses_a_changed_config_and_changes_nothing(sweep_copy):
    out, root = sweep_copy
    before = _mtimes(root)
    (root / "sweep.json").write_text('{"base": ')
    with pytest.raises(ConfigError, match=r"config.json.*steps"):  # the trials' own configs
        run_sweep(base(steps=9), GRID, out=out, name="s", resume=True)
    assert (root / "sweep.json").read_text() == '{"base": ' and _mtimes(root) == before


def test_an_unreadable_results_json_is_named_and_rebuilt_by_resume(sweep_copy):
    out, root = sweep_copy
    good = load_sweep(root).trials
    (root / "results.json").write_text('{"trials": [')
    with pytest.raises(ConfigError, match=r"results.json: not valid JSON.*--resume"):
        load_sweep(root)
    run_sweep(base(), GRID, out=out, name="s", resume=True)
    assert load_sweep(root).trials == good


def test_resume_removes_leftover_tmp_files_of_killed_writes(sweep_copy):
    out, root = sweep_copy
    trial = next((root / "trials").iterdir())
    leftovers = [root / ".results.json.abc123.tmp", trial / ".checkpoint.pt.xyz789.tmp"]
    for p in leftovers:
        p.write_bytes(b"half")
    run_sweep(base(), GRID, out=out, name="s", resume=True)
    assert not any(p.exists() for p in leftovers)
    assert math.isfinite(load_sweep(root).trials[0]["metrics"]["train_loss"])
