"""The run store writes atomically and survives a kill mid-write."""

import json
import os

import pytest
import torch

from inertia.experiments.store import (
    JsonlWriter,
    RunDir,
    atomic_torch_save,
    atomic_write_json,
    read_jsonl,
    to_json,
)


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert os.listdir(tmp_path) == ["a.json"]


def test_failed_write_keeps_old_content(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    with pytest.raises(TypeError):
        atomic_write_json(p, {"x": object()})
    assert json.loads(p.read_text()) == {"x": 1}
    assert os.listdir(tmp_path) == ["a.json"]


def test_non_finite_floats_are_written_as_strings_that_parse():
    assert json.loads(to_json({"a": float("nan"), "b": float("inf")})) == {"a": "nan", "b": "inf"}


def test_jsonl_reader_drops_partial_last_line_left_by_a_kill(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert read_jsonl(p) == [{"step": 1}, {"step": 2}]


def test_jsonl_writer_repairs_partial_tail_before_appending(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n{"st')
    with JsonlWriter(p) as w:
        w.write({"step": 2})
    assert read_jsonl(p) == [{"step": 1}, {"step": 2}]


def test_truncate_after_keeps_only_given_records(tmp_path):
    p = tmp_path / "m.jsonl"
    with JsonlWriter(p) as w:
        for s in range(5):
            w.write({"step": s})
        w.truncate_after([{"step": 0}, {"step": 1}])
        w.write({"step": 2})
    assert [r["step"] for r in read_jsonl(p)] == [0, 1, 2]


def test_torch_checkpoint_round_trip(tmp_path):
    p = tmp_path / "c.pt"
    atomic_torch_save(p, {"w": torch.arange(3.0)})
    assert torch.equal(torch.load(p)["w"], torch.arange(3.0))


def test_summary_rejects_unknown_status(tmp_path):
    rd = RunDir(tmp_path)
    with pytest.raises(ValueError, match="status must be one of"):
        rd.write_summary(status="done")
    rd.write_summary(status="completed", step=3)
    assert rd.read_summary()["status"] == "completed"


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_get_the_permissions_the_umask_gives_new_files(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
        atomic_torch_save(tmp_path / "c.pt", {"w": torch.zeros(1)})
        (tmp_path / "plain.txt").write_text("x")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == expected
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == expected
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == expected


@pytest.mark.parametrize("line", ["5", "[]", '"text"'])
def test_read_jsonl_names_a_line_that_is_json_but_not_an_object(tmp_path, line):
    from inertia.experiments.store import UnreadableFileError, read_jsonl

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0}\n' + line + "\n")
    with pytest.raises(UnreadableFileError, match="metrics.jsonl.*line 2 is not a JSON object"):
        read_jsonl(path)
