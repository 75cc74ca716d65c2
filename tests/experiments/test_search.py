"""Random search: spaces parse strictly, samples are seeded and in range, a random sweep resumes
to the same trials, and the command line refuses bad search options with one line."""

import json
import math
import random
import subprocess
import sys

import pytest

from inertia.experiments.config import Config, ConfigError
from inertia.experiments.search import Distribution, parse_space, sample_points
from inertia.experiments.sweep import TuneOptions, expand, parse_resources, run_sweep


def base(**over):
    cfg = Config(
        experiment="rs",
        data={"name": "deep_linear_regression", "d_in": 8, "n": 32, "d_out": 2},
        model={"name": "deep_linear", "d_in": 8, "width": 8, "depth": 2, "d_out": 2},
        init={"scheme": "orthogonal"},
        steps=20,
        batch_size=32,
        eval_every=10,
    )
    return cfg.replace(**over)


def test_space_entries_parse_to_distributions():
    space = parse_space(
        [
            "optimizer.lr=loguniform(1e-4, 1e-1)",
            "optimizer.momentum=uniform(0,0.99)",
            "model.width=randint(4,9)",
            "init.scheme=choice(orthogonal,glorot_normal)",
        ]
    )
    assert space["optimizer.lr"] == Distribution("loguniform", (1e-4, 1e-1))
    assert space["model.width"] == Distribution("randint", (4, 9))
    assert space["init.scheme"].args == ("orthogonal", "glorot_normal")


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ("optimizer.lr", "must look like key=KIND"),
        ("optimizer.lr=normal(0,1)", "unknown distribution 'normal'; accepted: uniform, loguniform"),
        ("optimizer.lr=loguniform(0,1)", "loguniform needs 0 < low, got 0"),
        ("optimizer.lr=uniform(1,1)", "finite low < high, got 1 and 1"),
        ("optimizer.lr=uniform(1)", "takes two numbers"),
        ("model.width=randint(1.5,4)", "randint takes two integers"),
        ("init.scheme=choice()", "choice needs at least one value"),
    ],
)
def test_bad_space_entries_are_named(entry, match):
    with pytest.raises(ConfigError, match=match):
        parse_space([entry])


def test_a_key_given_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice"):
        parse_space(["optimizer.lr=uniform(0,1)", "optimizer.lr=uniform(1,2)"])


def test_samples_are_seeded_in_range_and_leave_the_global_rng_alone():
    space = parse_space(["optimizer.lr=loguniform(1e-4,1e-1)", "model.width=randint(4,9)"])
    state = random.getstate()
    a = sample_points(space, 200, seed=3)
    assert random.getstate() == state
    assert a == sample_points(space, 200, seed=3) and a != sample_points(space, 200, seed=4)
    lrs = [p["optimizer.lr"] for p in a]
    assert all(1e-4 <= v < 1e-1 for v in lrs)
    assert {p["model.width"] for p in a} == set(range(4, 9))
    # log-uniform: the mean of log10(lr) is the middle of [-4, -1], sd of uniform = 3 / sqrt(12)
    logs = [math.log10(v) for v in lrs]
    assert abs(sum(logs) / len(logs) + 2.5) < 4 * (3 / math.sqrt(12)) / math.sqrt(len(logs))


def test_a_space_too_small_for_the_samples_is_refused():
    with pytest.raises(ConfigError, match="fewer than 3 distinct points"):
        sample_points(parse_space(["init.scheme=choice(orthogonal,glorot_normal)"]), 3)
    with pytest.raises(ConfigError, match="samples must be a positive integer, got 0"):
        sample_points(parse_space(["optimizer.lr=uniform(0.1,0.2)"]), 0)


def test_expand_times_the_grid_and_refuses_a_key_in_both():
    points = sample_points(parse_space(["optimizer.lr=loguniform(1e-3,1e-1)"]), 3)
    trials = expand(base(), {"optimizer.momentum": [0.0, 0.9]}, seeds=2, points=points)
    assert len(trials) == 12 and len({t[0] for t in trials}) == 12
    assert {t[1]["optimizer.lr"] for t in trials} == {p["optimizer.lr"] for p in points}
    with pytest.raises(ConfigError, match="'optimizer.lr' is both on the grid and in the search space"):
        expand(base(), {"optimizer.lr": [0.1]}, points=points)


