"""Temperoni, Skorski & Theobald (2020), "Revisiting initialization of neural networks": the
Frobenius norm of the loss Hessian w.r.t. a layer's weights as the quantity an initialization
should control, and as a diagnostic logged along the loss.

Setting (the authors' experiment, on MNIST-1D instead of MNIST in quick mode): a 40-30-30-10 ReLU
MLP, weights N(0, std^2) with std in {1e-5, 0.01, 1}, against Glorot, He and the Hessian-calibrated
init (every layer's ||H_l||_F = 1 at initialization); minibatch 32, plain SGD with lr 0.01, 1000
iterations; ||H||_F w.r.t. the first dense layer logged every 100 iterations (Hutchinson).

Claims checked: std 1e-5 and 0.01 do not train within the budget while std 1, Glorot and He do;
a tiny first-layer Hessian norm at initialization flags the runs that do not train; the
calibrated init trains at least as well as the best fixed std.
Command: ``inertia reproduce temperoni2020 --quick`` (about a minute) or ``--full``.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from ..diagnostics.plots import subplots
from ..experiments.config import Config, from_dict
from ..experiments.store import read_jsonl
from ..experiments.sweep import run_sweep
from ..render import save_figure
from .claims import Claim, Figure, PaperResult, mode_name

TITLE = "Revisiting initialization of neural networks (Temperoni, Skorski & Theobald 2020)"

INITS = {
    "std 1e-5": {"scheme": "normal", "std": 1e-5},
    "std 0.01": {"scheme": "normal", "std": 0.01},
    "std 1": {"scheme": "normal", "std": 1.0},
    "Glorot": {"scheme": "glorot_normal"},
    "He": {"scheme": "he_normal"},
    "Hessian-calibrated": {"scheme": "hessian_calibrated", "target": 1.0},
}


@dataclass(frozen=True)
class Sizes:
    """The sizes and budget of one mode: SGD iterations, MNIST-1D examples, and the least number of
    seeds per init (``--seeds`` may ask for more; smoke runs one)."""

    steps: int
    n_train: int
    n_test: int
    seeds: int


SIZES = {
    "smoke": Sizes(steps=60, n_train=400, n_test=100, seeds=1),
    "quick": Sizes(steps=1000, n_train=4000, n_test=1000, seeds=3),
    "full": Sizes(steps=3000, n_train=4000, n_test=1000, seeds=5),
}
CHANCE = 0.9  # training error of a net that predicts one of 10 balanced classes
TRAINS = 0.8  # "trains": the training error falls clearly below chance
FIXED_STDS = ("std 1e-5", "std 0.01", "std 1")
TRAINING = ("std 1", "Glorot", "He")


def get_config(quick: bool = True, smoke: bool = False) -> Config:  # noqa: D417
    """Temperoni et al. 2020, their MNIST experiment (section 5, Figure: Hessian norm along the loss).
    Quick: MNIST-1D (4000 train / 1000 test), 1000 SGD iterations, 3 seeds. Full: 5 seeds,
    3000 iterations (``SIZES``). Command: ``inertia reproduce temperoni2020 --quick|--full``."""
    s = SIZES[mode_name(quick, smoke)]
    return from_dict(
        dict(
            experiment="temperoni2020",
            data={"name": "mnist1d", "n_train": s.n_train, "n_test": s.n_test},
            model={"name": "mlp", "sizes": [40, 30, 30, 10], "activation": "relu"},
            init={"scheme": "glorot_normal"},
            optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.0},
            loss="cross_entropy",
            steps=s.steps,
            batch_size=32,
            eval_every=max(s.steps // 10, 1),
            monitor={"quantities": ["hessian_frobenius_norm"], "every": max(s.steps // 10, 1), "params": ["0.weight"]},
        )
    )


def run(
    quick: bool = True, out: Path = Path("runs/reproduce"), seeds: int = 1, smoke: bool = False, device: str = "cpu"
) -> PaperResult:
    t0 = time.perf_counter()
    base = get_config(quick, smoke)
    if device != "cpu":
        base = base.replace(device=device)
    mode = mode_name(quick, smoke)
    n_seeds = 1 if smoke else max(seeds, SIZES[mode].seeds)
    out = Path(out)
    sweep = run_sweep(
        base,
        {"init": list(INITS.values())},
        seeds=n_seeds,
        out=out,
        name=f"sweep-{mode}",
        resume=True,
        workers=None if not smoke else 1,
    )
    by_init = _runs_by_init(sweep)
    res = PaperResult(
        "temperoni2020",
        TITLE,
        f"{mode}: MNIST-1D, {base.steps} SGD iterations (lr 0.01, batch 32), {n_seeds} seed(s)",
    )
    rows = _results_table(by_init)
    res.tables["first-layer Hessian norm at init and the result of training"] = rows
    res.claims.extend(result_claims({r["init"]: r for r in rows}))
    res.figures.append(
        Figure(
            _figure(by_init, out / "temperoni2020_curves.png"),
            "Temperoni et al.: the Frobenius norm of the Hessian w.r.t. the first layer, logged "
            "along the loss, separates inits that train from those that do not.",
        )
    )
    res.wall_time_s = time.perf_counter() - t0
    return res


def _runs_by_init(sweep) -> dict[str, list[dict]]:
    """init label -> each seed's ``{"status", "metrics", "diag"}`` (metrics and monitor records)."""
    label_of = {repr(v): k for k, v in INITS.items()}
    by_init: dict[str, list[dict]] = {k: [] for k in INITS}
    for t in sweep.trials:
        run_dir = sweep.directory / "trials" / t["id"]
        by_init[label_of[repr(t["overrides"]["init"])]].append(
            {
                "status": t["status"],
                "metrics": read_jsonl(run_dir / "metrics.jsonl"),
                "diag": read_jsonl(run_dir / "diagnostics.jsonl"),
            }
        )
    return by_init


