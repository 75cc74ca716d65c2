"""scripts/paper, the commands behind docs/REPRODUCTIONS.md's paper-scale sections: bad input is one
``error:`` line and exit status 2 before any training; a partial record is read with its shape
checked; ``--carry`` takes exactly the completed runs of the grid it is given; ``partial_summary.py``
records what a pool's run folders hold, a line cut by a kill included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "paper"


@pytest.fixture
def paper(monkeypatch, tmp_path):
    """The scripts' modules, imported as their commands import each other (their folder on
    sys.path), in a scratch working folder; the torch thread count their ``main`` sets is restored."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    import curves_table1
    import partial_summary
    import sutskever_rnn

    yield curves_table1, sutskever_rnn, partial_summary
    torch.set_num_threads(threads)


def _write(path: Path, value) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def _exits_2(capsys, fn, *args) -> str:
    with pytest.raises(SystemExit) as e:
        fn(*args)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_is_one_error_line_and_exit_2(paper, capsys, tmp_path):
    curves, rnn, summary = paper
    missing = tmp_path / "missing.json"
    not_json = _write(tmp_path / "not.json", "{'trials': [")
    no_trials = _write(tmp_path / "shape.json", {"pool": "x", "trials": {"a": 1}})
    other_pool = _write(tmp_path / "other.json", {"pool": "runs/x/addition-full-lr", "trials": []})
    cases = [
        (curves.main, ["abc"], "'abc'"),
        (curves.main, ["-5"], "'-5'"),
        (curves.main, ["10"], "at least 2000"),
        (curves.main, ["2000", "3000"], "usage"),
        (curves.main, ["--carry"], "needs a value"),
        (curves.main, ["--carry", str(missing)], "no such file"),
        (curves.main, ["--carry", str(not_json)], "not JSON"),
        (curves.main, ["--carry", str(no_trials)], "'trials' list"),
        (curves.main, ["50000", "--carry", str(other_pool)], "not of curves-full-50000"),
        (rnn.main, [], "usage"),
        (rnn.main, ["bogus"], "'bogus'"),
        (rnn.main, ["memorization", "--carry", str(other_pool)], "not of a memorization pool"),
    ]
    for fn, argv, names in cases:
        assert names in _exits_2(capsys, fn, argv), argv
    assert "not a pool folder" in _exits_2(capsys, summary.main, tmp_path / "nowhere", tmp_path / "out.json")
    assert not (tmp_path / "runs").exists()  # nothing started


def test_a_record_larger_than_any_partial_record_is_refused_unread(paper, capsys, tmp_path, monkeypatch):
    _, _, summary = paper
    monkeypatch.setattr(summary, "MAX_RECORD_BYTES", 100)
    big = _write(tmp_path / "big.json", {"pool": "p", "trials": [{"lr": 0.1}] * 20})
    assert "more than a partial record's 100" in _exits_2(capsys, summary.read_record, big)


@pytest.mark.slow
def test_the_commands_exit_2_without_a_traceback(tmp_path):
    for argv in (
        ["curves_table1.py", "abc"],
        ["hu_grid.py", "extra"],
        ["memorization_dynamics.py", "--lr", "-1"],
        ["partial_summary.py"],
    ):
        p = subprocess.run(
            [sys.executable, str(SCRIPTS / argv[0]), *argv[1:]], cwd=tmp_path, capture_output=True, text=True
        )
        assert p.returncode == 2, (argv, p.stderr)
        assert "Traceback" not in p.stderr and "error:" in p.stderr.strip().splitlines()[-1], (argv, p.stderr)
    assert not (tmp_path / "runs").exists()


