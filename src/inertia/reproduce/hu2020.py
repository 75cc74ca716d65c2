"""Hu, Xiao & Pennington (ICLR 2020), "Provable benefit of orthogonal initialization in optimizing
deep linear networks", section 5 (the width x depth grid of losses after a fixed budget): with
orthogonal init the width a deep linear network needs to converge does not depend on its depth
(Theorem 4.1); with i.i.d. Gaussian init it grows linearly with depth.

Setting (the paper's section 5): ``f(x) = alpha W_L ... W_1 x`` with width m, depth L and
``alpha = 1 / sqrt(m^(L-1) d_y)`` (``models.deep_linear``); X in R^{1024 x 16} and Y = W* X
with i.i.d. N(0, 1) entries (``data.deep_linear_regression``); every W_i Haar-orthogonal
(semi-orthogonal at the ends) scaled by sqrt(m) (``init.orthogonal_`` with gain sqrt(m)) or
i.i.d. N(0, 1) (``init.normal_``); loss 0.5 ||f(X) - Y||_F^2, full-batch gradient descent with
the paper's largest step size eta = d_y / (2 L ||X||^2) (||X|| the operator norm), in float64.

No overflow at depth: the paper's W_i have entries of size 1 and the product of L of them grows
like m^(L/2) (past float64's range at L ~ 250 for m = 256). ``models.deep_linear`` applies alpha
one factor per layer, computing (W_i / sqrt(fan_out_i)) h, which is the rescaling V_i =
W_i / sqrt(m) written into the forward pass while the parameter stays W_i: the update on W_i is
the paper's eta * grad_W (tested against a hand-written paper loss in the tests), so no separate
V-parametrised step (eta / m on V) is needed and every cell can be one ``train(config)`` run.
That config's ``sum_squared`` loss is the summed squared error averaged over the n examples,
2/n times the paper's loss, so its learning rate is eta * n / 2: the same update. ``train``
has no early stop on a target loss, so every cell runs the whole budget (float64 keeps the
converged cells' losses finite down to ratios of 1e-30).

A cell *converges* when its training loss after the budget is below ``CONVERGED`` = 1e-2 of its
loss at initialization (a 100-fold reduction; NaN, inf or a diverged run counts as not
converged). With several seeds (``--seeds``: data and init seeds 0..k-1, eta recomputed from
each seed's X) a cell's ratio is the median over seeds. The boundary is the smallest converging
width at each depth; its slope is the least-squares slope of log(width) against log(depth) over
the depths where some width of the grid converges. Claims:

1. orthogonal init: a width of the grid converges at every depth, and the boundary is flat
   (slope < 0.25; the paper: independent of depth);
2. Gaussian init: the boundary grows with depth (slope >= 0.5; the paper: linear, slope 1);
3. at the grid's largest depth orthogonal converges at a width where Gaussian does not.

The tables give every cell's log10 loss ratio, the converged/not map, both boundaries, and the
two slopes at other thresholds (1e-1 .. 1e-4) to show how much the verdicts lean on 1e-2.

Quick: widths {32, 64, 128, 256} x depths {2, 4, ..., 256}, 100 steps, one seed (about 1.5
minutes on 2 cores). Full: widths {16, ..., 1024} x depths {2, 4, ..., 512, 700}, 1000 steps
(the paper: widths 10-1000, depths 1-700; PAPERS.md does not give its step count).
Command: ``inertia reproduce hu2020 --quick`` (or ``--full [--device cuda] [--seeds 3]``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..diagnostics.plots import subplots
from ..experiments.config import Config, from_dict
from ..experiments.store import read_jsonl
from ..experiments.sweep import run_configs
from ..render import save_figure
from .budget import PaperBudget, apply_budget
from .claims import Claim, Figure, PaperResult, mode_name

TITLE = "Provable benefit of orthogonal initialization in optimizing deep linear networks (Hu, Xiao & Pennington 2020)"
D_IN, N, D_OUT = 1024, 16, 10
INITS = ("orthogonal", "gaussian")
CONVERGED = 1e-2  # final loss / initial loss: a 100-fold reduction within the budget
FLAT_SLOPE = 0.25  # claim 1: |boundary slope| below this is "flat in depth"
GROWTH_SLOPE = 0.5  # claim 2: a boundary slope at least this is "grows with depth" (the paper: 1)
SENSITIVITY = (1e-1, 1e-2, 1e-3, 1e-4)


def step_size(x: torch.Tensor, depth: int, d_out: int = D_OUT) -> float:
    """The paper's step size eta = d_y / (2 L ||X||^2) with the operator norm of X [d_in, n]."""
    return d_out / (2 * depth * float(torch.linalg.matrix_norm(x.to(torch.float64), ord=2)) ** 2)


