"""Fuzzing the command line: every command line a user can get wrong ends as one ``error:`` line
and exit code 2, never a traceback, and nothing is written.

The cases are generated from a fixed seed: bad values (wrong types, negative, zero, huge, unknown
names and keywords, lists where names go) put into a small valid config through a YAML file, a
JSON file, a Python file or ``--set``; broken files (binary, not UTF-8, empty, an alias bomb); and
bad flags of every command. All of them must fail in validation, before any training.
"""

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from inertia.cli import app

runner = CliRunner()
SRC = Path(__file__).resolve().parents[1] / "src"

BASE = {
    "experiment": "fuzz",
    "data": {"name": "curves", "n": 20, "n_test": 4},
    "model": {"name": "deep_autoencoder", "sizes": [784, 4]},
    "init": {"scheme": "glorot_uniform"},
    "optimizer": {"lr": 0.01, "momentum": 0.9},
    "steps": 2,
    "batch_size": 10,
    "eval_every": 1,
}

HUGE = [10**30, 2**70, 10**400]
NOT_NUMBERS = ["abc", [0.1], {"a": 1}, None]
NOT_NAMES = [["curves"], 3, None, {"name": "x"}]
SCHEDULE = {"name": "sutskever_momentum", "mu_max": 0.99}

# For each field, values that are wrong for it (each one alone makes the base config invalid).
BAD = {
    "optimizer.lr": [-1, -1e-3, math.inf, math.nan, True, *HUGE, *NOT_NUMBERS],
    "optimizer.momentum": [1.0, -0.1, 2, math.nan, True, "x", [0.9]],
    "optimizer.name": ["adam", ["momentum"], 3, None],
    "optimizer.nesterov": ["yes", 1, [True]],
    "optimizer.weight_decay": [-1, "x", math.inf],
    "optimizer.options": [{"damping": 1.0}, "x", [1]],
    "optimizer.mu": [0.9],
    "steps": [-1, 2.5, True, *HUGE, *NOT_NUMBERS],
    "batch_size": [0, -3, 1.5, 10**30, "x", [10]],
    "eval_every": [0, -1, "x", 2**70],
    "checkpoint_every": [0, -2, "x"],
    "seed": [-1, 2**32, 2**70, 10**400, 1.5, "x", [0]],
    "data.n": [0, -5, 2.5, "x", [20], True, 10**400],
    "data.n_test": [0, -1, "x"],
    "data.name": ["nope", "mnist", "cifar10", *NOT_NAMES],
    "data.foo": [1],
    "data.pen_sigma": [-1, "x"],
    "data.image_size": [0, 4, "x"],
    "model.sizes": [[784, 0, 4], [784, -1], [], [784], "784", [100, 4], [784, "a"], [784, 4.5], [784, 10**30]],
    "model.name": ["nope", "tanh_rnn", "mlp", *NOT_NAMES],
    "model.activation": ["swishy", 3],
    "model.foo": [1],
    "init.scheme": ["nope", ["glorot_uniform"], 3, {"a": 1}],
    "init.gain": ["x", [1]],
    "init.foo": [1],
    "init.fan_in": [-1],
    "init.bias": ["x", math.inf, [0]],
    "init.rules": ["x", [1, 2]],
    "schedule": [
        "x",
        [1],
        {"name": "nope"},
        {"mu_max": 0.9},
        dict(SCHEDULE, period=0),
        dict(SCHEDULE, period=-1),
        dict(SCHEDULE, mu_max=1.5),
        dict(SCHEDULE, foo=1),
        {"name": "sutskever_momentum"},
        {"name": ["constant"], "value": 0.9},
    ],
    "lr_schedule": ["x", {"name": "nope"}, {"name": "constant"}, {"name": "constant", "value": -1}],
    "loss": ["hinge", ["mse"], 3, "cross_entropy"],
    "stop_when": ["nope", 3, ["test_error"], ""],
    "clip_grad_norm": [0, -1, "x", math.inf],
    "device": ["tpu", "cuda:x", ["cpu"], 3, "", "cpu:"] + ([] if torch.cuda.is_available() else ["cuda", "cuda:1"]),
    "dtype": ["float16", 3, ["float32"]],
    "experiment": ["..", ".", "a/b", "a\\b", "", 3, ["x"]],
    "monitor.quantities": [["nope"], "layer_stats", [["layer_stats"]], [3]],
    "monitor.every": [0, -1, "x"],
    "monitor.params": ["0.weight", [3]],
    "monitor.probe": [-1, "x"],
    "monitor.foo": [1],
    "stepz": [3],
}
# Fields whose values can only be wrong together with another one.
PAIRS = [
    {"monitor.quantities": ["layer_stats"], "monitor.params": ["no.such.param"]},
    {"optimizer.name": "hessian_free", "optimizer.options": {"nope": 1}},
    {"optimizer.name": "hessian_free", "optimizer.options": {"damping": -1}},
    {"optimizer.name": "hessian_free", "schedule": SCHEDULE},
    {"optimizer.name": "hessian_free", "clip_grad_norm": 1.0},
    {"optimizer.name": "hessian_free", "optimizer.options": {"structural_damping": 0.1}},
    {"data": {"name": "digits"}, "model": {"name": "mlp", "sizes": [64, 5]}},
    {"data": {"name": "digits", "n_test": 10}, "model": {"name": "mlp", "sizes": [64, 10]}},
    {"data": {"name": "addition", "n": 8}, "model": {"name": "mlp", "sizes": [2, 1]}},
    {"data": {"name": "mnist", "path": "/no/such/folder"}},
    {"init": {"scheme": "sparse", "fan_in": -1}},
    {"init": {"scheme": "variance_scaling", "mode": "nope"}},
    {"init": {"scheme": "hessian_calibrated", "generator": 1}},
]


