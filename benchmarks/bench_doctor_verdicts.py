"""The doctor's verdicts against what training does, on the cases of ``doctor_cases.py``.

For each case the **outcome** is measured by training it with its own optimizer (inertia's
``Momentum``: SGD is momentum 0) full-batch for the case's number of updates: it *trains* when
the final loss is finite and below ``TRAINS_BELOW`` (0.5) of the smaller of the initial loss and
the loss of the best constant prediction (the label marginal's entropy for cross-entropy, the
targets' variance for squared error), so that a large initial loss that falls only to the
marginal does not count as training. The **verdict** is
the doctor's: healthy (no error or warning) or not. Then, on every case that does not train and
where the doctor has a finding, its top finding's fix is executed as printed (names available:
``model``, ``optimizer``, ``inertia``, ``torch``, ``nn``) and the case is trained again.

Outcomes (and fixed outcomes) are cached under ``runs/bench_doctor_verdicts/`` by the case's spec,
so a rerun only trains what changed. Thresholds are chosen on the ``tune`` half of the cases (a
fixed split by a hash of the name); the ``held_out`` half is only reported.

    python benchmarks/bench_doctor_verdicts.py [--only PREFIX] [--no-fixes] [--json PATH] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import torch
from torch import nn

import inertia
from doctor_cases import Case, all_cases
from inertia.optim import Momentum

TRAINS_BELOW = 0.5
TRIAL_SECONDS = 600.0  # the trial runs all its updates however loaded the machine (verdicts must not depend on load)
ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "runs" / "bench_doctor_verdicts" / "cache.json"


def make_optimizer(case: Case, model: nn.Module) -> Momentum:
    kind, lr, mu = case.optimizer
    return Momentum(model.parameters(), lr=lr, momentum=mu, nesterov=kind == "nag")


def constant_loss(y: torch.Tensor) -> float:
    """The loss of the best constant prediction: the entropy of the label marginal (integer
    targets, cross-entropy) or the mean variance of the targets (squared error)."""
    if y.dtype == torch.long:
        p = torch.bincount(y.reshape(-1)).double() / y.numel()
        p = p[p > 0]
        return float(-(p * p.log()).sum())
    return float(((y - y.mean(0)) ** 2).mean())


def train(model: nn.Module, x, y, loss_fn, optimizer, steps: int) -> dict:
    """Full-batch training; the loss before the first update and after the last."""
    model.train()
    with torch.no_grad():
        l0 = float(loss_fn(model(x), y))
    reference = min(l0, constant_loss(y))
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        if not math.isfinite(loss.item()):
            return {"l0": l0, "lf": float("nan"), "reference": reference, "trains": False}
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        lf = float(loss_fn(model(x), y))
    trains = bool(math.isfinite(lf) and lf < TRAINS_BELOW * reference)
    return {"l0": l0, "lf": lf, "reference": reference, "trains": trains}


def outcome(case: Case) -> dict:
    torch.manual_seed(0)
    model, x, y, loss_fn = case.build()
    return train(model, x, y, loss_fn, make_optimizer(case, model), case.steps)


def verdict(case: Case) -> dict:
    torch.manual_seed(0)
    model, x, y, loss_fn = case.build()
    kind, lr, mu = case.optimizer
    t0 = time.perf_counter()
    try:
        report = inertia.doctor(
            model, x, y, loss_fn, lr=lr, momentum=mu, nesterov=kind == "nag", trial_seconds=TRIAL_SECONDS
        )
    except Exception as e:  # noqa: BLE001 - a crash is a verdict too, and is reported
        return {"healthy": None, "crash": f"{type(e).__name__}: {e}", "codes": [], "seconds": 0.0}
    alarms = [f for f in report.findings if f.severity in ("error", "warning")]
    return {
        "healthy": report.healthy,
        "codes": [f"{f.severity}:{f.code}" for f in alarms],
        "top_fix": alarms[0].fix if alarms else None,
        "seconds": time.perf_counter() - t0,
    }


def fixed_outcome(case: Case, fix: str) -> dict:
    torch.manual_seed(0)
    model, x, y, loss_fn = case.build()
    optimizer = make_optimizer(case, model)
    names = {"model": model, "optimizer": optimizer, "inertia": inertia, "torch": torch, "nn": nn}
    try:
        exec(compile(fix, "<fix>", "exec"), names)  # noqa: S102 - the doctor's own printed fix
    except Exception as e:  # noqa: BLE001
        return {"runnable": False, "error": f"{type(e).__name__}: {e}", "trains": False}
    optimizer = names["optimizer"]
    return {"runnable": True, **train(model, x, y, loss_fn, optimizer, case.steps)}


def _load_cache() -> dict:
    try:
        return json.loads(CACHE.read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(cache: dict) -> None:
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    os.replace(tmp, CACHE)


def fill_outcomes(cases: list[Case], log=print) -> None:
    cache = _load_cache()
    for i, case in enumerate(cases):
        if case.spec() not in cache:
            cache[case.spec()] = outcome(case)
            _save_cache(cache)
        o = cache[case.spec()]
        log(f"[{i + 1}/{len(cases)}] {case.name}: trains={o['trains']} ({o['l0']:.3g} -> {o['lf']:.3g})")


def evaluate(cases: list[Case], fixes: bool = True, log=print) -> list[dict]:
    cache = _load_cache()
    rows = []
    for i, case in enumerate(cases):
        key = case.spec()
        if key not in cache:
            cache[key] = outcome(case)
            _save_cache(cache)
        out = cache[key]
        v = verdict(case)
        row = {
            "name": case.name,
            "family": case.family,
            "split": case.split,
            "optimizer": case.optimizer,
            "steps": case.steps,
            **out,
            **v,
        }
        row["agree"] = v["healthy"] is not None and v["healthy"] == out["trains"]
        if fixes and not out["trains"] and v.get("top_fix"):
            fkey = key + "|fix|" + v["top_fix"]
            if fkey not in cache:
                cache[fkey] = fixed_outcome(case, v["top_fix"])
                _save_cache(cache)
            row["fix_outcome"] = cache[fkey]
        rows.append(row)
        mark = "ok " if row["agree"] else "XX "
        log(
            f"[{i + 1}/{len(cases)}] {mark}{case.name}: trains={out['trains']} "
            f"({out['l0']:.3g} -> {out['lf']:.3g}), doctor={'crash' if v.get('crash') else v['codes'] or 'healthy'}"
        )
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for split in ("tune", "held_out", "all"):
        rs = [r for r in rows if split == "all" or r["split"] == split]
        tp = sum(1 for r in rs if not r["trains"] and r["healthy"] is False)  # alarm, does not train
        fn = sum(1 for r in rs if not r["trains"] and r["healthy"] is True)
        fp = sum(1 for r in rs if r["trains"] and r["healthy"] is False)  # false alarm
        tn = sum(1 for r in rs if r["trains"] and r["healthy"] is True)
        crash = sum(1 for r in rs if r["healthy"] is None)
        false_errors = [r["name"] for r in rs if r["trains"] and any(c.startswith("error:") for c in r["codes"])]
        fixable = [r for r in rs if "fix_outcome" in r]
        fixed = sum(1 for r in fixable if r["fix_outcome"]["trains"])
        out[split] = {
            "cases": len(rs),
            "accuracy": (tp + tn) / max(1, len(rs)),
            "alarm_and_fails": tp,
            "healthy_but_fails": fn,
            "alarm_but_trains": fp,
            "healthy_and_trains": tn,
            "crashes": crash,
            "error_findings_on_cases_that_train": false_errors,
            "fixes_tried": len(fixable),
            "fixes_that_train": fixed,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="run the cases whose name starts with this")
    ap.add_argument("--split", choices=("tune", "held_out", "all"), default="all", help="run one half only")
    ap.add_argument("--no-fixes", action="store_true", help="do not apply and re-train the fixes")
    ap.add_argument("--outcomes-only", action="store_true", help="only train the cases (fill the cache)")
    ap.add_argument("--json", default=None, help="write the rows and the summary here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [c for c in all_cases() if c.name.startswith(args.only) and args.split in ("all", c.split)]
    t0 = time.perf_counter()
    if args.outcomes_only:
        fill_outcomes(cases)
        print(f"{len(cases)} outcomes in {time.perf_counter() - t0:.0f} s")
        return
    rows = evaluate(cases, fixes=not args.no_fixes)
    s = summary(rows)
    print(json.dumps(s, indent=1))
    print(f"{len(rows)} cases in {time.perf_counter() - t0:.0f} s, torch {torch.__version__}, threads {args.threads}")
    for r in rows:
        if not r["agree"]:
            print(f"  disagree [{r['split']}] {r['name']}: trains={r['trains']} doctor={r.get('crash') or r['codes']}")
    if args.json:
        meta = {
            "command": "python benchmarks/bench_doctor_verdicts.py " + " ".join(sys.argv[1:]),
            "torch": torch.__version__,
            "threads": args.threads,
            "seconds": round(time.perf_counter() - t0),
        }
        Path(args.json).write_text(json.dumps({**meta, "summary": s, "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.exit(130)
