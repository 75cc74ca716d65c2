"""The run store refuses what would mix, leak or lose runs: bad folder names, a changed config on
resume, a second writer, unreadable files named, temporaries of a killed write removed."""

import os
import subprocess
import sys

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
    with pytest.raises(ValueError, match=r"cannot resume runs/e/r: its config differs at optimizer\.lr, seed: "
                                         r"optimizer\.lr: stored 0\.1, new 0\.2"):
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
    code = ("import fcntl, os, sys, time\n"
            f"fd = os.open({str(folder / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(60)\n")
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
