"""Hu, Xiao & Pennington (2020), "Provable benefit of orthogonal initialization in optimizing
deep linear networks": with orthogonal init the width a deep linear network needs to converge
does not depend on its depth; with i.i.d. Gaussian init it grows linearly with depth.

Setting (the paper's section 5): ``f(x) = alpha W_L ... W_1 x`` with width m, depth L and
``alpha = 1 / sqrt(m^(L-1) d_y)`` (``models.deep_linear``, which applies alpha one factor per
layer so nothing overflows at depth); X in R^{1024 x 16} and Y = W* X with i.i.d. N(0, 1)
entries (``data.deep_linear_regression``); every W_i Haar-orthogonal scaled by sqrt(m)
(``orthogonal`` with gain sqrt(m)) or N(0, 1) (``normal``); loss 0.5 ||f(X) - Y||_F^2, full-batch
gradient descent with the paper's step size eta = d_y / (2 L ||X||^2) (operator norm), in
float64. Each (width, depth, init) cell is one ``train(config)`` run: the config's loss is the
summed squared error averaged over the n examples, 2/n times the paper's, so its learning rate is
eta * n / 2, the same update.

A cell *converges* when its loss after the budget is below 1e-2 of its loss at initialization
(diverged runs, NaN or inf, count as not converged); the tables give every cell's loss ratio.
Claims, from the boundary fitted over the whole grid: orthogonal's smallest converging width
exists at every depth and is flat in depth (log-log slope of width against depth below 0.25);
Gaussian's largest converging depth grows with width (log-log slope at least 0.5; the paper:
linear, slope 1); at the largest depth orthogonal converges at a width where Gaussian does not.

Quick: widths {32, 64, 128, 256} x depths {2, 4, ..., 256}, 100 steps. Full: widths
{16, ..., 1024} x depths {2, 4, ..., 512}, 1000 steps (the paper: widths 10-1000, depths 1-700).
Command: ``inertia reproduce hu2020 --quick`` (or ``--full [--device cuda]``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..experiments.config import Config, from_dict
from ..experiments.store import read_jsonl
from ..experiments.sweep import run_configs
from .claims import Claim, Figure, PaperResult

TITLE = "Provable benefit of orthogonal initialization in optimizing deep linear networks (Hu, Xiao & Pennington 2020)"
D_IN, N, D_OUT = 1024, 16, 10
CONVERGED = 1e-2  # final loss / initial loss: a 100-fold reduction within the budget


def step_size(x: torch.Tensor, depth: int, d_out: int = D_OUT) -> float:
    """The paper's step size eta = d_y / (2 L ||X||^2) with the operator norm of X [d_in, n]."""
    return d_out / (2 * depth * float(torch.linalg.matrix_norm(x.to(torch.float64), ord=2)) ** 2)


def get_config(quick: bool = True, smoke: bool = False) -> dict:
    """Hu et al. 2020, section 5 (the width x depth grid figure).

    Returns ``{"base": Config, "widths": [...], "depths": [...]}``; each cell is ``base`` with
    ``model.width``, ``model.depth``, the init and the step size set (:func:`cell_config`).
    Command: ``inertia reproduce hu2020 --quick|--full``."""
    if smoke:
        widths, depths, steps = [8, 32], [2, 8, 32], 30
    elif quick:
        widths, depths, steps = [32, 64, 128, 256], [2, 4, 8, 16, 32, 64, 128, 256], 100
    else:
        widths, depths, steps = [16, 32, 64, 128, 256, 512, 1024], [2, 4, 8, 16, 32, 64, 128, 256, 512], 1000
    base = from_dict(dict(
        experiment="hu2020",
        data={"name": "deep_linear_regression", "d_in": D_IN, "n": N, "d_out": D_OUT},
        model={"name": "deep_linear", "d_in": D_IN, "width": widths[0], "depth": depths[0], "d_out": D_OUT},
        init={"scheme": "normal", "std": 1.0},
        optimizer={"name": "sgd", "lr": 1e-3, "momentum": 0.0},
        loss="sum_squared", steps=steps, batch_size=N, eval_every=steps, dtype="float64",
    ))
    return {"base": base, "widths": widths, "depths": depths}


def cell_config(base: Config, width: int, depth: int, init: str, eta: float) -> Config:
    d = base.to_dict()
    d["model"].update(width=width, depth=depth)
    d["init"] = ({"scheme": "orthogonal", "gain": math.sqrt(width)} if init == "orthogonal"
                 else {"scheme": "normal", "std": 1.0})
    d["optimizer"]["lr"] = eta * N / 2  # sum_squared averages over the n examples: 2/n x the paper's loss
    return from_dict(d)


def fit_slope(xs, ys) -> float:
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        return math.nan
    return float(np.polyfit(lx, ly, 1)[0])


