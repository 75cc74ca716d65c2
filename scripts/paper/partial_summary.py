"""What the trials of an unfinished paper-scale pool show so far: each trial's last metrics line,
read from its run folder (no training). For a long run that a session had to leave running:

    .venv/bin/python scripts/paper/partial_summary.py runs/reproduce/sutskever2013/memorization-full-lr \
        docs/results/sutskever2013-memorization-partial.json [--carry OLD.json]

``--carry OLD.json``: an earlier record of a pool of the same name (the one the run was started
with ``--carry`` from, since run folders do not outlive a session's machine) whose completed
trials the pool lacks are kept in the new record, each with ``carried_from``, so one record holds
every completed run of all the sessions; OLD.json may be the output file itself (it is read
before the new record replaces it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

MAX_RECORD_BYTES = 16 << 20  # a partial record is a few kB; anything beyond this is not one


def fail(message: str) -> NoReturn:
    """Bad input to a paper script: one ``error:`` line on stderr and exit status 2 (as inertia's
    command line), before any training starts."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _json_file(path: Path) -> object:
    """A small JSON file's value, or None when it is missing, too large or not JSON."""
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            return None
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_record(path: Path) -> dict:
    """A ``partial_summary.py`` record read with its size bounded and its shape checked (a dict with
    a ``trials`` list of dicts); anything else is one error line."""
    if not path.is_file():
        fail(f"--carry {path}: no such file (expected a partial_summary.py record, a JSON file)")
    size = path.stat().st_size
    if size > MAX_RECORD_BYTES:
        fail(f"--carry {path}: {size:,} bytes, more than a partial record's {MAX_RECORD_BYTES:,}")
    try:
        record = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"--carry {path} is not JSON ({e})")
    trials = record.get("trials") if isinstance(record, dict) else None
    if not isinstance(trials, list) or not all(isinstance(row, dict) for row in trials):
        fail(f"--carry {path} is not a partial_summary.py record (expected an object with a 'trials' list of objects)")
    return record


def metrics_lines(trial: Path) -> list[dict]:
    path = trial / "metrics.jsonl"
    lines = []
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if line:
            try:
                value = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill: the ones before it stand
                break
            if isinstance(value, dict):
                lines.append(value)
    return lines


def best_test_error(lines: list[dict]) -> dict:
    """The lowest test error of the run's evaluations and the update it was at (a run that learned
    and then lost it ends above its best)."""
    errs = [(r["test_error"], r["step"]) for r in lines if isinstance(r.get("test_error"), (int, float))]
    if not errs:
        return {"best_test_error": None, "best_test_error_at": None}
    err, step = min(errs)
    return {"best_test_error": err, "best_test_error_at": step}


def pop_carry(argv: list[str]) -> tuple[Path | None, list[str]]:
    """``--carry PARTIAL.json`` taken out of a paper script's arguments: (the record's path or None,
    the other arguments); a missing value or a file that is not a record is one error line."""
    if "--carry" not in argv:
        return None, argv
    i = argv.index("--carry")
    if i + 1 >= len(argv):
        fail("--carry needs a value: a partial_summary.py record (a JSON file)")
    read_record(Path(argv[i + 1]))
    return Path(argv[i + 1]), argv[:i] + argv[i + 2 :]


def main(pool: Path, out: Path, carry: Path | None = None) -> None:
    if not (pool / "trials").is_dir():
        fail(f"{pool} is not a pool folder (no trials/ in it)")
    if not out.parent.is_dir():
        fail(f"{out.parent} is not a folder (the record's place)")
    old = read_record(carry) if carry is not None else None
    if old is not None and Path(str(old.get("pool", ""))).name != pool.name:
        fail(f"--carry {carry} is the record of pool {old.get('pool')!r}, not of one named {pool.name!r}")
    rows = []
    for trial in sorted(p for p in (pool / "trials").iterdir() if p.is_dir()):
        summary = _json_file(trial / "summary.json")
        if (trial / "summary.json").exists():
            status = summary.get("status") if isinstance(summary, dict) else "unreadable summary.json"
        else:
            status = "running or stopped"
        config = _json_file(trial / "config.json")
        config = config if isinstance(config, dict) else {}
        lines = metrics_lines(trial)
        m = lines[-1] if lines else {}
        rows.append(
            {
                "trial": trial.name,
                "status": status,
                "lr": config.get("optimizer", {}).get("lr"),
                "mu_max": (config.get("schedule") or {}).get("mu_max", 0.0),
                "nesterov": config.get("optimizer", {}).get("nesterov"),
                "seed": config.get("seed"),
                **{
                    k: m.get(k)
                    for k in ("step", "train_error", "train_loss", "test_loss", "test_error", "test_solved", "wall_s")
                },
                **best_test_error(lines),
                "clip_grad_norm": config.get("clip_grad_norm"),
            }
        )
    if old is not None:
        rows = merged(rows, old)
    record = {"pool": str(pool), "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "trials": rows}
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out)  # atomic: the old record stands until the new one is whole
    print(json.dumps(rows, indent=2))


def merged(rows: list[dict], old: dict) -> list[dict]:
    """``rows`` (this pool's trials) and the completed trials of the earlier record ``old`` that
    this pool has not completed (each marked ``carried_from``: the pool that ran it)."""
    done = {r["trial"] for r in rows if r["status"] == "completed"}
    carried = [
        {**r, "carried_from": r.get("carried_from") or old.get("pool")}
        for r in old["trials"]
        if r.get("status") == "completed" and r.get("trial") not in done
    ]
    names = {r.get("trial") for r in carried}
    return carried + [r for r in rows if r["trial"] not in names]


if __name__ == "__main__":
    carry, args = pop_carry(sys.argv[1:])
    if len(args) != 2:
        fail(
            "usage: partial_summary.py POOL_FOLDER RECORD.json [--carry OLD.json] (e.g. "
            "runs/reproduce/sutskever2013/curves-full-50000 docs/results/sutskever2013-curves-partial.json)"
        )
    main(Path(args[0]), Path(args[1]), carry)
