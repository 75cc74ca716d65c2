"""What the trials of an unfinished paper-scale pool show so far: each trial's last metrics line,
read from its run folder (no training). For a long run that a session had to leave running:

    .venv/bin/python scripts/paper/partial_summary.py runs/reproduce/sutskever2013/memorization-full-lr \
        docs/results/sutskever2013-memorization-partial.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def metrics_lines(trial: Path) -> list[dict]:
    path = trial / "metrics.jsonl"
    lines = []
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if line:
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: the ones before it stand
                break
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
    the other arguments); a missing or absent file is one error line."""
    if "--carry" not in argv:
        return None, argv
    i = argv.index("--carry")
    if i + 1 >= len(argv) or not Path(argv[i + 1]).is_file():
        sys.exit("error: --carry needs a partial_summary.py record (a JSON file)")
    return Path(argv[i + 1]), argv[:i] + argv[i + 2 :]


def main(pool: Path, out: Path) -> None:
    rows = []
    for trial in sorted((pool / "trials").iterdir()):
        summary = trial / "summary.json"
        status = json.loads(summary.read_text()).get("status") if summary.exists() else "running or stopped"
        config = json.loads((trial / "config.json").read_text()) if (trial / "config.json").exists() else {}
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
    out.write_text(
        json.dumps(
            {"pool": str(pool), "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "trials": rows},
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
