"""Sutskever et al. (2013), Table 5, the addition problem at the paper's size: T = 80, 100 tanh
units, minibatch 100, up to 50,000 updates, the echo-state init of ``inertia.reproduce.sutskever2013``.

Protocol (the paper's: the best learning rate per setting, then seeds at it):
  stage 1: NAG (mu_max 0.995) and SGD (mu = 0) at each learning rate of a small grid, seed 0;
  stage 2: each setting's best rate (solved first, then the lowest final test error) for seeds 1, 2.
One worker, resumable (rerun the same command); a solved run stops at its first evaluation with
test MSE < 0.04. Writes docs/results/sutskever2013-addition-full.json.

Command: ``nice .venv/bin/python scripts/paper/sutskever_addition.py`` (about 15 minutes per
unsolved run on one core of a 2-core CPU).
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from inertia.experiments.sweep import run_configs
from inertia.reproduce import sutskever2013 as S

GRID = {"NAG 0.995": (0.995, [0.003, 0.001, 0.01]), "SGD": (0.0, [0.02, 0.01, 0.05])}
SEEDS = 3
RUN_METRICS = ("step", "test_error", "test_solved", "wall_s")
OUT = Path("runs/reproduce/sutskever2013")
RESULT = Path("docs/results/sutskever2013-addition-full.json")


def _label(setting: str, lr: float, seed: int) -> str:
    return f"addition|{setting}|{lr}|{seed}"


def _score(t: dict) -> tuple:
    m = t["metrics"]
    err = m.get("test_error")
    err = err if isinstance(err, (int, float)) and math.isfinite(err) else math.inf
    return (not m.get("test_solved", False), err, m.get("step", math.inf))


def _progress(t0: float):
    def report(done: int, total: int) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {done}/{total} runs done, {time.time() - t0:.0f} s", flush=True)

    return report


def main() -> None:
    torch.set_num_threads(1)
    add = S.get_config(quick=False)["addition"]
    t0 = time.time()
    stage1 = {_label(s, lr, 0): S._rnn_config(add, mu, lr, add.seed) for s, (mu, lrs) in GRID.items() for lr in lrs}
    r1 = run_configs(stage1, out=OUT, name="addition-full-lr", workers=1, resume=True, progress=_progress(t0))
    by = {t["overrides"]["label"]: t for t in r1.trials}
    best = {s: min(lrs, key=lambda lr, s=s: _score(by[_label(s, lr, 0)])) for s, (_, lrs) in GRID.items()}
    stage2 = {
        _label(s, best[s], k): S._rnn_config(add, GRID[s][0], best[s], add.seed + k)
        for s in GRID
        for k in range(1, SEEDS)
    }
    r2 = run_configs(stage2, out=OUT, name="addition-full-seeds", workers=1, resume=True, progress=_progress(t0))
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
            "solved": sum(bool(by[_label(s, best[s], k)]["metrics"].get("test_solved")) for k in range(SEEDS)),
            "seeds": SEEDS,
            "test_error": [by[_label(s, best[s], k)]["metrics"].get("test_error") for k in range(SEEDS)],
            "status": [by[_label(s, best[s], k)]["status"] for k in range(SEEDS)],
            "updates_at_last_evaluation": [by[_label(s, best[s], k)]["metrics"].get("step") for k in range(SEEDS)],
        }
        for s in GRID
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(
        json.dumps(
            {
                "paper": "sutskever2013",
                "experiment": "Table 5, addition",
                "command": "nice .venv/bin/python scripts/paper/sutskever_addition.py",
                "sizes": {
                    "T": add.data["seq_len"],
                    "hidden": add.model["hidden_size"],
                    "batch": add.batch_size,
                    "max_updates": add.steps,
                    "n_train": add.data["n"],
                    "n_test": add.data["n_test"],
                },
                "grid": {s: lrs for s, (_, lrs) in GRID.items()},
                "paper_test_error": {"NAG 0.995": 0.00025, "SGD": 0.39},
                "summary": summary,
                "runs": runs,
                "wall_s": sum(r["wall_s"] or 0.0 for r in runs),
                "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread, torch {torch.__version__}",
            },
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