@dataclass(frozen=True)
class Sizes:
    """The grid and budget of one mode: widths, depths and full-batch GD steps per cell."""

    widths: list
    depths: list
    steps: int


SIZES = {
    # seconds, for the tests; too small to show the effect (widths >= d_y, as in the paper)
    "smoke": Sizes(widths=[16, 64], depths=[2, 8, 32], steps=30),
    "quick": Sizes(widths=[32, 64, 128, 256], depths=[2, 4, 8, 16, 32, 64, 128, 256], steps=100),
    "full": Sizes(
        widths=[16, 32, 64, 128, 256, 512, 1024], depths=[2, 4, 8, 16, 32, 64, 128, 256, 512, 700], steps=1000
    ),
}


def _grid_hours(s: Sizes) -> float:
    """Estimated hours of one seed's grid on one core: 2 inits x steps x the flops of a cell's
    forward and backward pass (6 n a b for an a x b layer, n = 16 examples) at an assumed 15 GFLOP/s
    in float64, plus an assumed 0.2 ms of per-layer overhead a step (for widths up to 512 and depths
    up to 512 it gives 2.0 core-hours; scripts/paper/hu_grid.py took 56 minutes on two cores)."""

    def flops(w: int, d: int) -> float:
        return 6 * N * (D_IN * w + max(d - 2, 0) * w * w + w * D_OUT)

    per_step = sum(flops(w, d) / 15e9 + 2e-4 * d for w in s.widths for d in s.depths)
    return 2 * s.steps * per_step / 3600


BUDGET = PaperBudget("hu2020", {"steps": 100}, hours=_grid_hours)


def get_config(quick: bool = True, smoke: bool = False, sizes: Sizes | None = None) -> dict:
    """Hu, Xiao & Pennington 2020, section 5: the (width, depth) grid of losses after a fixed
    number of full-batch GD steps, orthogonal against Gaussian init.

    Returns ``{"base": Config, "widths": [...], "depths": [...]}``: ``base`` is one cell's
    ``train`` config (data, model, loss, steps, float64); :func:`cell_config` sets a cell's
    width, depth, init, seed and step size. The grids are ``SIZES``; smoke: widths {16, 64} x
    depths {2, 8, 32}, 30 steps. Command: ``inertia reproduce hu2020 --quick|--full``."""
    sizes = sizes or SIZES[mode_name(quick, smoke)]
    widths, depths, steps = list(sizes.widths), list(sizes.depths), sizes.steps
    base = from_dict(
        dict(
            experiment="hu2020",
            data={"name": "deep_linear_regression", "d_in": D_IN, "n": N, "d_out": D_OUT},
            model={"name": "deep_linear", "d_in": D_IN, "width": widths[0], "depth": depths[0], "d_out": D_OUT},
            init={"scheme": "normal", "std": 1.0},
            optimizer={"name": "sgd", "lr": 1e-3, "momentum": 0.0},
            loss="sum_squared",
            steps=steps,
            batch_size=N,
            eval_every=steps,
            dtype="float64",
        )
    )
    return {"base": base, "widths": widths, "depths": depths}


def cell_config(base: Config, width: int, depth: int, init: str, eta: float, seed: int = 0) -> Config:
    """One grid cell: ``base`` at this width and depth, the paper's init (Haar-orthogonal times
    sqrt(m), or N(0, 1)), data and init seed ``seed``, and the config learning rate that gives
    the paper's step ``eta`` on 0.5 ||f(X) - Y||_F^2."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    d = base.to_dict()
    d["model"].update(width=width, depth=depth)
    d["init"] = (
        {"scheme": "orthogonal", "gain": math.sqrt(width)} if init == "orthogonal" else {"scheme": "normal", "std": 1.0}
    )
    d["optimizer"]["lr"] = eta * N / 2  # sum_squared averages over the n examples: 2/n x the paper's loss
    d["seed"] = seed
    return from_dict(d)


def fit_boundary(xs, ys) -> tuple[float, float]:
    """Least-squares line log(y) = slope * log(x) + intercept; ``(nan, nan)`` with fewer than two
    distinct x."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        return math.nan, math.nan
    slope, intercept = np.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


