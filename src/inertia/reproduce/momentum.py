"""Classical momentum and Nesterov's accelerated gradient on small problems whose answers are
known: the note on momentum (``v = mu*v - lr*dW; w = w + v``) and Sutskever et al. (2013,
section 2)'s analysis of CM against NAG.

Claims checked:

1. With a well-chosen mu, CM and NAG reach a given loss on an ill-conditioned quadratic in far
   fewer steps than gradient descent (best lr for GD; best (lr, mu) for CM and NAG, on a grid).
2. On Rosenbrock's function, the best momentum run ends lower than the best GD run.
3. The per-eigendirection convergence factor of each method is the spectral radius of its 2x2
   iteration matrix; our optimizer's measured rate on a 1-D quadratic agrees with it.
4. NAG acts as CM with momentum mu (1 - lam lr) along an eigendirection of curvature lam, so it
   converges faster than CM in high-curvature directions (lam lr in [0.5, 1]) at high mu.

Figures: trajectories over the contours, and the convergence factor against lam * lr.
Command: ``inertia reproduce momentum --quick`` (about 10 s) or ``--full``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..diagnostics.plots import subplots
from ..optim import Momentum
from ..render import save_figure
from .claims import Claim, Figure, PaperResult, mode_name

TITLE = "Classical momentum and Nesterov's accelerated gradient (note; Sutskever et al. 2013, sec. 2)"


@dataclass(frozen=True)
class Sizes:
    """The grids and budgets of one mode: the quadratic (curvatures, start, the loss reduction to
    reach within ``max_steps``), the (lr, mu) grids searched for each method, Rosenbrock's budget and
    grids, and the momenta of the convergence-factor figure."""

    curvatures: list
    start: list
    target: float
    max_steps: int
    lrs: list
    mus: list
    rosenbrock_steps: int
    rosenbrock_lrs: list
    rosenbrock_mus: list
    rate_mus: list


SIZES = {
    "smoke": Sizes(
        curvatures=[1.0, 100.0],
        start=[1.0, 1.0],
        target=1e-4,
        max_steps=400,
        lrs=[0.02, 0.01],
        mus=[0.8],
        rosenbrock_steps=100,
        rosenbrock_lrs=[1e-3],
        rosenbrock_mus=[0.9],
        rate_mus=[0.0, 0.9],
    ),
    "quick": Sizes(
        curvatures=[1.0, 100.0],  # condition number 100
        start=[1.0, 1.0],
        target=1e-8,  # loss reduction factor to reach
        max_steps=3000,
        lrs=list(np.geomspace(1e-3, 2.5e-2, 13)),
        mus=[0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99],
        rosenbrock_steps=1000,
        rosenbrock_lrs=list(np.geomspace(2e-4, 2e-3, 4)),
        rosenbrock_mus=[0.9, 0.99],
        rate_mus=[0.0, 0.5, 0.9, 0.99],
    ),
    "full": Sizes(
        curvatures=[1.0, 100.0],
        start=[1.0, 1.0],
        target=1e-8,
        max_steps=3000,
        lrs=list(np.geomspace(1e-3, 2.5e-2, 25)),
        mus=list(np.linspace(0.3, 0.99, 24)),
        rosenbrock_steps=20000,
        rosenbrock_lrs=list(np.geomspace(2e-4, 2e-3, 12)),
        rosenbrock_mus=[0.8, 0.9, 0.95, 0.99, 0.995],
        rate_mus=[0.0, 0.5, 0.9, 0.99],
    ),
}
# (lam lr, mu) points where the optimizer's measured rate is compared with the iteration matrix's
RATE_POINTS = [(0.05, 0.9), (0.5, 0.9), (1.0, 0.5), (0.3, 0.99), (2.5, 0.9)]


def get_config(quick: bool = True, smoke: bool = False) -> dict:
    """Momentum on known problems (the note on momentum; Sutskever et al. 2013, section 2 and its
    Figure 1's analysis of CM vs NAG): the mode's :class:`Sizes` as a dict. Command:
    ``inertia reproduce momentum --quick|--full``. ``smoke`` shrinks every grid for the test suite
    (claims are still decided, on less)."""
    return asdict(SIZES[mode_name(quick, smoke)])


def _quadratic(lams):
    lam = torch.tensor(lams, dtype=torch.float64)
    return lambda x: 0.5 * (lam * x * x).sum()


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _run(f, x0, lr, mu, nesterov, steps, target=None):
    """Iterates theta_t (not look-ahead points) and the step at which f <= target (or None);
    a run with a target stops after ``steps`` updates."""
    x = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    opt = Momentum([x], lr=lr, momentum=mu, nesterov=nesterov and mu > 0)
    f0 = float(f(x.detach()))
    path, hit = [x.detach().clone()], None
    every = 1 if target is not None else 10  # long runs record every 10th iterate
    for t in range(steps):
        opt.zero_grad()
        f(x).backward()
        opt.step()
        if (t + 1) % every and t + 1 < steps:
            continue
        with opt.at_theta():
            theta = x.detach().clone()
        path.append(theta)
        val = float(f(theta))
        if not math.isfinite(val) or val > 1e12 * max(f0, 1.0):
            return path, None, float("inf")
        if target is not None and val <= target * f0:
            hit = t + 1
            break
    return path, hit, float(f(path[-1]))


def _best(f, x0, lrs, mus, nesterov, steps, target=None):
    """(steps to target or final loss, lr, mu, path) of the best grid point."""
    best = None
    for lr in sorted(lrs, reverse=True):  # large stable lrs hit the target first, so later runs stop early
        for mu in mus:
            # with a target, a run slower than the best so far cannot win: stop it there
            limit = min(steps, best[0][0]) if (best is not None and target is not None) else steps
            path, hit, final = _run(f, x0, float(lr), float(mu), nesterov, limit, target)
            key = (hit if hit is not None else steps + 1, final)
            if best is None or key < best[0]:
                best = (key, float(lr), float(mu), path)
    if best is None:
        raise ValueError("the lr and mu grids must not be empty")
    (hit, final), lr, mu, path = best
    return (None if hit > steps else hit), final, lr, mu, path


def iteration_matrix(lam_lr: float, mu: float, nesterov: bool) -> np.ndarray:
    """The map (theta_t, v_t) -> (theta_{t+1}, v_{t+1}) on f = lam theta^2 / 2 (units lr = 1)."""
    m = mu * (1 - lam_lr) if nesterov else mu  # NAG = CM with momentum mu (1 - lam lr)
    # v' = m v - lam lr theta ; theta' = theta + v' = (1 - lam lr) theta + m v
    return np.array([[1 - lam_lr, m], [-lam_lr, m]])


def convergence_factor(lam_lr: float, mu: float, nesterov: bool) -> float:
    return float(np.abs(np.linalg.eigvals(iteration_matrix(lam_lr, mu, nesterov))).max())


def _measured_rate(lam_lr: float, mu: float, nesterov: bool, steps: int = 400) -> float:
    """|theta_T|^(1/T)-style rate of our optimizer on f = theta^2 / 2 with lr = lam_lr."""
    x = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = Momentum([x], lr=lam_lr, momentum=mu, nesterov=nesterov and mu > 0)
    norms = []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * x * x).sum().backward()
        opt.step()
        with opt.at_theta():
            th = float(x.detach())
        norms.append(math.hypot(th, float(opt.velocity(x))))
    a, b = steps // 2, steps - 1
    if norms[a] == 0 or norms[b] == 0:
        return 0.0
    return (norms[b] / norms[a]) ** (1.0 / (b - a))


def _plot_trajectories(fname, f_np, paths, xlim: tuple, ylim: tuple, title, out: Path, log_levels=True) -> Path:
    xs, ys = np.linspace(xlim[0], xlim[1], 300), np.linspace(ylim[0], ylim[1], 300)
    xx, yy = np.meshgrid(xs, ys)
    zz = f_np(xx, yy)
    fig, ax = subplots(figsize=(6.5, 4.5))
    levels = np.geomspace(max(zz.min(), 1e-6), zz.max(), 25) if log_levels else 25
    ax.contour(xx, yy, zz, levels=levels, cmap="Greys", linewidths=0.6)
    for (label, path), color in zip(paths.items(), ("C0", "C1", "C2"), strict=False):
        p = torch.stack(path).numpy()
        ax.plot(p[:, 0], p[:, 1], ".-", ms=2, lw=0.8, color=color, label=label)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize="small")
    return save_figure(fig, out / fname)


def run(
    quick: bool = True, out: Path = Path("runs/reproduce"), seeds: int = 1, smoke: bool = False, device: str = "cpu"
) -> PaperResult:  # noqa: ARG001 (analytic problems: CPU float64 always)
    t0 = time.perf_counter()
    mode = mode_name(quick, smoke)
    s = SIZES[mode]
    out = Path(out) / "momentum"
    out.mkdir(parents=True, exist_ok=True)
    res = PaperResult(
        "momentum",
        TITLE,
        f"{mode}: lr grid of {len(s.lrs)}, mu grid of {len(s.mus)}, Rosenbrock {s.rosenbrock_steps} steps",
    )
    quadratic(res, s, out)
    rosenbrock(res, s, out)
    convergence_factors(res, s, out)
    res.wall_time_s = time.perf_counter() - t0
    return res


def _methods(mus: list) -> tuple:
    """(label, momenta searched, nesterov) of GD, CM and NAG."""
    return (("GD", [0.0], False), ("CM", mus, False), ("NAG", mus, True))


def quadratic(res: PaperResult, s: Sizes, out: Path) -> None:
    """Claim 1: steps to reduce an ill-conditioned quadratic's loss by ``s.target`` (table, claims,
    trajectories over the contours)."""
    f = _quadratic(s.curvatures)
    runs = {label: _best(f, s.start, s.lrs, mus, nes, s.max_steps, s.target) for label, mus, nes in _methods(s.mus)}
    steps = {k: v[0] for k, v in runs.items()}
    res.tables["steps to reduce the quadratic's loss by 1e8 (condition number 100)"] = [
        {"method": k, "steps": v[0] if v[0] is not None else f"> {s.max_steps}", "lr": v[2], "mu": v[3]}
        for k, v in runs.items()
    ]
    gd = steps["GD"] or s.max_steps + 1
    for m in ("CM", "NAG"):
        res.claims.append(
            Claim(
                f"with a well-chosen mu, {m} reaches the loss in far fewer steps than GD",
                f"{m} {steps[m]} steps vs GD {steps['GD']}",
                "at most 1/3 of GD's steps",
                steps[m] is not None and steps[m] * 3 <= gd,
                "O(sqrt(kappa)) vs O(kappa) iterations",
            )
        )
    lam = np.array(s.curvatures)
    res.figures.append(
        Figure(
            _plot_trajectories(
                "quadratic.png",
                lambda x, y: 0.5 * (lam[0] * x**2 + lam[1] * y**2),
                {k: v[4][:200] for k, v in runs.items()},
                (-1.2, 1.2),
                (-1.2, 1.2),
                "ill-conditioned quadratic (curvatures 1 and 100): first 200 iterates",
                out,
            ),
            "GD zig-zags across the narrow valley; CM and NAG build velocity along it (the note on momentum).",
        )
    )


def rosenbrock(res: PaperResult, s: Sizes, out: Path) -> None:
    """Claim 2: the final value on Rosenbrock's function after ``s.rosenbrock_steps`` (table, claim,
    trajectories)."""
    rb = {
        label: _best(_rosenbrock, [-1.2, 1.0], s.rosenbrock_lrs, mus, nes, s.rosenbrock_steps)
        for label, mus, nes in _methods(s.rosenbrock_mus)
    }
    res.tables[f"Rosenbrock after {s.rosenbrock_steps} steps from (-1.2, 1)"] = [
        {"method": k, "final f": v[1], "lr": v[2], "mu": v[3]} for k, v in rb.items()
    ]
    best_mom = min(rb["CM"][1], rb["NAG"][1])
    res.claims.append(
        Claim(
            "on Rosenbrock's function, momentum ends far lower than GD in the same steps",
            f"momentum {best_mom:.3g} vs GD {rb['GD'][1]:.3g}",
            "momentum < GD / 10",
            best_mom < rb["GD"][1] / 10,
        )
    )
    res.figures.append(
        Figure(
            _plot_trajectories(
                "rosenbrock.png",
                lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2,
                {k: v[4][:: max(1, len(v[4]) // 400)] for k, v in rb.items()},
                (-1.5, 1.5),
                (-0.5, 1.6),
                "Rosenbrock's function: iterates of the best GD, CM and NAG runs",
                out,
            ),
            "Momentum follows the curved valley to the minimum at (1, 1); GD crawls along it.",
        )
    )


def convergence_factors(res: PaperResult, s: Sizes, out: Path) -> None:
    """Claims 3-4: the per-eigendirection convergence factor (figure), our optimizer's measured rate
    against it, and NAG against CM in high-curvature directions."""
    res.figures.append(
        Figure(
            _plot_convergence_factor(s.rate_mus, out / "convergence_factor.png"),
            "Sutskever et al. 2013, sec. 2.1: NAG is CM with momentum mu(1 - lam lr) per "
            "eigendirection, so it damps high-curvature directions; factor > 1 diverges.",
        )
    )
    errs = [
        abs(_measured_rate(g, mu, nes) - convergence_factor(g, mu, nes))
        for g, mu in RATE_POINTS
        for nes in (False, True)
    ]
    res.claims.append(
        Claim(
            "the measured per-step rate of our CM and NAG equals the spectral radius of the 2x2 iteration matrix",
            f"max abs difference {max(errs):.2g} over {len(errs)} cases",
            "below 2e-2",
            max(errs) < 2e-2,
        )
    )
    hi = np.linspace(0.5, 1.0, 11)
    worse = [
        (g, mu) for mu in (0.9, 0.99) for g in hi if convergence_factor(g, mu, True) >= convergence_factor(g, mu, False)
    ]
    res.claims.append(
        Claim(
            "NAG converges faster than CM in high-curvature directions (lam lr in [0.5, 1]) at mu 0.9 and 0.99",
            f"NAG faster at {22 - len(worse)} of 22 points",
            "all 22",
            not worse,
            "NAG tolerates larger mu",
        )
    )


def _plot_convergence_factor(mus: list, path: Path) -> Path:
    grid = np.linspace(0.01, 4.5, 300)
    fig, ax = subplots(figsize=(7, 4))
    for i, mu in enumerate(mus):
        for nes, ls in ((False, "-"), (True, "--")):
            if mu == 0 and nes:
                continue
            ax.plot(
                grid,
                [min(convergence_factor(g, mu, nes), 1.5) for g in grid],
                ls,
                color=f"C{i}",
                label=f"{'NAG' if nes else ('CM' if mu else 'GD')} mu={mu}",
            )
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xlabel("curvature x learning rate (lam * lr)")
    ax.set_ylabel("convergence factor per step")
    ax.legend(fontsize="x-small", ncol=2)
    return save_figure(fig, path)


__all__ = [
    "SIZES",
    "TITLE",
    "Sizes",
    "convergence_factor",
    "convergence_factors",
    "get_config",
    "iteration_matrix",
    "quadratic",
    "rosenbrock",
    "run",
]
