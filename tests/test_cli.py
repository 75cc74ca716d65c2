"""The command line: real work on good input, one clear message and exit code 2 on bad input."""

import json

import pytest
import torch
from typer.testing import CliRunner

from inertia.cli import app

runner = CliRunner()


def test_init_report_prints_a_table_per_scheme_and_writes_json(tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(
        app, ["init-report", "20-10-5", "-s", "standard_uniform", "-s", "glorot_uniform", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "standard_uniform" in res.output and "glorot_uniform" in res.output
    rows = json.loads(out.read_text())["schemes"]["glorot_uniform"]
    assert [r["name"] for r in rows] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert rows[0]["fan_in"] == 20 and rows[0]["fan_out"] == 10


def test_init_report_unknown_scheme_exits_2_listing_known():
    res = runner.invoke(app, ["init-report", "20-10", "-s", "nope"])
    assert res.exit_code == 2
    assert "unknown init scheme 'nope'" in res.output and "glorot_uniform" in res.output


def test_init_report_bad_activation_exits_2():
    res = runner.invoke(app, ["init-report", "20-10-5", "--activation", "swishy"])
    assert res.exit_code == 2
    assert "unknown activation 'swishy'" in res.output


def test_init_report_factory_that_raises_exits_2(tmp_path, monkeypatch):
    (tmp_path / "badmod.py").write_text("def make():\n    raise RuntimeError('boom')\n")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["init-report", "badmod:make"])
    assert res.exit_code == 2
    assert "raised RuntimeError: boom" in res.output


def _write_config(tmp_path, **over):
    import yaml

    cfg = {
        "experiment": "cli",
        "data": {"name": "curves", "n": 100, "n_test": 20},
        "model": {"name": "deep_autoencoder", "sizes": [784, 16]},
        "init": {"scheme": "glorot_uniform"},
        "optimizer": {"lr": 0.01, "momentum": 0.9},
        "steps": 4,
        "batch_size": 50,
        "eval_every": 2,
    }
    cfg.update(over)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_writes_a_run_folder(tmp_path):
    res = runner.invoke(
        app, ["run", str(_write_config(tmp_path)), "--out", str(tmp_path / "runs"), "--run-id", "r1", "--quiet"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "runs" / "cli" / "r1" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["step"] == 4


@pytest.mark.parametrize(
    "override,match",
    [
        ("optimizer.lr=-1", "optimizer.lr must be in [0, inf], got -1"),
        ("optimizer.momentum=1.0", "optimizer.momentum must be in [0, 1), got 1.0"),
        ("data.name=nope", "data.name: unknown name 'nope'"),
        ("stepz=3", "unknown config field(s) ['stepz']"),
        ("steps=abc", "steps must be an integer, got 'abc'"),
    ],
)
def test_run_bad_config_exits_2_with_one_message(tmp_path, override, match):
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--set", override, "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert match in res.output.replace("\n", " ")
    assert not (tmp_path / "cli").exists()  # nothing started


def test_schedules_plot_writes_a_file(tmp_path):
    res = runner.invoke(
        app,
        [
            "schedules",
            "plot",
            "sutskever_momentum",
            "-p",
            "mu_max=0.99",
            "--steps",
            "1500",
            "--out",
            str(tmp_path / "mu.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "mu.png").stat().st_size > 1000


def test_schedules_plot_bad_parameter_exits_2(tmp_path):
    res = runner.invoke(
        app, ["schedules", "plot", "sutskever_momentum", "-p", "mu_max=2", "--out", str(tmp_path / "m.png")]
    )
    assert res.exit_code == 2 and "mu_max must be a finite number in [0, 1), got 2" in res.output


def _one_error_line(res):
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2, (res.output, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    return lines[0]


def test_version_flag_prints_the_package_version():
    from inertia import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"inertia {__version__}"


def test_main_takes_argv_like_the_console_script(capsys):
    from inertia.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["init-report", "20-10", "-s", "nope"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: unknown init scheme 'nope'")


@pytest.mark.parametrize(
    "args,match",
    [
        (["--bogus"], "error: No such option: --bogus (see 'inertia --help')"),
        (["run"], "error: Missing argument 'config'."),
        (["schedules", "plot", "constant", "--steps", "x"], "error: Invalid value for '--steps'"),
    ],
)
def test_a_bad_flag_is_one_error_line(args, match):
    res = runner.invoke(app, args, prog_name="inertia")
    assert _one_error_line(res).startswith(match)


@pytest.mark.parametrize(
    "override,match",
    [
        ("model.sizes=[784, 0, 4]", "model 'deep_autoencoder': sizes must be at least two positive integers"),
        ("data.n=-5", "data 'curves': n must be an integer >= 1, got -5"),
        ("schedule={name: sutskever_momentum, mu_max: 0.9, period: 0}", "schedule 'sutskever_momentum'"),
        ("init={scheme: sparse, fan_in: -1}", "init 'sparse'"),
        ("init.nope=1", "init 'glorot_uniform': got an unexpected keyword argument 'nope'"),
        ("stop_when=test_solved", "stop_when 'test_solved' is not an evaluation metric of this run"),
        ("data={name: mnist}", "data 'mnist': missing a required argument: 'path'"),
        ("model.sizes=[100, 16]", "model 'deep_autoencoder' does not take the inputs of data 'curves'"),
        ("seed=1180591620717411303424", "seed must fit in 64 bits"),
        ("steps=1" + "0" * 400, "steps must fit in 64 bits"),
        ("data.name=[curves]", "data must be a mapping with a 'name'"),
        ("experiment=..", "experiment must be a single folder name"),
        ("x[/]=1", "unknown config field(s) ['x[/]']"),  # printed as written, not read as markup
    ],
)
def test_run_validates_every_piece_before_starting(tmp_path, override, match):
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--set", override, "--out", str(tmp_path / "runs")])
    assert match in _one_error_line(res)
    assert not (tmp_path / "runs").exists()  # nothing started


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_run_on_cuda_without_cuda_exits_2_before_starting(tmp_path):
    res = runner.invoke(app, ["run", str(_write_config(tmp_path, device="cuda")), "--out", str(tmp_path / "runs")])
    assert "device 'cuda': this machine has 0 CUDA device(s)" in _one_error_line(res)
    assert not (tmp_path / "runs").exists()


def test_scientific_notation_is_a_number_in_yaml_and_in_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(_write_config(tmp_path).read_text().replace("lr: 0.01", "lr: 1e-3"))
    res = runner.invoke(
        app,
        [
            "run",
            str(path),
            "--set",
            "optimizer.weight_decay=1e-5",
            "--out",
            str(tmp_path / "runs"),
            "--run-id",
            "r",
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "runs" / "cli" / "r" / "config.json").read_text())["optimizer"]
    assert (saved["lr"], saved["weight_decay"]) == (1e-3, 1e-5)


def test_an_empty_config_is_refused_rather_than_training_the_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("")
    res = runner.invoke(app, ["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs")])
    assert "a config must set data and model" in _one_error_line(res)
    assert not (tmp_path / "runs").exists()


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ndata: {name: curves, junk: *a8}\nmodel: {name: mlp, sizes: [784, 10]}\n")
    t0 = time.perf_counter()
    res = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "runs")])
    assert "more than 100000 values (after expanding YAML aliases)" in _one_error_line(res)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("content", [bytes(range(256)), "experiment: caf\xe9\n".encode("latin-1")])
def test_a_binary_config_file_exits_2(tmp_path, content):
    (tmp_path / "c.yaml").write_bytes(content)
    res = runner.invoke(app, ["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs")])
    assert "c.yaml: not" in _one_error_line(res)


@pytest.mark.parametrize("run_id", ["../x", "a/b", "..", ""])
def test_run_id_must_be_a_single_folder_name(tmp_path, run_id):
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--run-id", run_id, "--out", str(tmp_path / "runs")])
    assert "--run-id must be a single folder name" in _one_error_line(res)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()


def _finished_run(tmp_path):
    out = tmp_path / "runs"
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--out", str(out), "--run-id", "r1", "--quiet"])
    assert res.exit_code == 0, res.output
    return out, out / "cli" / "r1"


def test_resuming_from_a_zero_byte_checkpoint_exits_2_and_keeps_the_run_folder(tmp_path):
    out, run = _finished_run(tmp_path)
    (run / "checkpoint.pt").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--out", str(out), "--run-id", "r1", "--resume"])
    line = _one_error_line(res)
    assert "cannot resume" in line and "checkpoint.pt is not a checkpoint (0 bytes" in line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing lost


def test_resuming_from_a_corrupt_checkpoint_exits_2(tmp_path):
    out, run = _finished_run(tmp_path)
    ckpt = bytearray((run / "checkpoint.pt").read_bytes())
    ckpt[len(ckpt) // 3] ^= 0xFF  # one flipped byte inside a stored tensor
    (run / "checkpoint.pt").write_bytes(bytes(ckpt))
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--out", str(out), "--run-id", "r1", "--resume"])
    assert "cannot resume" in _one_error_line(res)


def test_resuming_with_another_model_exits_2(tmp_path):
    out, run = _finished_run(tmp_path)
    res = runner.invoke(
        app,
        [
            "run",
            str(_write_config(tmp_path)),
            "--set",
            "model.sizes=[784, 8]",
            "--out",
            str(out),
            "--run-id",
            "r1",
            "--resume",
        ],
    )
    assert "its checkpoint is for model" in _one_error_line(res)


def test_init_report_refuses_a_model_level_scheme():
    res = runner.invoke(app, ["init-report", "20-10", "-s", "hessian_calibrated"])
    assert "'hessian_calibrated' calibrates a whole model on its loss and data" in _one_error_line(res)


@pytest.mark.parametrize(
    "args,match",
    [
        (["--workers", "-1"], "--workers must be a positive integer, got -1"),
        (["--name", "../x"], "--name must be a single folder name"),
        (["--metric", "train_eror"], "--metric 'train_eror' is not a metric of these trials; accepted:"),
        (["--grid", "data.n=10,-5"], "grid point {'data.n': -5, 'seed': 0}: data 'curves': n must be an integer >= 1"),
    ],
)
def test_sweep_validates_flags_and_every_trial_before_starting(tmp_path, args, match):
    res = runner.invoke(app, ["sweep", str(_write_config(tmp_path)), "--out", str(tmp_path / "runs"), *args])
    assert match in _one_error_line(res)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "args,match",
    [
        (["784-10", "--input-shape", "784", "--batch", "0"], "--batch must be a positive integer, got 0"),
        (["20-10", "--data", "digits"], "model '20-10' does not take the inputs of data 'digits'"),
        (["64-5", "--data", "digits"], "data 'digits' has 10 classes, so it needs 10 outputs"),
    ],
)
def test_doctor_bad_input_exits_2(args, match):
    res = runner.invoke(app, ["doctor", *args])
    assert match in _one_error_line(res)


def test_a_run_without_resume_never_overwrites_an_earlier_run_in_its_folder(tmp_path):
    out, run = _finished_run(tmp_path)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    res = runner.invoke(app, ["run", str(_write_config(tmp_path)), "--out", str(out), "--run-id", "r1"])
    line = _one_error_line(res)
    assert "already holds a run" in line and "--resume" in line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


class _Captured(Exception):
    pass


@pytest.fixture
def doctor_inputs(monkeypatch):
    """Runs `inertia doctor ARGS` up to the doctor itself; returns the (inputs, targets) it was given."""
    import importlib

    from inertia.experiments import components

    doctor_module = importlib.import_module("inertia.doctor")  # `inertia.doctor` is also the function

    def run(args):
        seen = {}

        def capture(model, x, y, **kwargs):
            seen.update(x=x, y=y)
            raise _Captured

        monkeypatch.setattr(doctor_module, "doctor", capture)
        monkeypatch.setattr(components, "check_outputs", lambda *a, **k: None)
        with pytest.raises(_Captured):
            runner.invoke(app, ["doctor", "4-4", *args], catch_exceptions=False)
        return seen["x"], seen["y"]

    return run


@pytest.mark.parametrize(
    "name", ["shapeset", "curves", "addition", "memorization5", "temporal_order", "deep_linear_regression", "digits"]
)
def test_doctor_data_is_the_registered_builders_as_a_config_builds_it(name, doctor_inputs):
    """`inertia doctor --data NAME --batch B --seed S` examines the training examples that the
    library's builder and a run config {name: NAME, n: B} with seed S give (a fixed set: its first B)."""
    from inertia import data as D
    from inertia.experiments import components
    from inertia.experiments.config import from_dict

    x, y = doctor_inputs(["--data", name, "--batch", "6", "--seed", "3"])
    lib_x, lib_y = D.get(name).examples(6, seed=3)
    sized = {"n": 6} if D.get(name).drawn else {}
    cfg = from_dict({"data": {"name": name, **sized}, "model": {"name": "mlp", "sizes": [4, 4]}, "seed": 3})
    data = components.build_data(cfg)
    assert torch.equal(x, lib_x.float()) and torch.equal(x, data.x_train[:6])
    assert torch.equal(y, lib_y.float() if lib_y.is_floating_point() else lib_y) and torch.equal(y, data.y_train[:6])


def test_doctor_memorization5_uses_the_papers_T_like_the_library_and_configs(doctor_inputs):
    x, _ = doctor_inputs(["--data", "memorization5", "--batch", "2"])
    assert x.shape == (2, 210, 4)  # T = 200 (Sutskever et al. 2013), L = T + 2 * 5 symbols


@pytest.mark.parametrize(
    "args,flag,value,bounds",
    [
        (["doctor", "20-10", "--input-shape", "20", "--lr", "-1"], "--lr", -1.0, {"lo": 0}),
        (["doctor", "20-10", "--input-shape", "20", "--lr", "nan"], "--lr", float("nan"), {"lo": 0}),
        (["doctor", "20-10", "--input-shape", "20", "--momentum", "1"], "--momentum", 1.0, {"lo": 0, "hi": 1}),
        (["doctor", "20-10", "--input-shape", "20", "--batch", "-2"], "--batch", -2, {"lo": 1}),
        (["reproduce", "momentum", "--seeds", "0"], "--seeds", 0, {"lo": 1}),
        (["schedules", "plot", "constant", "--steps", "0"], "--steps", 0, {"lo": 1, "hi": 10_000_000}),
    ],
)
def test_number_flags_are_checked_with_the_shared_wording(args, flag, value, bounds):
    from inertia import validation

    with pytest.raises(ValueError) as expected:
        if isinstance(value, int):
            validation.check_integer(flag, value, **bounds)
        else:
            validation.check_number(flag, value, **bounds, hi_open="hi" in bounds)
    assert _one_error_line(runner.invoke(app, args)) == f"error: {expected.value}"


def test_sweep_seeds_must_be_positive_before_anything_is_built(tmp_path):
    res = runner.invoke(app, ["sweep", str(_write_config(tmp_path)), "--out", str(tmp_path / "runs"), "--seeds", "0"])
    assert "--seeds must be a positive integer, got 0" in _one_error_line(res)
    assert not (tmp_path / "runs").exists()


def test_sweep_with_the_stacked_backend_trains_the_grid_as_one_stack(tmp_path):
    res = runner.invoke(
        app,
        [
            "sweep",
            str(_write_config(tmp_path)),
            "--out",
            str(tmp_path / "runs"),
            "--grid",
            "optimizer.lr=0.01,0.02",
            "--backend",
            "stacked",
            "--workers",
            "1",
            "--name",
            "s",
        ],
    )
    assert res.exit_code == 0, res.output
    trials = sorted((tmp_path / "runs" / "cli" / "s" / "trials").iterdir())
    assert len(trials) == 2
    assert all(json.loads((t / "summary.json").read_text())["status"] == "completed" for t in trials)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["doctor"],
        ["run"],
        ["sweep"],
        ["report"],
        ["reproduce"],
        ["init-report"],
        ["schedules"],
        ["schedules", "plot"],
    ],
    ids=lambda c: " ".join(c) or "inertia",
)
def test_help_shows_flags_without_a_type(command):
    """Typer prints `--json <bool>`, which reads as if the flag needed a value."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.output and "<bool>" not in result.output


def _doctor_output(*extra):
    args = ["doctor", "64-32-10", "--data", "digits", "--lr", "0.1", "--momentum", "0.9", "--batch", "64", *extra]
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


def test_doctor_prints_tables_that_fit_an_80_column_terminal():
    out = _doctor_output()
    assert "Table(" not in out and "layers (input to output)" in out and "trial run:" in out
    assert max(len(line) for line in out.splitlines() if not line.startswith("    fix: ")) <= 80
    assert "||H||_F" not in out and "standard /" not in out  # compact: short init labels, fewer columns


def test_doctor_wide_shows_every_layer_column():
    out = _doctor_output("--wide")
    assert "||H||_F" in out and "grad std" in out and "act mean" in out


def test_a_findings_table_is_printed_in_full_with_its_fix():
    args = ["doctor", "64-32-10", "--data", "digits", "--lr", "100", "--momentum", "0.9", "--batch", "64"]
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "unstable_lr" in result.output and "findings" in result.output
    fix = next(line for line in result.output.splitlines() if line.startswith("    fix: "))
    assert fix.startswith('    fix: for g in optimizer.param_groups: g["lr"] = ')  # one line, pasteable
    optimizer = torch.optim.SGD([torch.zeros(1)], lr=1.0)
    exec(fix.removeprefix("    fix: "), {"optimizer": optimizer})
    assert optimizer.param_groups[0]["lr"] < 100


def test_doctor_reports_each_measurement_as_it_starts_unless_quiet():
    out = _doctor_output()
    assert "doctor: curvature" in out and "doctor: trial run" in out and "elapsed" in out
    assert "doctor: " not in _doctor_output("--quiet")


def test_an_mlp_given_as_sizes_is_built_from_torch_activation_modules():
    """The doctor's saturation and dead-unit checks recognize torch's modules, not a private one."""
    from torch import nn

    from inertia.cli import build_model_spec

    model = build_model_spec("8-16-16-2", "tanh")
    assert [type(m) for m in model] == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert "sat/dead" in _doctor_output()


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--loss", "hinge"], "--loss 'hinge' is not a loss; accepted: cross_entropy, mse"),
        (["--loss", "mse"], "the loss failed on outputs (64, 10), targets (64,) torch.int64"),
    ],
)
def test_doctor_loss_errors_are_one_line(extra, match):
    result = runner.invoke(app, ["doctor", "64-10", "--data", "digits", "--batch", "64", "--quiet", *extra])
    assert result.exit_code == 2 and match in result.output.replace("\n", " ")


def test_doctor_takes_a_loss_by_name():
    out = _doctor_output("--loss", "cross_entropy", "--quiet")
    assert "layers (input to output)" in out


@pytest.mark.parametrize(
    "command", [["init-report"], ["doctor"], ["run"], ["sweep"], ["report"], ["reproduce"], ["schedules", "plot"]]
)
def test_every_command_shows_two_examples(command):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    lines = [line for line in result.output.splitlines() if "Usage:" not in line]
    examples = [line for line in lines if ("inertia " + " ".join(command)) in line]
    assert len(examples) >= 2, result.output