def fit_slope(xs, ys) -> float:
    """Least-squares slope of log(y) against log(x) (nan with fewer than two distinct x)."""
    return fit_boundary(xs, ys)[0]


def min_converging_width(converged: dict, widths, depths) -> dict:
    """``{depth: smallest width w with converged[(w, depth)], or None}``: the boundary."""
    return {L: next((w for w in sorted(widths) if converged[(w, L)]), None) for L in depths}


def max_converging_depth(converged: dict, widths, depths) -> dict:
    """``{width: largest depth L with converged[(width, L)], or None}``."""
    return {w: max((L for L in depths if converged[(w, L)]), default=None) for w in widths}


def boundary_slope(converged: dict, widths, depths) -> tuple[float, float, dict]:
    """The boundary (:func:`min_converging_width`) and its log-log fit over the depths where some
    width converges: ``(slope, intercept, boundary)``."""
    b = min_converging_width(converged, widths, depths)
    pts = [(L, w) for L, w in b.items() if w is not None]
    slope, intercept = fit_boundary([L for L, _ in pts], [w for _, w in pts])
    return slope, intercept, b


def _ratio(sweep, trial) -> float:
    """Final over initial training loss of one trial; inf when it diverged or is not finite."""
    if trial["status"] != "completed":
        return math.inf
    hist = read_jsonl(sweep.directory / "trials" / trial["id"] / "metrics.jsonl")
    first, last = hist[0].get("train_loss", math.nan), hist[-1].get("train_loss", math.nan)
    return last / first if math.isfinite(last) and math.isfinite(first) and first > 0 else math.inf


def run(
    quick: bool = True,
    out: Path = Path("runs/reproduce"),
    seeds: int = 1,
    smoke: bool = False,
    device: str = "cpu",
    sizes: Sizes | None = None,
    workers: int | None = None,
    budget_hours: float | None = None,
) -> PaperResult:
    """Train the grid and decide the claims; ``sizes`` replaces the mode's grid and step count
    (a paper-scale run cut to fit a machine, e.g. ``scripts/paper/hu_grid.py``); ``workers``: the
    training pool's processes (default one per core; smoke: one); ``budget_hours`` (``--full`` only)
    cuts the steps to fit (:mod:`inertia.reproduce.budget`)."""
    t0 = time.perf_counter()
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
    sizes, cut = apply_budget(sizes or SIZES[mode_name(quick, smoke)], BUDGET, budget_hours)
    cfg = get_config(quick, smoke, sizes)
    base, widths, depths = cfg["base"], cfg["widths"], cfg["depths"]
    if device != "cpu":
        base = base.replace(device=device)
    mode = mode_name(quick, smoke)
    fig_dir = Path(out) / "hu2020"
    fig_dir.mkdir(parents=True, exist_ok=True)
    configs = grid_configs(base, widths, depths, seeds)
    sweep = run_configs(configs, out=fig_dir, name=f"grid-{mode}", workers=1 if smoke else workers, resume=True)
    grid = Grid(loss_ratios(sweep), widths, depths)
    res = PaperResult(
        "hu2020",
        TITLE,
        f"{mode}: d_x {D_IN}, n {N}, d_y {D_OUT}; widths {widths}, depths {depths}; "
        f"{base.steps} full-batch GD steps at eta = d_y / (2 L ||X||^2); float64; {seeds} seed(s) "
        f"(median ratio); converged = loss after / loss before < {CONVERGED:g}",
        cut=cut.note() if cut else "",
    )
    res.tables.update(grid_tables(grid))
    res.claims.extend(boundary_claims(grid))
    res.figures.append(
        Figure(
            _heatmaps(grid, fig_dir / "heatmaps.png"),
            "Hu et al., the width x depth grid: log10 of the loss ratio after the budget; orthogonal "
            "init converges at every depth once the width suffices (a flat boundary), Gaussian init "
            "needs a width growing with depth (circles: smallest converging width; dashed: the "
            "log-log fit).",
        )
    )
    res.wall_time_s = time.perf_counter() - t0
    return res


