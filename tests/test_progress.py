"""Progress of long work: plain lines with the time left off a terminal, throttled, nothing when
quiet, and reported from inside a pool of runs through the current reporter."""

import io

import pytest

from inertia import progress as P
from inertia.experiments.config import from_dict
from inertia.experiments.sweep import run_configs


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_plain_lines_say_done_of_total_elapsed_and_time_left():
    out, clock = io.StringIO(), Clock()
    r = P.Reporter("reproduce x", stream=out, tty=False, every=10, clock=clock)
    clock.t = 30
    r.update(1, 4, stage="grid")  # the stage's clock starts at its first update
    clock.t = 60
    r.update(2, 4, stage="grid")
    lines = out.getvalue().splitlines()
    assert "reproduce x / grid: 1/4 runs, 0s elapsed" in lines[0]
    assert "reproduce x / grid: 2/4 runs, 30s elapsed, about 30s left" in lines[1]


def test_lines_are_throttled_but_the_last_one_of_a_stage_is_printed():
    out, clock = io.StringIO(), Clock()
    r = P.Reporter("w", stream=out, tty=False, every=10, clock=clock)
    for k in range(1, 6):
        clock.t = k
        r.update(k, 5)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "1/5" in lines[0] and "5/5" in lines[1] and "left" not in lines[1]


def test_quiet_prints_nothing():
    out = io.StringIO()
    r = P.Reporter("w", stream=out, tty=False, quiet=True, every=0)
    r.update(1, 2)
    r.note("x")
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_that_clears_itself():
    out = io.StringIO()
    r = P.Reporter("w", stream=out, tty=True)
    r.update(1, 3, stage="s")
    r.update(3, 3, stage="s")
    r.close()
    assert r._bar is None


def test_a_pool_of_runs_reports_to_the_current_reporter(tmp_path):
    base = dict(
        experiment="p",
        data={"name": "deep_linear_regression", "d_in": 4, "n": 8, "d_out": 2},
        model={"name": "deep_linear", "d_in": 4, "width": 4, "depth": 2, "d_out": 2},
        steps=3,
        batch_size=8,
        eval_every=3,
    )
    configs = {f"lr{lr}": from_dict({**base, "optimizer": {"lr": lr}}) for lr in (0.01, 0.02)}
    out = io.StringIO()
    with P.reporting("reproduce p", stream=out, tty=False, every=0):
        run_configs(configs, out=tmp_path, name="stage-a", workers=1)
    text = out.getvalue()
    assert "reproduce p / stage-a: 2/2 runs" in text
    assert P.current() is None  # reset after the block


def test_a_heartbeat_repeats_the_last_line_during_one_long_run():
    import time

    out = io.StringIO()
    r = P.Reporter("w", stream=out, tty=False, every=0, heartbeat=0.05)
    r.update(1, 3, stage="s")
    time.sleep(0.4)  # nothing finishes: the log still shows life
    r.update(3, 3, stage="s")
    time.sleep(0.2)  # the stage is done: no more heartbeats
    r.close()
    lines = out.getvalue().splitlines()
    beats = [line for line in lines if "still running" in line]
    assert beats and all("w / s: 1/3 runs" in line for line in beats)
    assert "still running" not in lines[-1]


def test_a_heartbeat_gives_the_stages_time_and_the_time_left_as_of_now():
    import time

    now = [100.0]  # the reporter's clock; the heartbeat's own wait is real time
    out = io.StringIO()
    r = P.Reporter("w", stream=out, tty=False, every=0, heartbeat=0.05, clock=lambda: now[0])
    r.update(0, 3, stage="s")  # the stage starts at 100 s
    now[0] = 110.0
    r.update(1, 3, stage="s")  # 10 s for the first of 3: about 20 s left
    now[0] = 130.0  # nothing finishes for 20 s more
    time.sleep(0.3)
    r.close()
    lines = out.getvalue().splitlines()
    assert "w / s: 1/3 runs, 10s elapsed, about 20s left" in lines[1]
    beats = [line for line in lines if "still running" in line]
    # at the pace so far (30 s for one run), two runs take another 60 s
    assert beats and all(
        line.endswith("w / s: 1/3 runs, 30s elapsed, about 1m00s left (still running)") for line in beats
    )


@pytest.mark.slow
def test_run_sweep_and_report_commands_print_progress_lines_in_a_log_and_none_when_quiet(tmp_path):
    import json
    import subprocess
    import sys

    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "experiment": "p",
                "data": {"name": "deep_linear_regression", "d_in": 8, "n": 32, "d_out": 2},
                "model": {"name": "deep_linear", "d_in": 8, "width": 8, "depth": 2, "d_out": 2},
                "init": {"scheme": "orthogonal"},
                "steps": 20,
                "batch_size": 32,
                "eval_every": 10,
            }
        )
    )
    cli = [sys.executable, "-m", "inertia"]
    out = ["--out", str(tmp_path / "o")]
    commands = {
        "run p/": [*cli, "run", str(cfg), *out, "--run-id", "r"],
        "sweep s": [
            *cli,
            "sweep",
            str(cfg),
            "--grid",
            "optimizer.lr=0.1,0.01",
            "--metric",
            "train_loss",
            "--name",
            "s",
            *out,
        ],
        "report ": [*cli, "report", str(tmp_path / "o" / "p" / "s"), "--metric", "train_loss"],
    }
    for label, cmd in commands.items():
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # stderr is a pipe: plain lines
        assert res.returncode == 0, res.stderr
        lines = [line for line in res.stderr.splitlines() if label in line]
        assert lines and all(line.startswith("[") for line in lines), res.stderr
        assert any(" 2/2 " in line or "/20 updates" in line for line in lines), res.stderr
    quiet = subprocess.run(
        [*cli, "report", str(tmp_path / "o" / "p" / "s"), "--metric", "train_loss", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
