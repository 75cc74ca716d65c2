"""The run store refuses what would mix, leak or lose runs: bad folder names, a changed config on
resume, a second writer, unreadable files named, temporaries of a killed write removed."""

import os
import subprocess
import sys
import time

import pytest

from inertia.experiments.store import (
    FolderInUseError,
    UnreadableFileError,
    check_name,
    check_resume_config,
    config_differences,
    lock_folder,
    read_json,
    read_jsonl,
    remove_temporaries,
    run_path,
)


@pytest.mark.parametrize("bad", ["..", ".", "", "../../x", "/abs", "a/b", "a\\b", None, 3])
def test_a_folder_name_must_be_one_path_component(bad):
    with pytest.raises(ValueError, match=r"run id must be a single folder name.*got"):
        check_name(bad, "run id")


def test_run_path_names_the_bad_component_and_builds_good_ones(tmp_path):
    assert run_path(tmp_path, "exp", "seed0-abc", what=("experiment", "run id")) == tmp_path / "exp" / "seed0-abc"
    with pytest.raises(ValueError, match=r"experiment must be a single folder name.*'\.\.'"):
        run_path(tmp_path, "..", "r", what=("experiment", "run id"))
    with pytest.raises(ValueError, match=r"run id must be .*'/abs'"):
        run_path(tmp_path, "e", "/abs", what=("experiment", "run id"))


def test_resume_config_check_names_every_differing_dotted_key():
    stored = {"optimizer": {"lr": 0.1, "momentum": 0.9}, "steps": 10, "model": {"sizes": [4, 2]}}
    new = {"optimizer": {"lr": 0.2, "momentum": 0.9}, "steps": 10, "model": {"sizes": (4, 2)}, "seed": 1}
    assert set(config_differences(stored, new)) == {"optimizer.lr", "seed"}
    with pytest.raises(
        ValueError,
        match=r"cannot resume runs/e/r: its config differs at optimizer\.lr, seed: "
        r"optimizer\.lr: stored 0\.1, new 0\.2",
    ):
        check_resume_config(stored, new, "runs/e/r")


def test_resume_config_check_accepts_the_same_config_as_json():
    cfg = {"a": {"b": (1, 2), "c": float("nan")}}
    check_resume_config({"a": {"b": [1, 2], "c": "nan"}}, cfg, "x")  # no error


def test_a_second_lock_on_a_folder_is_refused(tmp_path):
    with lock_folder(tmp_path / "run"):
        with pytest.raises(FolderInUseError, match=r"run is in use by another process"):
            with lock_folder(tmp_path / "run"):
                pass
    with lock_folder(tmp_path / "run"):  # released on exit
        pass