def grid_configs(base: Config, widths: list, depths: list, seeds: int) -> dict[str, Config]:
    """Every cell's config, labelled ``init|width|depth|seed``, the costliest first: the pool takes
    trials in order (cost ~ L m^2 per step), so that the workers finish together instead of one
    running a depth-256 cell alone at the end."""
    from ..data import deep_linear_regression

    cells = []
    for s in range(seeds):
        eta = {L: step_size(deep_linear_regression(D_IN, N, D_OUT, seed=s).X, L) for L in depths}  # train's X
        cells += [(init, w, L, s, eta[L]) for init in INITS for w in widths for L in depths]
    cells.sort(key=lambda c: -(c[2] * c[1] ** 2 + D_IN * c[1]))
    return {f"{init}|{w}|{L}|{s}": cell_config(base, w, L, init, e, seed=s) for init, w, L, s, e in cells}


def loss_ratios(sweep) -> dict[tuple[str, int, int], float]:
    """``(init, width, depth)`` -> the median over seeds of final / initial training loss (np.median
    of [r, inf] is inf, so one diverged seed of two fails the cell)."""
    per_seed: dict = {}
    for t in sweep.trials:
        init, w, L, _ = t["overrides"]["label"].split("|")
        per_seed.setdefault((init, int(w), int(L)), []).append(_ratio(sweep, t))
    return {k: float(np.median(v)) for k, v in per_seed.items()}


@dataclass(frozen=True)
class Grid:
    """The measured grid: each cell's loss ratio, and what is decided from it at a threshold."""

    ratio: dict
    widths: list
    depths: list

    def converged(self, init: str, threshold: float = CONVERGED) -> dict:
        """``(width, depth)`` -> whether the cell's loss ratio is below ``threshold``."""
        return {(w, L): self.ratio[(init, w, L)] < threshold for w in self.widths for L in self.depths}

    def fit(self, init: str, threshold: float = CONVERGED) -> tuple[float, float, dict]:
        """:func:`boundary_slope` of ``init``'s converged cells: ``(slope, intercept, boundary)``."""
        return boundary_slope(self.converged(init, threshold), self.widths, self.depths)


def _log_ratio(r: float):
    return round(math.log10(r), 1) if 0 < r < math.inf else ("diverged" if r == math.inf else "0 loss")


def grid_tables(g: Grid) -> dict[str, list[dict]]:
    """The section-5 grid as tables: each init's log10 loss ratios, the converged map, both
    boundaries, the largest converging depths, and the slopes at other thresholds."""
    conv = {init: g.converged(init) for init in INITS}
    fits = {init: g.fit(init) for init in INITS}
    tables = {
        f"{init} init: log10(final loss / initial loss) (rows: width, columns: depth)": [
            {"width": w, **{f"L={L}": _log_ratio(g.ratio[(init, w, L)]) for L in g.depths}} for w in g.widths
        ]
        for init in INITS
    }
    tables[f"converged (loss ratio < {CONVERGED:g}): O orthogonal, G Gaussian, - neither"] = [
        {
            "width": w,
            **{
                f"L={L}": ("O" if conv["orthogonal"][(w, L)] else "") + ("G" if conv["gaussian"][(w, L)] else "") or "-"
                for L in g.depths
            },
        }
        for w in g.widths
    ]
    tables["the boundary: smallest converging width per depth (- : none in the grid)"] = [
        {"depth": L, **{init: fits[init][2][L] for init in INITS}} for L in g.depths
    ]
    deepest = {init: max_converging_depth(conv[init], g.widths, g.depths) for init in INITS}
    tables["largest converging depth per width"] = [
        {"width": w, "orthogonal": deepest["orthogonal"][w], "gaussian": deepest["gaussian"][w]} for w in g.widths
    ]
    tables["boundary slopes at other convergence thresholds (not used for the verdicts)"] = [
        _sensitivity_row(g, thr) for thr in SENSITIVITY
    ]
    return tables


def _sensitivity_row(g: Grid, threshold: float) -> dict:
    s = {init: g.fit(init, threshold) for init in INITS}
    return {
        "threshold": threshold,
        "orthogonal: depths with no converging width": sum(v is None for v in s["orthogonal"][2].values()),
        "orthogonal slope": round(s["orthogonal"][0], 2),
        "gaussian slope": round(s["gaussian"][0], 2),
    }


