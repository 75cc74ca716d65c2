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
from pathlib import Path

from ..experiments.config import Config, from_dict
from ..experiments.store import read_jsonl
from ..experiments.sweep import run_sweep
from .claims import Claim, Figure, PaperResult, pyplot, save_figure

TITLE = "Revisiting initialization of neural networks (Temperoni, Skorski & Theobald 2020)"

INITS = {
    "std 1e-5": {"scheme": "normal", "std": 1e-5},
    "std 0.01": {"scheme": "normal", "std": 0.01},
    "std 1": {"scheme": "normal", "std": 1.0},
    "Glorot": {"scheme": "glorot_normal"},
    "He": {"scheme": "he_normal"},
    "Hessian-calibrated": {"scheme": "hessian_calibrated", "target": 1.0},
}


def get_config(quick: bool = True, smoke: bool = False) -> Config:  # noqa: D417
    """Temperoni et al. 2020, their MNIST experiment (section 5, Figure: Hessian norm along the loss).
    Quick: MNIST-1D (4000 train / 1000 test), 1000 SGD iterations, 3 seeds. Full: 5 seeds,
    3000 iterations. Command: ``inertia reproduce temperoni2020 --quick|--full``."""
    steps = 60 if smoke else (1000 if quick else 3000)
    return from_dict(
        dict(
            experiment="temperoni2020",
            data={"name": "mnist1d", "n_train": 4000 if not smoke else 400, "n_test": 1000 if not smoke else 100},
            model={"name": "mlp", "sizes": [40, 30, 30, 10], "activation": "relu"},
            init={"scheme": "glorot_normal"},
            optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.0},
            loss="cross_entropy",
            steps=steps,
            batch_size=32,
            eval_every=max(steps // 10, 1),
            monitor={"quantities": ["hessian_frobenius_norm"], "every": max(steps // 10, 1), "params": ["0.weight"]},
        )
    )


def run(
    quick: bool = True, out: Path = Path("runs/reproduce"), seeds: int = 1, smoke: bool = False, device: str = "cpu"
) -> PaperResult:
    t0 = time.perf_counter()
    base = get_config(quick, smoke)
    if device != "cpu":
        base = base.replace(device=device)
    mode = "smoke" if smoke else "quick" if quick else "full"
    n_seeds = 1 if smoke else max(seeds, 3 if quick else 5)
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
    label_of = {repr(v): k for k, v in INITS.items()}
    by_init: dict = {k: [] for k in INITS}
    for t in sweep.trials:
        label = label_of[repr(t["overrides"]["init"])]
        run_dir = sweep.directory / "trials" / t["id"]
        by_init[label].append(
            {
                "status": t["status"],
                "metrics": read_jsonl(run_dir / "metrics.jsonl"),
                "diag": read_jsonl(run_dir / "diagnostics.jsonl"),
            }
        )
    res = PaperResult(
        "temperoni2020",
        TITLE,
        ("smoke" if smoke else "quick" if quick else "full")
        + f": MNIST-1D, {base.steps} SGD iterations (lr 0.01, batch 32), {n_seeds} seed(s)",
    )
    rows, final, h0, err = [], {}, {}, {}
    for label, runs in by_init.items():
        losses = [
            r["metrics"][-1].get("train_loss", math.inf) if r["status"] == "completed" else math.inf for r in runs
        ]
        norms = [r["diag"][0]["hessian_frobenius_norm"] for r in runs if r["diag"]]
        final[label] = statistics.fmean(losses)
        h0[label] = statistics.fmean(norms) if norms else math.nan
        errs = [r["metrics"][-1].get("train_error", 1.0) if r["status"] == "completed" else 1.0 for r in runs]
        err[label] = statistics.fmean(errs)
        test = [r["metrics"][-1].get("test_error", math.nan) for r in runs if r["metrics"]]
        rows.append(
            {
                "init": label,
                "first-layer Hessian norm at init": h0[label],
                "final train loss": final[label],
                "train error": err[label],
                "test error": statistics.fmean(test) if test else math.nan,
                "status": ",".join(sorted({r["status"] for r in runs})),
            }
        )
    res.tables["first-layer Hessian norm at init and the result of training"] = rows
    # "trains": the training error falls clearly below chance (0.9 for 10 balanced classes)
    trains = {k: err[k] < 0.8 for k in INITS}
    res.claims.append(
        Claim(
            "std 1e-5 and std 0.01 do not train within the budget",
            f"train error {err['std 1e-5']:.3g}, {err['std 0.01']:.3g} (chance 0.9)",
            "both >= 0.8",
            not trains["std 1e-5"] and not trains["std 0.01"],
            "no training (authors' figure)",
        )
    )
    res.claims.append(
        Claim(
            "std 1, Glorot and He train",
            ", ".join(f"{k} {err[k]:.3g}" for k in ("std 1", "Glorot", "He")),
            "train error of each < 0.8",
            all(trains[k] for k in ("std 1", "Glorot", "He")),
        )
    )
    low = max(h0["std 1e-5"], h0["std 0.01"])
    high = min(h0[k] for k in ("std 1", "Glorot", "He"))
    res.claims.append(
        Claim(
            "a tiny first-layer Hessian norm at init flags the inits that do not train",
            f"max {low:.2g} (non-training) vs min {high:.2g} (training)",
            "non-training < 1e-3 < training",
            low < 1e-3 < high,
            "std 1e-5 ~1e-17, 0.01 ~1e-5, 1 ~23-30, Glorot 1.2-1.5, He 2.5-2.8 (issue 8's prototype)",
        )
    )
    best_fixed = min(final[k] for k in ("std 1e-5", "std 0.01", "std 1"))
    res.claims.append(
        Claim(
            "the Hessian-calibrated init trains at least as well as the best fixed std",
            f"calibrated {final['Hessian-calibrated']:.3g} vs best fixed std {best_fixed:.3g}",
            "calibrated <= 1.05 x best fixed",
            final["Hessian-calibrated"] <= 1.05 * best_fixed,
        )
    )
    res.figures.append(
        Figure(
            _figure(by_init, out / "temperoni2020_curves.png"),
            "Temperoni et al.: the Frobenius norm of the Hessian w.r.t. the first layer, logged "
            "along the loss, separates inits that train from those that do not.",
        )
    )
    res.wall_time_s = time.perf_counter() - t0
    return res


def _figure(by_init: dict, path: Path) -> Path:
    plt = pyplot()

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
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