def _hold_lock(folder):
    """A separate process holding the folder's lock (plain fcntl, as lock_folder does)."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(folder / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_by_another_process_is_refused_and_freed_when_it_is_killed(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    proc = _hold_lock(folder)
    try:
        with pytest.raises(FolderInUseError):
            with lock_folder(folder):
                pass
    finally:
        proc.kill()  # SIGKILL: no cleanup code runs in that process
        proc.wait()
    with lock_folder(folder):  # the kernel released the lock
        pass


@pytest.mark.parametrize("text", ['{"status": "runn', "", "\x00\x00"])
def test_read_json_of_a_truncated_file_names_the_file(tmp_path, text):
    p = tmp_path / "summary.json"
    p.write_text(text)
    with pytest.raises(UnreadableFileError, match=r"summary\.json: not valid JSON") as e:
        read_json(p)
    assert e.value.path == p and isinstance(e.value, ValueError)


def test_read_jsonl_names_the_file_and_line_of_a_garbage_line(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"step": 0}\nnot json\n{"step": 2}\n')
    with pytest.raises(UnreadableFileError, match=r"metrics\.jsonl: line 2 is not a JSON object"):
        read_jsonl(p)


def test_remove_temporaries_deletes_only_leftovers_of_atomic_writes(tmp_path):
    for name in (".summary.json.abc123.tmp", ".checkpoint.pt.x.tmp", "summary.json", "notes.tmp", ".lock"):
        (tmp_path / name).write_text("x")
    removed = remove_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".checkpoint.pt.x.tmp", ".summary.json.abc123.tmp"]
    assert sorted(os.listdir(tmp_path)) == [".lock", "notes.tmp", "summary.json"]


# ---- train() on a run folder -------------------------------------------------------------


def small(**over):
    from inertia.experiments.config import Config

    cfg = Config(
        experiment="t",
        data={"name": "curves", "n": 100, "n_test": 20},
        model={"name": "deep_autoencoder", "sizes": [784, 16]},
        init={"scheme": "glorot_uniform"},
        steps=30,
        batch_size=50,
        eval_every=10,
        monitor={"quantities": ["layer_stats"], "every": 5},
    )
    return cfg.replace(**over)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".lock"}


def test_a_failure_at_the_first_evaluation_is_recorded_as_failed_with_its_message(tmp_path):
    from inertia.experiments.config import ConfigError
    from inertia.experiments.train import train

    with pytest.raises(ConfigError, match="'test_accuracy' is not an evaluation metric"):
        train(small(stop_when="test_accuracy"), tmp_path / "run")
    summary = read_json(tmp_path / "run" / "summary.json")
    assert summary["status"] == "failed" and "'test_accuracy' is not an evaluation metric" in summary["message"]


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a checkpoint"])
def test_an_unreadable_checkpoint_is_named_recorded_as_failed_and_nothing_else_is_lost(tmp_path, damage):
    import torch

    from inertia.experiments.train import train

    run = tmp_path / "run"
    train(small(), run, stop_after=20)
    data = (run / "checkpoint.pt").read_bytes()
    if damage == "empty":
        (run / "checkpoint.pt").write_bytes(b"")
    elif damage == "truncated":
        (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    else:
        torch.save({"weights": torch.zeros(2)}, run / "checkpoint.pt")
    before = _snapshot(run)
    with pytest.raises(UnreadableFileError, match=r"checkpoint\.pt: ") as e:
        train(small(), run, resume=True)
    assert e.value.path == run / "checkpoint.pt"
    after = _snapshot(run)
    summary = read_json(run / "summary.json")
    assert summary["status"] == "failed" and "checkpoint.pt" in summary["message"]
    assert {k: v for k, v in after.items() if k != "summary.json"} == {
        k: v for k, v in before.items() if k != "summary.json"
    }  # metrics, diagnostics, checkpoint kept


class _RunsCode:
    """Unpickling this calls os.mkdir(marker): what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_checkpoint_carrying_a_pickled_callable_is_refused_without_running_it(tmp_path):
    import torch

    from inertia.experiments.train import train

    run, marker = tmp_path / "run", tmp_path / "pwned"
    train(small(), run, stop_after=20)
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["payload"] = _RunsCode(marker)
    torch.save(ckpt, run / "checkpoint.pt")
    with pytest.raises(UnreadableFileError, match=r"checkpoint\.pt: refused: it holds objects other than tensors"):
        train(small(), run, resume=True)
    assert not marker.exists()


def test_every_checkpoint_train_writes_loads_with_weights_only(tmp_path):
    import torch

    from inertia.experiments.train import train

    configs = {
        "nag_schedule": small(
            schedule={"name": "sutskever_momentum", "mu_max": 0.99, "period": 5}, **{"optimizer.nesterov": True}
        ),
        "clipped": small(clip_grad_norm=0.5),
        "hessian_free": small(
            steps=2,
            eval_every=1,
            schedule=None,
            monitor={"quantities": []},
            optimizer={"name": "hessian_free", "lr": 1.0},
        ),
    }
    for name, cfg in configs.items():
        train(cfg, tmp_path / name)
        ckpt = torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)
        assert ckpt["step"] == cfg.steps, name


def test_resume_with_a_changed_config_is_refused_naming_the_keys_and_leaves_the_folder_as_it_was(tmp_path):
    from inertia.experiments.train import train

    run = tmp_path / "run"
    train(small(), run, stop_after=20)
    before = _snapshot(run)
    with pytest.raises(ValueError, match=r"cannot resume .*run: its config differs at optimizer\.lr, steps"):
        train(small(steps=40, **{"optimizer.lr": 0.5}), run, resume=True)
    assert _snapshot(run) == before
    assert train(small(), run, resume=True).status == "completed"  # the stored config still resumes