def run(quick: bool = True, out: Path = Path("runs/reproduce"), seeds: int = 1, smoke: bool = False,
        device: str = "cpu") -> PaperResult:  # noqa: ARG001 (deterministic given the data seed)
    from ..data import deep_linear_regression

    t0 = time.perf_counter()
    cfg = get_config(quick, smoke)
    base, widths, depths = cfg["base"], cfg["widths"], cfg["depths"]
    if device != "cpu":
        base = base.replace(device=device)
    mode = "smoke" if smoke else "quick" if quick else "full"
    x = deep_linear_regression(D_IN, N, D_OUT, seed=base.seed).X
    configs = {f"{init}|{w}|{L}": cell_config(base, w, L, init, step_size(x, L))
               for init in ("orthogonal", "gaussian") for w in widths for L in depths}
    out = Path(out)
    fig_dir = out / "hu2020"
    fig_dir.mkdir(parents=True, exist_ok=True)
    sweep = run_configs(configs, out=fig_dir, name=f"grid-{mode}", workers=1 if smoke else None, resume=True)
    ratio = {}
    for t in sweep.trials:
        init, w, L = t["overrides"]["label"].split("|")
        hist = read_jsonl(sweep.directory / "trials" / t["id"] / "metrics.jsonl")
        first, last = hist[0].get("train_loss", math.nan), hist[-1].get("train_loss", math.nan)
        r = last / first if t["status"] == "completed" and math.isfinite(last) and first > 0 else math.inf
        ratio[(init, int(w), int(L))] = r
    conv = {k: v < CONVERGED for k, v in ratio.items()}

    res = PaperResult("hu2020", TITLE, f"{mode}: d_x {D_IN}, n {N}, d_y {D_OUT}; widths {widths}, depths {depths}; "
                      f"{base.steps} full-batch GD steps at eta = d_y / (2 L ||X||^2); float64; converged = "
                      f"loss ratio < {CONVERGED:g}")
    for init in ("orthogonal", "gaussian"):
        res.tables[f"{init} init: log10(final loss / initial loss) (rows: width, columns: depth)"] = [
            {"width": w, **{f"L={L}": round(math.log10(ratio[(init, w, L)]), 1) if math.isfinite(ratio[(init, w, L)])
                            and ratio[(init, w, L)] > 0 else "diverged" for L in depths}} for w in widths]

    def min_width(init, L):
        ok = [w for w in widths if conv[(init, w, L)]]
        return min(ok) if ok else None

    def max_depth(init, w):
        ok = [L for L in depths if conv[(init, w, L)]]
        return max(ok) if ok else None

    res.tables["the boundary: smallest converging width per depth"] = [
        {"depth": L, "orthogonal": min_width("orthogonal", L), "gaussian": min_width("gaussian", L)} for L in depths]
    ow = {L: min_width("orthogonal", L) for L in depths}
    o_slope = (fit_slope(depths, [ow[L] for L in depths]) if all(ow.values()) else math.inf)
    res.claims.append(Claim(
        "orthogonal init: the width needed to converge does not grow with depth",
        f"smallest converging width {[ow[L] for L in depths]} at depths {depths}; log-log slope {o_slope:.2f}",
        "a converging width at every depth, log-log slope < 0.25", o_slope < 0.25,
        "width independent of depth (Theorem 4.1)"))
    gd = {w: max_depth("gaussian", w) for w in widths}
    pts = [(w, L) for w, L in gd.items() if L is not None and L < depths[-1]]  # boundary inside the grid
    slope = fit_slope([w for w, _ in pts], [L for _, L in pts]) if len(pts) >= 2 else math.nan
    res.tables["the boundary: largest converging depth per width (Gaussian)"] = [
        {"width": w, "largest converging depth": gd[w]} for w in widths]
    res.claims.append(Claim(
        "Gaussian init: the largest depth that converges grows with width (the width needed grows with depth)",
        f"largest converging depth {[gd[w] for w in widths]} for widths {widths}; log-log slope {slope:.2f}",
        "slope >= 0.5 over the widths whose boundary lies inside the grid", slope >= 0.5,
        "width linear in depth (slope 1)"))
    deep = depths[-1]
    o_ok = [w for w in widths if conv[("orthogonal", w, deep)]]
    g_ok = [w for w in widths if conv[("gaussian", w, deep)]]
    gap = [w for w in o_ok if w not in g_ok]
    res.claims.append(Claim(
        f"at depth {deep}, orthogonal converges at a width where Gaussian does not",
        f"orthogonal converges at widths {o_ok}, Gaussian at {g_ok}", "some width converges only with orthogonal",
        bool(gap), "orthogonal trains every depth at modest width; Gaussian fails beyond a line in depth"))
    res.figures.append(Figure(_heatmaps(ratio, widths, depths, gd, fig_dir / "heatmaps.png"),
                              "Hu et al., the width x depth grid: log10 of the loss ratio after the budget; orthogonal "
                              "init converges at every depth once the width suffices, Gaussian init only below a "
                              "depth proportional to the width (the fitted boundary, dashed)."))
    res.wall_time_s = time.perf_counter() - t0
    return res


def _heatmaps(ratio: dict, widths, depths, gd: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, init in zip(axes, ("orthogonal", "gaussian")):
        z = np.array([[math.log10(ratio[(init, w, L)]) if 0 < ratio[(init, w, L)] < math.inf else 2.0
                       for L in depths] for w in widths])
        im = ax.imshow(np.clip(z, -16, 2), origin="lower", aspect="auto", cmap="viridis_r", vmin=-16, vmax=2)
        ax.set_xticks(range(len(depths)), [str(L) for L in depths])
        ax.set_yticks(range(len(widths)), [str(w) for w in widths])
        ax.set_xlabel("depth L")
        ax.set_title(f"{init} init")
        if init == "gaussian":
            xs = [depths.index(gd[w]) for w in widths if gd[w] is not None]
            ys = [i for i, w in enumerate(widths) if gd[w] is not None]
            ax.plot(xs, ys, "w--", lw=2, label="largest converging depth")
            ax.legend(fontsize="small", loc="lower right")
    axes[0].set_ylabel("width m")
    fig.colorbar(im, ax=axes, label="log10(final / initial loss) (diverged: 2)")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
