"""Sutskever et al. (2013), Table 5, the tanh RNN problems at the paper's size: 100 tanh units,
minibatch 100, up to 50,000 updates, the echo-state init of ``inertia.reproduce.sutskever2013``.

- ``addition``: T = 80; NAG (mu_max 0.995) against SGD, 3 seeds; a run is solved at its first
  evaluation with test MSE < 0.04 (about 15 minutes per unsolved run on one core of a 2-core CPU).
- ``memorization``: 5-bit memorization at T = 200 (an output at every step); NAG (mu_max 0.99)
  against SGD, each at its best rate of a small grid, 2 seeds; and beside them (not the paper's
  protocol) both with the gradient norm clipped at 1; solved when every recalled symbol of the
  test set is right.

Protocol (the paper's: the best learning rate per setting, then seeds at it):
  stage 1: each setting at each learning rate of its grid, seed 0 (rate-major: every setting's
           first rate, then every setting's second, ...);
  stage 2: each setting's best rate (solved first, then the lowest final test error) for the other seeds.
One worker, resumable (rerun the same command); solved runs stop.
Writes docs/results/sutskever2013-TASK-full.json.

``--carry PARTIAL.json`` (a ``scripts/paper/partial_summary.py`` record of an earlier pool of this
task, for when its run folders are gone with an earlier machine): the record's completed runs of
a setting of the grid (the same mu_max, clipping, rate and seed) are not trained again; their
metrics are taken from it, and the result lists them under ``carried``.

Command: ``nice .venv/bin/python scripts/paper/sutskever_rnn.py TASK [--carry PARTIAL.json]``.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
from partial_summary import fail, pop_carry, read_record  # this script's folder is on sys.path

from inertia.experiments.sweep import run_configs
from inertia.reproduce import sutskever2013 as S

# task: (config key, {setting: (mu_max, learning rates)}, seeds, the paper's test error per setting)
TASKS = {
    "addition": (
        "addition",
        {"NAG 0.995": (0.995, [0.003, 0.001, 0.01], None), "SGD": (0.0, [0.02, 0.01, 0.05], None)},
        3,
        {"NAG 0.995": 0.00025, "SGD": 0.39},
    ),
    "memorization": (
        "memorization",
        # The paper's protocol (no clipping), at the rates the T = 200 prototypes point to
        # (scripts/paper/memorization_probe.py): NAG 0.99 at lr 0.01 learned nothing in 50,000 updates (its
        # loss oscillating with gradient-norm spikes of 20x); at lr 0.003 it learned (error 0.26 at 4,250 updates)
        # until a spike of gradient norm 57 at 4,500 (mu 0.974) undid it. Beside it, the same with the gradient
        # norm clipped at 1 (not the paper's protocol), which solved the task in the prototype in 4,500 updates.
        {
            "NAG 0.99, clipped at 1": (0.99, [0.01], 1.0),
            "SGD, clipped at 1": (0.0, [0.3], 1.0),
            "NAG 0.99": (0.99, [0.003, 0.001], None),
            "SGD": (0.0, [0.1, 0.03, 0.3], None),
        },
        2,
        {"NAG 0.99": 0.0, "SGD": None, "NAG 0.99, clipped at 1": None, "SGD, clipped at 1": None},
    ),
}
RUN_METRICS = ("step", "test_error", "test_solved", "wall_s")
OUT = Path("runs/reproduce/sutskever2013")


def _label(task: str, setting: str, lr: float, seed: int) -> str:
    return f"{task}|{setting}|{lr}|{seed}"


def _score(t: dict) -> tuple:
    m = t["metrics"]
    err = m.get("test_error")
    err = err if isinstance(err, (int, float)) and math.isfinite(err) else math.inf
    return (not m.get("test_solved", False), err, m.get("step", math.inf))


def _progress(t0: float):
    def report(done: int, total: int) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {done}/{total} runs done, {time.time() - t0:.0f} s", flush=True)

    return report


def carried(path: Path, task: str, grid: dict, seed0: int) -> dict:
    """The completed runs of a partial record that belong to ``grid``, as trials keyed by label."""
    record = read_record(path)
    if f"{task}-full-" not in str(record.get("pool", "")):
        fail(f"--carry {path} is the record of pool {record.get('pool')!r}, not of a {task} pool")
    out = {}
    for row in record["trials"]:
        for setting, (mu, lrs, clip) in grid.items():
            same = row.get("mu_max") == mu and row.get("clip_grad_norm") == clip and row.get("lr") in lrs
            if same and row.get("status") == "completed" and isinstance(row.get("seed"), int):
                label = _label(task, setting, row["lr"], row["seed"] - seed0)
                out[label] = {
                    "status": "completed",
                    "message": f"carried from {record['pool']} ({path})",
                    "metrics": {k: row.get(k) for k in RUN_METRICS},
                }
    return out


def main(argv: list[str]) -> None:
    carry, argv = pop_carry(argv)
    if len(argv) != 1 or argv[0] not in TASKS:
        fail(f"usage: sutskever_rnn.py {{{','.join(TASKS)}}} [--carry PARTIAL.json]; got {' '.join(argv)!r}")
    task = argv[0]
    key, GRID, SEEDS, paper = TASKS[task]
    torch.set_num_threads(1)
    add = S.get_config(quick=False)[key]
    done = carried(carry, task, GRID, add.seed) if carry else {}
    t0 = time.time()
    # rate-major (every setting's first rate, then every setting's second, ...): an unfinished
    # pool already holds a run of every setting
    stage1 = {
        _label(task, s, lrs[i], 0): S._rnn_config(add, mu, lrs[i], add.seed, clip)
        for i in range(max(len(lrs) for _, lrs, _ in GRID.values()))
        for s, (mu, lrs, clip) in GRID.items()
        if i < len(lrs)
    }
    by = {label: t for label, t in done.items() if label in stage1}
    todo = {label: c for label, c in stage1.items() if label not in by}
    r1 = run_configs(todo, out=OUT, name=f"{task}-full-lr", workers=1, resume=True, progress=_progress(t0))
    by.update({t["overrides"]["label"]: t for t in r1.trials})
    best = {s: min(lrs, key=lambda lr, s=s: _score(by[_label(task, s, lr, 0)])) for s, (_, lrs, _) in GRID.items()}
    stage2 = {
        _label(task, s, best[s], k): S._rnn_config(add, GRID[s][0], best[s], add.seed + k, GRID[s][2])
        for s in GRID
        for k in range(1, SEEDS)
    }
    by.update({label: t for label, t in done.items() if label in stage2})
    todo = {label: c for label, c in stage2.items() if label not in by}
    r2 = run_configs(todo, out=OUT, name=f"{task}-full-seeds", workers=1, resume=True, progress=_progress(t0))
    by.update({t["overrides"]["label"]: t for t in r2.trials})
    runs = [
        {
            "label": label,
            "status": t["status"],
            "message": t["message"],
            **{k: t["metrics"].get(k) for k in RUN_METRICS},
        }
        for label, t in by.items()
    ]
    summary = {
        s: {
            "best_lr": best[s],
            "solved": sum(bool(by[_label(task, s, best[s], k)]["metrics"].get("test_solved")) for k in range(SEEDS)),
            "seeds": SEEDS,
            "test_error": [by[_label(task, s, best[s], k)]["metrics"].get("test_error") for k in range(SEEDS)],
            "status": [by[_label(task, s, best[s], k)]["status"] for k in range(SEEDS)],
            "updates_at_last_evaluation": [
                by[_label(task, s, best[s], k)]["metrics"].get("step") for k in range(SEEDS)
            ],
        }
        for s in GRID
    }
    result = Path(f"docs/results/sutskever2013-{task}-full.json")
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(
        json.dumps(
            {
                "paper": "sutskever2013",
                "experiment": f"Table 5, {task}",
                "command": f"nice .venv/bin/python scripts/paper/sutskever_rnn.py {task}",
                "sizes": {
                    "T": add.data["seq_len"],
                    "hidden": add.model["hidden_size"],
                    "batch": add.batch_size,
                    "max_updates": add.steps,
                    "n_train": add.data["n"],
                    "n_test": add.data["n_test"],
                },
                "grid": {s: {"mu_max": mu, "lrs": lrs, "clip_grad_norm": clip} for s, (mu, lrs, clip) in GRID.items()},
                "paper_test_error": paper,
                "summary": summary,
                "runs": runs,
                "wall_s": sum(r["wall_s"] or 0.0 for r in runs),
                "carried": sorted(label for label in done if label in by),
                "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread, torch {torch.__version__}",
            },
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