def test_a_random_sweep_runs_its_samples_and_resumes_to_the_same_trials(tmp_path):
    space = parse_space(["optimizer.lr=loguniform(1e-3,1e-1)"])
    res = run_sweep(base(), {}, out=tmp_path, name="r", workers=1, space=space, samples=3, search_seed=1)
    assert [t["status"] for t in res.trials] == ["completed"] * 3
    lrs = [t["overrides"]["optimizer.lr"] for t in res.trials]
    assert lrs == [p["optimizer.lr"] for p in sample_points(space, 3, seed=1)]
    meta = json.loads((res.directory / "sweep.json").read_text())
    assert meta["space"] == {"optimizer.lr": "loguniform(0.001, 0.1)"} and meta["samples"] == 3
    again = run_sweep(base(), {}, out=tmp_path, name="r", workers=1, space=space, samples=3, search_seed=1, resume=True)
    assert [t["id"] for t in again.trials] == [t["id"] for t in res.trials]
    with pytest.raises(ConfigError, match="search_seed"):  # another seed is another search
        run_sweep(base(), {}, out=tmp_path, name="r", workers=1, space=space, samples=3, search_seed=2, resume=True)
    best = min(res.trials, key=lambda t: t["metrics"]["train_loss"])
    assert res.table("train_loss")[0]["best_lr"] == best["overrides"]["optimizer.lr"]


def test_tune_options_are_checked():
    with pytest.raises(ConfigError, match="scheduler must be one of asha, median"):
        TuneOptions(scheduler="hyperband")
    with pytest.raises(ConfigError, match="mode must be 'min' or 'max'"):
        TuneOptions(mode="lowest")
    with pytest.raises(ConfigError, match="grace_period must be a positive number of updates, got 0"):
        TuneOptions(grace_period=0)
    with pytest.raises(ConfigError, match="non-negative numbers, got 'gpu': -1"):
        TuneOptions(resources={"gpu": -1})
    assert parse_resources("cpu=2,gpu=0.5") == {"cpu": 2.0, "gpu": 0.5}
    for bad in ("cpu", "cpu=2,cpu=3", "cpu=0,gpu=0"):
        with pytest.raises(ConfigError, match="cpu"):
            parse_resources(bad)
    with pytest.raises(ConfigError, match="need backend 'ray', got 'local'"):
        run_sweep(base(), {"optimizer.lr": [0.1]}, tune=TuneOptions(scheduler="asha"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", "optuna"], "--search must be grid or random, got 'optuna' (optuna is not built in"),
        (["--search", "random"], "--search random needs --space"),
        (["--space", "optimizer.lr=uniform(0.1,0.2)"], "--space and --samples belong to a random search"),
        (["--search", "random", "--space", "optimizer.lr=uniform(0.1,0.2)", "--samples", "0"], "--samples"),
        (["--scheduler", "asha"], "--scheduler needs --backend ray, got --backend local"),
        (["--address", "127.0.0.1:1"], "--address needs --backend ray"),
        (["--backend", "ray", "--resources-per-trial", "cpu=x"], "each entry must be NAME=NUMBER"),
        (["--backend", "ray", "--scheduler", "sha"], "scheduler must be one of asha, median"),
    ],
)
def test_the_command_line_refuses_bad_search_options_with_one_line(tmp_path, args, message):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(base().to_dict()))
    cmd = [sys.executable, "-m", "inertia", "sweep", str(cfg), "--out", str(tmp_path / "o"), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], res.stderr
    assert not (tmp_path / "o").exists()


def test_a_ray_address_is_checked_before_any_work(tmp_path):
    import socket

    from inertia.experiments.sweep import check_ray_address

    with pytest.raises(ConfigError, match="must be HOST:PORT"):
        check_ray_address("localhost")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(ConfigError, match=f"cannot connect to the Ray cluster at '127.0.0.1:{port}'"):
            run_sweep(
                base(),
                {"optimizer.lr": [0.1]},
                out=tmp_path,
                backend="ray",
                tune=TuneOptions(address=f"127.0.0.1:{port}"),
            )
    assert not any(tmp_path.iterdir())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        check_ray_address(f"ray://127.0.0.1:{s.getsockname()[1]}")