def test_partial_summary_records_each_trial_from_its_folder(paper, tmp_path):
    _, _, summary = paper
    pool = tmp_path / "pool"
    done = pool / "trials" / "a-done"
    done.mkdir(parents=True)
    _write(done / "config.json", {"optimizer": {"lr": 0.01, "nesterov": True}, "schedule": {"mu_max": 0.99}, "seed": 3})
    _write(done / "summary.json", {"status": "completed"})
    lines = [{"step": 100, "test_error": 0.4}, {"step": 200, "test_error": 0.2}, {"step": 300, "test_error": 0.3}]
    (done / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + '\n{"step": 40')  # cut by a kill
    broken = pool / "trials" / "b-broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "summary.json").write_text("[1, 2")
    (pool / "trials" / "stray-file").write_text("not a trial")
    out = tmp_path / "record.json"
    summary.main(pool, out)
    record = json.loads(out.read_text())
    assert record["pool"] == str(pool)
    a, b = record["trials"]
    assert a["trial"] == "a-done" and a["status"] == "completed"
    assert (a["lr"], a["mu_max"], a["nesterov"], a["seed"]) == (0.01, 0.99, True, 3)
    assert (a["step"], a["test_error"]) == (300, 0.3)  # the last whole line
    assert (a["best_test_error"], a["best_test_error_at"]) == (0.2, 200)
    assert b["status"] == "unreadable summary.json" and b["lr"] is None and b["step"] is None
    assert summary.read_record(out)["trials"] == record["trials"]  # a record carries


def test_curves_carry_takes_only_completed_runs_of_the_same_grid_and_length(paper, tmp_path):
    curves, _, _ = paper
    from inertia.reproduce import sutskever2013 as S

    label, mu, nes, _ = next(s for s in S.SIZES["full"].ae_settings if s[1] > 0)
    row = {"status": "completed", "lr": 0.005, "mu_max": mu, "nesterov": nes, "step": 2000, "train_error": 1.5}
    rows = [
        row,
        {**row, "lr": 0.01, "step": 1000},  # another update count
        {**row, "lr": 0.001, "status": "running or stopped"},
        {**row, "lr": 0.05, "train_error": None},  # no error to carry
        {**row, "lr": 0.123},  # not a rate of the grid
        {**row, "lr": 0.0005, "mu_max": 0.5},  # not a setting of Table 1
    ]
    record = _write(tmp_path / "r.json", {"pool": "runs/reproduce/sutskever2013/curves-full-2000", "trials": rows})
    got = curves.carried(record, 2000)
    assert list(got) == [f"ae|{label}|0.005"]
    assert got[f"ae|{label}|0.005"]["metrics"]["train_error"] == 1.5
    assert set(got) <= set(curves.configs(2000))  # labels of the grid the script trains


def test_rnn_carry_matches_momentum_clipping_rate_and_seed(paper, tmp_path):
    _, rnn, _ = paper
    _, grid, _, _ = rnn.TASKS["memorization"]
    base = {"status": "completed", "step": 50_000, "test_error": 0.3, "test_solved": False, "wall_s": 9.0}
    rows = [
        {**base, "mu_max": 0.99, "clip_grad_norm": 1.0, "lr": 0.01, "seed": 7},
        {**base, "mu_max": 0.0, "clip_grad_norm": 1.0, "lr": 0.3, "seed": 8},
        {**base, "mu_max": 0.99, "clip_grad_norm": None, "lr": 0.01, "seed": 7},  # 0.01 is not unclipped NAG's
        {**base, "mu_max": 0.99, "clip_grad_norm": None, "lr": 0.003, "seed": 7, "status": "running or stopped"},
    ]
    record = _write(tmp_path / "r.json", {"pool": "runs/x/memorization-full-lr", "trials": rows})
    got = rnn.carried(record, "memorization", grid, seed0=7)
    assert sorted(got) == ["memorization|NAG 0.99, clipped at 1|0.01|0", "memorization|SGD, clipped at 1|0.3|1"]
    assert got["memorization|SGD, clipped at 1|0.3|1"]["metrics"]["test_error"] == 0.3


def test_a_new_record_keeps_the_earlier_records_completed_runs(paper, tmp_path, capsys):
    """Run folders do not outlive a session's machine: the record written at the end of a session
    holds the completed runs of the record the session's run was carried from, and its own."""
    _, _, summary = paper
    pool = tmp_path / "runs" / "curves-full-2000"
    for name, status in (("t-new-done", "completed"), ("t-old-done", None)):  # the second: retrained, unfinished
        d = pool / "trials" / name
        d.mkdir(parents=True)
        if status:
            _write(d / "summary.json", {"status": status})
        (d / "metrics.jsonl").write_text(json.dumps({"step": 2000 if status else 500, "train_error": 1.0}) + "\n")
    earlier = {
        "pool": "/gone/machine/curves-full-2000",
        "trials": [
            {"trial": "t-old-done", "status": "completed", "step": 2000, "train_error": 2.0},
            {"trial": "t-old-running", "status": "running or stopped", "step": 100},
            {"trial": "t-older", "status": "completed", "step": 2000, "carried_from": "/older/curves-full-2000"},
        ],
    }
    record = _write(tmp_path / "record.json", earlier)
    summary.main(pool, record, record)  # the record replaced by its successor, read first
    rows = {r["trial"]: r for r in json.loads(record.read_text())["trials"]}
    assert set(rows) == {"t-new-done", "t-old-done", "t-older"}
    assert rows["t-old-done"]["train_error"] == 2.0 and rows["t-old-done"]["carried_from"] == earlier["pool"]
    assert rows["t-older"]["carried_from"] == "/older/curves-full-2000"
    assert rows["t-new-done"]["status"] == "completed" and "carried_from" not in rows["t-new-done"]
    other = _write(tmp_path / "other.json", {"pool": "runs/x/curves-full-50000", "trials": []})
    capsys.readouterr()
    assert "not of one named 'curves-full-2000'" in _exits_2(capsys, summary.main, pool, tmp_path / "o.json", other)