def test_a_second_process_on_a_run_folder_is_refused_and_changes_nothing(tmp_path):
    from inertia.experiments.train import train

    run = tmp_path / "run"
    train(small(), run, stop_after=20)
    before = _snapshot(run)
    proc = _hold_lock(run)
    try:
        for resume in (True, False):
            with pytest.raises(FolderInUseError, match="in use by another process"):
                train(small(), run, resume=resume)
    finally:
        proc.kill()
        proc.wait()
    assert _snapshot(run) == before


def _killed_after_the_checkpoint(run, cfg):
    """The state a kill -9 leaves between the checkpoint at update 20 and the next one: records
    of updates 20.. already appended (by a resumed segment whose checkpoint is then put back to
    the one at 20), and a half-written line at the end of each appended file."""
    from inertia.experiments.train import train

    train(cfg, run, stop_after=20)
    at_20 = (run / "checkpoint.pt").read_bytes()
    train(cfg, run, resume=True, stop_after=26)  # records diagnostics of updates 20 and 25 (eval at 30 not yet)
    (run / "checkpoint.pt").write_bytes(at_20)
    for name in ("diagnostics.jsonl", "metrics.jsonl"):
        with open(run / name, "a") as f:
            f.write('{"step": 25, "layers": [{"la')
    (run / ".checkpoint.pt.k1ll3d.tmp").write_bytes(at_20[:100])  # an atomic write cut short


def test_resume_after_a_kill_truncates_diagnostics_to_the_checkpoint_and_drops_the_partial_line(tmp_path):
    from inertia.experiments.train import train

    cfg = small()
    train(cfg, tmp_path / "full")
    run = tmp_path / "killed"
    _killed_after_the_checkpoint(run, cfg)
    steps = [r["step"] for r in read_jsonl(run / "diagnostics.jsonl")]
    assert steps.count(20) == 1 and 25 in steps  # before the resume: records past the checkpoint
    train(cfg, run, resume=True)
    full, resumed = read_jsonl(tmp_path / "full" / "diagnostics.jsonl"), read_jsonl(run / "diagnostics.jsonl")
    assert [r["step"] for r in resumed] == [0, 5, 10, 15, 20, 25]  # each once
    assert resumed == full  # bit-exact, as the uninterrupted run
    assert (run / "diagnostics.jsonl").read_text().endswith("\n")


def test_resume_removes_temporaries_left_by_a_killed_atomic_write(tmp_path):
    from inertia.experiments.train import train

    run = tmp_path / "killed"
    _killed_after_the_checkpoint(run, small())
    train(small(), run, resume=True)
    assert not list(run.glob(".*.tmp"))


def test_a_garbage_line_in_metrics_stops_a_resume_naming_the_file(tmp_path):
    from inertia.experiments.train import train

    run = tmp_path / "run"
    train(small(), run, stop_after=20)
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text(lines[0] + "garbage\n" + "".join(lines[1:]))
    with pytest.raises(UnreadableFileError, match=r"metrics\.jsonl: line 2 is not a JSON object"):
        train(small(), run, resume=True)
    assert "garbage" in (run / "metrics.jsonl").read_text()  # left for the user to look at


@pytest.mark.slow
def test_kill_9_of_a_monitored_run_then_resume_gives_the_uninterrupted_files(tmp_path):
    import json

    import torch

    from inertia.experiments.train import deterministic, train

    cfg = small(steps=300, eval_every=10, checkpoint_every=10, monitor={"quantities": ["layer_stats"], "every": 1})
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    run = tmp_path / "killed"
    code = (
        "import json, sys, torch\ntorch.set_num_threads(1)\n"
        "from inertia.experiments.config import from_dict\nfrom inertia.experiments.train import train\n"
        f"train(from_dict(json.load(open({str(tmp_path / 'c.json')!r}))), {str(run)!r})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # past the first checkpoint, with records after it
        diag = run / "diagnostics.jsonl"
        if (run / "checkpoint.pt").exists() and diag.exists() and diag.read_bytes().count(b"\n") >= 25:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, 9)
    proc.wait()
    assert read_json(run / "summary.json")["status"] == "running"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, run, resume=True)
        train(cfg, tmp_path / "full")
    finally:
        torch.set_num_threads(threads)
    assert read_jsonl(run / "diagnostics.jsonl") == read_jsonl(tmp_path / "full" / "diagnostics.jsonl")
    assert [deterministic(m) for m in read_jsonl(run / "metrics.jsonl")] == [
        deterministic(m) for m in read_jsonl(tmp_path / "full" / "metrics.jsonl")
    ]
