"""Sutskever et al. (2013), Table 1, the CURVES autoencoder at the paper's architecture
(784-400-200-100-50-25-6, mirrored; sparse init, batch 200, 20,000 generated CURVES-like images)
for STEPS updates per run instead of the paper's 750,000, with the final phase (momentum 0.9) over
the last 1,000 updates as the paper places it.

Protocol (the paper's): every Table 1 setting (SGD; NAG and CM at mu_max 0.9, 0.99, 0.995, 0.999)
at every learning rate of the paper's grid (0.05 ... 0.0001); each setting's error is that of its
best learning rate. Runs go learning-rate-major (every setting at 0.005, then at 0.01, ...), so an
unfinished pool already compares every setting at the same rates. About 19 ms per update on one
core (benchmarks/bench_stacked.py): ~16 minutes per run, 54 runs.

One worker, resumable (rerun the same command; finished runs are reused). Whenever it stops it
writes docs/results/sutskever2013-curves-full.json from the runs finished so far.

``--carry PARTIAL.json`` (a ``scripts/paper/partial_summary.py`` record of an earlier pool of the
same STEPS, e.g. docs/results/sutskever2013-curves-partial.json, for when the run folders are gone
with an earlier machine): its completed runs of the same setting, rate and update count are not
trained again; their final error is taken from it, and the result lists them under ``carried``.

Command: ``nice .venv/bin/python scripts/paper/curves_table1.py [STEPS] [--carry PARTIAL.json]``
(default 50000).
"""

from __future__ import annotations

import dataclasses
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

LR_ORDER = [0.005, 0.01, 0.001, 0.05, 0.0005, 0.0001]
OUT = Path("runs/reproduce/sutskever2013")
RESULT = Path("docs/results/sutskever2013-curves-full.json")


def _label(setting: str, lr: float) -> str:
    return f"ae|{setting}|{lr}"


def configs(steps: int) -> dict:
    sizes = dataclasses.replace(S.SIZES["full"], ae_steps=steps)
    ae = S.get_config(quick=False, sizes=sizes)["autoencoder"]
    settings = [(label, mu, nes) for label, mu, nes, _ in sizes.ae_settings]
    assert sorted(LR_ORDER) == sorted(S.PAPER_LRS)
    return {_label(label, lr): S._ae_config(ae, mu, nes, lr) for lr in LR_ORDER for label, mu, nes in settings}


def carried(path: Path, steps: int) -> dict:
    """The completed runs of a partial record, as trials keyed by label (only their final error and
    update count: what :func:`summary` reads)."""
    record = read_record(path)
    if not str(record.get("pool", "")).endswith(f"curves-full-{steps}"):
        fail(f"--carry {path} is the record of pool {record.get('pool')!r}, not of curves-full-{steps}")
    by_setting = {(mu, nes): label for label, mu, nes, _ in S.SIZES["full"].ae_settings}
    out = {}
    for row in record["trials"]:
        label = by_setting.get((row.get("mu_max") or 0.0, bool(row.get("nesterov"))))
        error = row.get("train_error")
        finished = row.get("status") == "completed" and row.get("step") == steps and isinstance(error, (int, float))
        if finished and label and row.get("lr") in LR_ORDER:
            out[_label(label, row["lr"])] = {
                "status": "completed",
                "metrics": {"train_error": error, "step": steps, "wall_s": row.get("wall_s")},
                "carried_from": record["pool"],
            }
    return out


def summary(by: dict, steps: int) -> dict:
    table = {}
    for label, *_ in S.SIZES["full"].ae_settings:
        errs = {}
        for lr in LR_ORDER:
            t = by.get(_label(label, lr))
            if t is not None and t["status"] == "completed":
                errs[lr] = S._final(t)
        finite = {lr: e for lr, e in errs.items() if math.isfinite(e)}
        best = min(finite, key=lambda lr: finite[lr]) if finite else None
        table[label] = {
            "lrs_finished": sorted(errs),
            "lrs_of_grid": len(LR_ORDER),
            "error_per_lr": {str(lr): (e if math.isfinite(e) else None) for lr, e in errs.items()},
            "best_lr": best,
            "train_error": finite.get(best) if best is not None else None,
            "paper_train_error": S.PAPER_TABLE1.get(label),
        }
    return table


def main(argv: list[str]) -> None:
    carry, argv = pop_carry(argv)
    least = 2 * S.SIZES["full"].final_steps
    if len(argv) > 1:
        fail(f"usage: curves_table1.py [STEPS] [--carry PARTIAL.json]; got {' '.join(argv)!r}")
    if argv and not argv[0].isdigit():
        fail(f"STEPS must be a whole number of updates (at least {least}), got {argv[0]!r}")
    steps = int(argv[0]) if argv else 50_000
    if steps < least:
        fail(f"STEPS must be at least {least} (twice the final phase of {least // 2} updates), got {steps}")
    torch.set_num_threads(1)
    cfgs = configs(steps)
    done = carried(carry, steps) if carry else {}
    t0 = time.time()

    def progress(done: int, total: int) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {done}/{total} runs done, {time.time() - t0:.0f} s", flush=True)

    todo = {label: c for label, c in cfgs.items() if label not in done}
    r = run_configs(todo, out=OUT, name=f"curves-full-{steps}", workers=1, resume=True, progress=progress)
    by = {**done, **{t["overrides"]["label"]: t for t in r.trials}}
    some = next(iter(cfgs.values()))
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(
        json.dumps(
            {
                "paper": "sutskever2013",
                "experiment": "Table 1, CURVES autoencoder",
                "command": f"nice .venv/bin/python scripts/paper/curves_table1.py {steps}",
                "sizes": {
                    "encoder": some.model["sizes"],
                    "images": some.data["n"],
                    "batch": some.batch_size,
                    "updates": steps,
                    "paper_updates": 750_000,
                    "final_phase_updates": S.SIZES["full"].final_steps,
                },
                "mean_image_error": S.mean_image_error(some),
                "table1": summary(by, steps),
                "runs_finished": sum(t["status"] == "completed" for t in by.values()),
                "runs_total": len(cfgs),
                "carried": sorted(done),
                "wall_s": time.time() - t0,
                "machine": f"{platform.machine()}, 1 torch thread, torch {torch.__version__}",
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main(sys.argv[1:])