def _final(run: dict, metric: str, failed: float) -> float:
    """``metric`` at a completed run's last evaluation; ``failed`` for a run that did not complete."""
    return run["metrics"][-1].get(metric, failed) if run["status"] == "completed" else failed


def _results_table(by_init: dict) -> list[dict]:
    """Per init, the seeds' means: first-layer ||H||_F at init, final train loss (inf when a run did
    not complete), train error (1 when it did not) and test error."""
    rows = []
    for label, runs in by_init.items():
        losses = [_final(r, "train_loss", math.inf) for r in runs]
        errs = [_final(r, "train_error", 1.0) for r in runs]
        norms = [r["diag"][0]["hessian_frobenius_norm"] for r in runs if r["diag"]]
        test = [r["metrics"][-1].get("test_error", math.nan) for r in runs if r["metrics"]]
        rows.append(
            {
                "init": label,
                "first-layer Hessian norm at init": statistics.fmean(norms) if norms else math.nan,
                "final train loss": statistics.fmean(losses),
                "train error": statistics.fmean(errs),
                "test error": statistics.fmean(test) if test else math.nan,
                "status": ",".join(sorted({r["status"] for r in runs})),
            }
        )
    return rows


def result_claims(rows: dict) -> list[Claim]:
    """The four claims, from the results table's rows keyed by init label."""
    err = {k: r["train error"] for k, r in rows.items()}
    final = {k: r["final train loss"] for k, r in rows.items()}
    h0 = {k: r["first-layer Hessian norm at init"] for k, r in rows.items()}
    trains = {k: err[k] < TRAINS for k in INITS}
    low = max(h0["std 1e-5"], h0["std 0.01"])
    high = min(h0[k] for k in TRAINING)
    best_fixed = min(final[k] for k in FIXED_STDS)
    return [
        Claim(
            "std 1e-5 and std 0.01 do not train within the budget",
            f"train error {err['std 1e-5']:.3g}, {err['std 0.01']:.3g} (chance {CHANCE})",
            f"both >= {TRAINS}",
            not trains["std 1e-5"] and not trains["std 0.01"],
            "no training (authors' figure)",
        ),
        Claim(
            "std 1, Glorot and He train",
            ", ".join(f"{k} {err[k]:.3g}" for k in TRAINING),
            f"train error of each < {TRAINS}",
            all(trains[k] for k in TRAINING),
        ),
        Claim(
            "a tiny first-layer Hessian norm at init flags the inits that do not train",
            f"max {low:.2g} (non-training) vs min {high:.2g} (training)",
            "non-training < 1e-3 < training",
            low < 1e-3 < high,
            "std 1e-5 ~1e-17, 0.01 ~1e-5, 1 ~23-30, Glorot 1.2-1.5, He 2.5-2.8 (issue 8's prototype)",
        ),
        Claim(
            "the Hessian-calibrated init trains at least as well as the best fixed std",
            f"calibrated {final['Hessian-calibrated']:.3g} vs best fixed std {best_fixed:.3g}",
            "calibrated <= 1.05 x best fixed",
            final["Hessian-calibrated"] <= 1.05 * best_fixed,
        ),
    ]


def _figure(by_init: dict, path: Path) -> Path:
    fig, (a1, a2) = subplots(1, 2, figsize=(11, 4))
    for i, (label, runs) in enumerate(by_init.items()):
        for j, r in enumerate(runs):
            ms = [m for m in r["metrics"] if isinstance(m.get("train_loss"), float)]
            a1.plot(
                [m["step"] for m in ms],
                [m["train_loss"] for m in ms],
                color=f"C{i}",
                label=label if j == 0 else None,
                lw=1,
            )
            ds = [x for x in r["diag"] if isinstance(x.get("hessian_frobenius_norm"), float)]
            a2.plot(
                [x["step"] for x in ds],
                [max(x["hessian_frobenius_norm"], 1e-30) for x in ds],
                color=f"C{i}",
                label=label if j == 0 else None,
                lw=1,
            )
    a1.set_xlabel("iteration")
    a1.set_ylabel("training loss")
    a2.set_xlabel("iteration")
    a2.set_ylabel("||H||_F w.r.t. the first layer")
    a2.set_yscale("log")
    a1.legend(fontsize="small")
    return save_figure(fig, path)


__all__ = ["INITS", "SIZES", "TITLE", "Sizes", "get_config", "result_claims", "run"]