def _set(d, key, value):
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def _yaml_text(value):
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _config_cases(n):
    rng = random.Random(20240611)
    fields = sorted(BAD)
    cases = []
    for i in range(n):
        if i % 7 == 0:
            mutations = dict(PAIRS[(i // 7) % len(PAIRS)])
        else:
            mutations = {key: rng.choice(BAD[key]) for key in rng.sample(fields, rng.choice([1, 1, 2, 3]))}
        finite = all(not (isinstance(v, float) and not math.isfinite(v)) for v in mutations.values())
        how = rng.choice(["yaml", "json", "py", "set"] if finite else ["yaml", "py", "set"])
        cases.append(pytest.param(mutations, how, id=f"{i}-{how}-{'+'.join(sorted(mutations))}"))
    return cases


def _invoke(args):
    res = runner.invoke(app, [str(a) for a in args])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


def _write(tmp_path, cfg, how):
    if how == "yaml":
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
    elif how == "json":
        path = tmp_path / "c.json"
        path.write_text(json.dumps(cfg))
    else:
        path = tmp_path / "c.py"
        path.write_text(f"import math\ninf, nan = math.inf, math.nan\nCONFIG = {cfg!r}\n")
    return path


@pytest.mark.parametrize("mutations,how", _config_cases(240))
def test_a_bad_config_is_one_error_line_and_exit_2(tmp_path, mutations, how):
    out = tmp_path / "runs"
    if how == "set":
        path = _write(tmp_path, BASE, "yaml")
        extra = [a for k, v in mutations.items() for a in ("--set", f"{k}={_yaml_text(v)}")]
    else:
        cfg = json.loads(json.dumps(BASE))
        for k, v in mutations.items():
            _set(cfg, k, v)
        path, extra = _write(tmp_path, cfg, how), []
    _invoke(["run", path, "--out", out, "--quiet", *extra])
    assert not out.exists()  # nothing started


def _bomb(levels=9):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return (
        "\n".join(lines) + f"\ndata: {{name: curves, junk: *a{levels - 1}}}\nmodel: {{name: mlp, sizes: [784, 10]}}\n"
    )


def _deep(n):
    return "data: " + "[" * n + "]" * n + "\n"


FILES = {
    "binary.yaml": bytes(range(256)) * 4,
    "binary.json": bytes(random.Random(1).randrange(256) for _ in range(600)),
    "binary.py": b"\x00\x01\x02 CONFIG = {}\xff",
    "latin1.yaml": "experiment: caf\xe9\n".encode("latin-1"),
    "nul.yaml": b"experiment: a\x00b\n",
    "empty.yaml": b"",
    "empty.json": b"",
    "only_experiment.yaml": b"experiment: x\n",
    "no_model.yaml": b"data: {name: curves}\n",
    "list.yaml": b"- 1\n- 2\n",
    "scalar.json": b"3",
    "string.yaml": b"just text",
    "bomb.yaml": _bomb().encode(),
    "deep.yaml": _deep(60).encode(),
    "deeper.json": ("[" * 100000 + "]" * 100000).encode(),
    "bad_indent.yaml": b"data:\n  name: curves\n n: 3\n",
    "python_tag.yaml": b"data: !!python/object/apply:os.system ['true']\nmodel: {name: mlp}\n",
    "int_keys.yaml": b"data: {name: curves, 1: 2}\nmodel: {name: mlp, sizes: [784, 10]}\n",
    "long_int.yaml": b"data: {name: curves}\nmodel: {name: mlp, sizes: [784, 10]}\nseed: " + b"9" * 5000 + b"\n",
    "raises.py": b"raise RuntimeError('boom')\n",
    "syntax.py": b"CONFIG = {\n",
    "no_config.py": b"x = 1\n",
    "config.txt": b"data: {name: curves}\n",
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_broken_config_file_is_one_error_line_and_exit_2(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(FILES[name])
    _invoke(["run", path, "--out", tmp_path / "runs", "--quiet"])
    assert not (tmp_path / "runs").exists()


def _flag_cases():
    return [
        ["run", "{cfg}", "--run-id", "../x"],
        ["run", "{cfg}", "--run-id", "a/b"],
        ["run", "{cfg}", "--run-id", ""],
        ["run", "{cfg}", "--set", "novalue"],
        ["run", "{cfg}", "--set", "steps.x=1"],
        ["run", "{cfg}", "--bogus"],
        ["run", "{cfg}", "--set", "x[/]=1"],
        ["run", "{tmp}/missing.yaml"],
        ["run", "{tmp}"],
        ["run"],
        ["run", "{cfg}", "--out", "{cfg}"],
        ["sweep", "{cfg}", "--workers", "-1"],
        ["sweep", "{cfg}", "--workers", "0"],
        ["sweep", "{cfg}", "--workers", "x"],
        ["sweep", "{cfg}", "--seeds", "0"],
        ["sweep", "{cfg}", "--seeds", "-3"],
        ["sweep", "{cfg}", "--name", "../x"],
        ["sweep", "{cfg}", "--name", ".."],
        ["sweep", "{cfg}", "--backend", "nope"],
        ["sweep", "{cfg}", "--metric", "nope"],
        ["sweep", "{cfg}", "--grid", "optimizer.lr="],
        ["sweep", "{cfg}", "--grid", "noequals"],
        ["sweep", "{cfg}", "--grid", "optimizer.lr=0.1,-1"],
        ["sweep", "{cfg}", "--grid", "data.name=curves,nope"],
        ["sweep", "{cfg}", "--grid", "model.sizes=[784,4],[10,4]"],
        ["init-report", "20-10", "-s", "nope"],
        ["init-report", "20-10", "-s", "hessian_calibrated"],
        ["init-report", "20-10", "-s", ["glorot_uniform"]],
        ["init-report", "20-0-5"],
        ["init-report", "mlp"],
        ["init-report", "nomodule_xyz:make"],
        ["init-report", "20-10", "--seed", str(2**70)],
        ["init-report", "20-10", "--seed", "-1"],
        ["init-report", "20-10", "--activation", "swishy"],
        ["init-report", "20-10", "--out", "{tmp}/no/such/dir/r.json"],
        ["init-report", "20-" + "9" * 30],
        ["init-report", "nope"],
        ["doctor", "20-10", "--input-shape", "20", "--batch", "0"],
        ["doctor", "20-10"],
        ["doctor", "20-10", "--input-shape", "20", "--data", "digits"],
        ["doctor", "20-10", "--input-shape", "x"],
        ["doctor", "20-10", "--input-shape", "5"],
        ["doctor", "20-10", "--data", "digits"],
        ["doctor", "64-5", "--data", "digits"],
        ["doctor", "20-10", "--data", "mnist"],
        ["doctor", "20-10", "--input-shape", "20", "--lr", "-1"],
        ["doctor", "20-10", "--input-shape", "20", "--lr", "nan"],
        ["doctor", "20-10", "--input-shape", "20", "--momentum", "1", "--lr", "0.1"],
        ["doctor", "20-10", "--input-shape", "9" * 30],
        ["doctor", "20-10", "--input-shape", "20", "--seed", "-5"],
        ["doctor", "20-10", "--input-shape", "20", "--html", "{tmp}/no/dir/r.html"],
        ["doctor", "20-10", "--data", "nope"],
        ["schedules", "plot", "nope"],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=2"],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=0.9", "--steps", "0"],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=0.9", "--steps", "x"],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=0.9", "--steps", str(10**12)],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=0.9", "-p", "period=0"],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=[1]"],
        ["schedules", "plot", "constant", "-p", "nope"],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=0.9", "--out", "{tmp}/no/dir/m.png"],
        ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=0.9", "--out", "{tmp}/m.nope"],
        ["reproduce", "nope"],
        ["reproduce", "momentum", "--seeds", "0"],
        ["reproduce", "momentum", "--device", "tpu"],
        ["reproduce", "momentum", "--device", "cuda:x"],
        ["report", "{tmp}/missing"],
        ["report", "{tmp}"],
        ["report", "{cfg}"],
        ["--bogus"],
        ["nope"],
        ["schedules", "nope"],
    ] + ([] if torch.cuda.is_available() else [["reproduce", "momentum", "--device", "cuda"]])


@pytest.mark.parametrize("args", _flag_cases(), ids=lambda a: " ".join(map(str, a))[:60])
def test_a_bad_flag_is_one_error_line_and_exit_2(tmp_path, args):
    cfg = _write(tmp_path, BASE, "yaml")
    args = [a if isinstance(a, str) else repr(a) for a in args]
    before = sorted(tmp_path.rglob("*"))
    _invoke([a.format(cfg=cfg, tmp=tmp_path) for a in args])
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def _python_m(*args, cwd):
    env = {"PYTHONPATH": str(SRC), "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "inertia", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_python_m_inertia_prints_the_version():
    from inertia import __version__

    res = _python_m("--version", cwd=SRC.parent)
    assert res.returncode == 0 and res.stdout.strip() == f"inertia {__version__}", res


@pytest.mark.slow
def test_python_m_inertia_reports_a_bad_config_in_one_line(tmp_path):
    cfg = _write(tmp_path, dict(BASE, steps=-1), "yaml")
    res = _python_m("run", cfg, "--out", tmp_path / "runs", cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "", res
    assert res.stderr.strip() == "error: steps must be in [0, inf], got -1"