def boundary_claims(g: Grid) -> list[Claim]:
    """Claims 1-3 (module docstring), decided at the threshold ``CONVERGED``."""
    depths, widths = g.depths, g.widths
    o_slope, _, ob = g.fit("orthogonal")
    missing = [L for L in depths if ob[L] is None]
    g_slope, _, gb = g.fit("gaussian")
    beyond = [L for L in depths if gb[L] is None]
    deep = depths[-1]
    o_ok = [w for w in widths if g.converged("orthogonal")[(w, deep)]]
    g_ok = [w for w in widths if g.converged("gaussian")[(w, deep)]]
    return [
        Claim(
            "orthogonal init: the width needed to converge does not grow with depth",
            f"smallest converging width {_widths(ob, depths)} at depths {depths}; log-log slope {o_slope:.2f}",
            f"a converging width at every depth and log-log slope of width against depth < {FLAT_SLOPE}",
            not missing and abs(o_slope) < FLAT_SLOPE,
            "width independent of depth (Theorem 4.1): slope 0",
        ),
        Claim(
            "Gaussian init: the width needed to converge grows with depth",
            f"smallest converging width {_widths(gb, depths)} at depths {depths}; log-log slope {g_slope:.2f} over "
            f"the depths where a width converges" + (f" (none converges at depths {beyond})" if beyond else ""),
            f"log-log slope of width against depth >= {GROWTH_SLOPE}",
            bool(g_slope >= GROWTH_SLOPE),
            "width linear in depth: slope 1",
        ),
        Claim(
            f"at depth {deep}, orthogonal converges at a width where Gaussian does not",
            f"orthogonal converges at widths {o_ok}, Gaussian at {g_ok}",
            "some width converges only with orthogonal",
            bool(set(o_ok) - set(g_ok)),
            "orthogonal trains every depth at modest width; Gaussian fails beyond a line",
        ),
    ]


def _widths(boundary: dict, depths) -> str:
    """``[32, 64, -]``: a boundary's widths in depth order, ``-`` where no width converges."""
    return "[" + ", ".join("-" if boundary[L] is None else str(boundary[L]) for L in depths) + "]"


def _edges(v) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, extended half a step at both ends."""
    lv = np.log(np.asarray(v, float))
    mid = (lv[1:] + lv[:-1]) / 2
    return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))


def _heatmaps(g: Grid, path: Path) -> Path:
    widths, depths = g.widths, g.depths
    fig, axes = subplots(1, 2, figsize=(11, 4.2), sharey=True)
    xe, ye = _edges(depths), _edges(widths)
    for ax, init in zip(axes, INITS, strict=False):
        z = np.array(
            [
                [math.log10(g.ratio[(init, w, L)]) if 0 < g.ratio[(init, w, L)] < math.inf else 2.0 for L in depths]
                for w in widths
            ]
        )
        mesh = ax.pcolormesh(xe, ye, np.clip(z, -16, 2), cmap="viridis_r", vmin=-16, vmax=2, shading="flat")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xticks(depths, [str(L) for L in depths], rotation=45 if len(depths) > 8 else 0)
        ax.set_yticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
        _boundary_overlay(ax, g.fit(init), xe)
        ax.set_xlim(xe[0], xe[-1])
        ax.set_ylim(ye[0], ye[-1])
        ax.set_xlabel("depth L")
        ax.set_title(f"{init} init")
        ax.legend(fontsize="small", loc="lower right")
    axes[0].set_ylabel("width m")
    fig.colorbar(mesh, ax=axes, label="log10(final / initial loss) (diverged: 2)")
    return save_figure(fig, path, crop=True)  # the colorbar spans both axes


def _boundary_overlay(ax, fit: tuple, xe) -> None:
    """The smallest converging widths (circles) and their log-log fit (dashed)."""
    slope, intercept, b = fit
    pts = [(L, w) for L, w in b.items() if w is not None]
    if pts:
        ax.plot(*zip(*pts, strict=False), "o", mfc="none", mec="white", mew=2, ms=9, label="smallest converging width")
    if math.isfinite(slope):
        ls = np.geomspace(xe[0], xe[-1], 50)
        ax.plot(ls, np.exp(intercept) * ls**slope, "--", color="red", lw=2, label=f"fit: width ~ depth^{slope:.2f}")


__all__ = [
    "CONVERGED",
    "SIZES",
    "TITLE",
    "Grid",
    "Sizes",
    "boundary_claims",
    "boundary_slope",
    "cell_config",
    "fit_boundary",
    "fit_slope",
    "get_config",
    "grid_configs",
    "grid_tables",
    "loss_ratios",
    "max_converging_depth",
    "min_converging_width",
    "run",
    "step_size",
]
