"""Sutskever, Martens, Dahl & Hinton (2013), "On the importance of initialization and momentum in
deep learning": sparse initialization plus momentum (CM or NAG) with the slowly rising schedule
trains a deep autoencoder and RNNs on long-range tasks, where plain SGD (mu = 0) does not.

What runs (every training run goes through ``train(config)``, in one resumable pool of trials):

1. **Deep autoencoder on CURVES-like images** (Table 1): logistic units, a linear 6-unit code,
   summed squared error per case, minibatch 200, sparse init (15 incoming N(0, 1) weights per
   unit; the decoder layer fed by the 6-unit code connects to all 6). Settings: SGD and
   NAG/CM with ``mu_t = min(1 - 2^(-1 - log2(floor(t / period) + 1)), mu_max)``, each at its best
   learning rate from the grid, the last updates in the final phase at mu 0.9.
2. **The final low-momentum phase** (Table 2): the best high-momentum NAG setting again without it.
3. **Scale of the sparse init** (Table 3): NAG with mu_max 0.99 at scales 0.25, 0.5, 1 and 2.
4. **Tanh RNN on the addition problem** (Table 5): 100 hidden units (50 in quick), echo-state recurrent matrix
   (15 incoming weights per unit, spectral radius 1.1), input weights N(0, 0.001^2), output
   weights N(0, 0.1^2); NAG with mu_max 0.995 against SGD at its best usable lr, several seeds;
   solved = test MSE below 0.04 (the mean predictor gives 0.167).

Quick (``--quick``, minutes on a 2-core CPU): a narrower 784-200-100-50-25-6 autoencoder on
10,000 images for 1,000 updates with the schedule compressed to a step every 5 updates (so mu
reaches 0.99 by update ~250, where the paper's period 250 would never pass 0.92 in this budget)
and a 100-update final phase; learning rates {0.05} or {0.05, 0.01} per setting; the addition problem at T = 40
(T = 80 does not separate within a quick budget) with 50 hidden units for 3,000 updates and a
schedule period of 50.
Full (``--full``): the paper's 784-400-200-100-50-25-6 net, 20,000 images, 750,000 updates,
period 250, the 1,000-update final phase, the paper's learning-rate grid, mu_max in
{0, 0.9, 0.99, 0.995, 0.999}, and the addition problem at T = 80 for 50,000 updates.

Command: ``inertia reproduce sutskever2013 --quick`` (or ``--full [--device cuda]``).
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

from ..experiments.config import Config, from_dict
from ..experiments.store import read_jsonl
from ..experiments.sweep import run_configs
from .claims import Claim, Figure, PaperResult, pyplot, save_figure

TITLE = "On the importance of initialization and momentum in deep learning (Sutskever, Martens, Dahl & Hinton 2013)"

# the paper's Table 1 (CURVES, train squared error) and Table 3 (CURVES, NAG, sparse-init scale)
PAPER_TABLE1 = {"SGD": 0.48, "NAG 0.9": 0.16, "NAG 0.99": 0.096, "NAG 0.999": 0.074, "CM 0.99": 0.10}
PAPER_LRS = [0.05, 0.01, 0.005, 0.001, 0.0005, 0.0001]
PAPER_TABLE3 = {0.25: 16, 0.5: 16, 1.0: 0.074, 2.0: 0.083, 4.0: 0.35}


def _sizes(quick: bool) -> list:
    return [784, 200, 100, 50, 25, 6] if quick else [784, 400, 200, 100, 50, 25, 6]


def _sparse_init(sizes: list, scale: float) -> dict:
    """Martens' sparse init for the mirrored autoencoder: 15 incoming weights per unit, or all of
    them for layers with fewer than 15 inputs (the decoder layer fed by the code)."""
    rules = {}
    mirrored = list(sizes) + list(reversed(sizes))[1:]
    for i, n_in in enumerate(mirrored[:-1]):
        if n_in < 15:
            rules[f"{2 * i if i < len(sizes) - 1 else 2 * i - 1}.weight"] = {"scheme": "sparse", "std": scale,
                                                                             "fan_in": n_in}
    return {"scheme": "sparse", "std": scale, "fan_in": 15, "rules": rules}


def get_config(quick: bool = True, smoke: bool = False) -> dict:
    """Sutskever et al. 2013, Tables 1-3 (deep autoencoder on CURVES) and Table 5 (RNN, addition).

    Returns ``{"autoencoder": Config, "addition": Config, "grid": {...}}``: the base configs (the
    NAG mu_max 0.99 autoencoder and the NAG addition RNN) and the grids varied around them.
    Quick: reduced sizes and updates (module docstring); full: the paper's.
    Command: ``inertia reproduce sutskever2013 --quick|--full``."""
    sizes = [784, 40, 20, 6] if smoke else _sizes(quick)
    steps = 40 if smoke else (1000 if quick else 750_000)
    final = 10 if smoke else (100 if quick else 1000)
    period = 5 if (quick or smoke) else 250
    ae = from_dict(dict(
        experiment="sutskever2013",
        data={"name": "curves", "n": 400 if smoke else (10_000 if quick else 20_000), "n_test": 200 if smoke else 2000},
        model={"name": "deep_autoencoder", "sizes": sizes},
        init=_sparse_init(sizes, 1.0),
        optimizer={"name": "momentum", "lr": 0.05, "momentum": 0.0, "nesterov": True},
        schedule={"name": "sutskever_momentum", "mu_max": 0.99, "period": period, "total_steps": steps,
                  "final_steps": final, "final_momentum": 0.9},
        loss="sum_squared", steps=steps, batch_size=200, eval_every=max(steps // 20, 1),
    ))
    t_add = 10 if smoke else (40 if quick else 80)
    rnn_steps = 30 if smoke else (3000 if quick else 50_000)
    addition = from_dict(dict(
        experiment="sutskever2013",
        data={"name": "addition", "n": 500 if smoke else 20_000, "seq_len": t_add, "n_test": 200 if smoke else 1000},
        model={"name": "tanh_rnn", "input_size": 2, "hidden_size": 50 if quick or smoke else 100, "output_size": 1,
               "output": "last"},
        init={"scheme": "normal", "std": 0.1,
              "rules": {"weight_hh": {"scheme": "echo_state", "spectral_radius": 1.1, "fan_in": 15},
                        "weight_ih": {"scheme": "normal", "std": 0.001}}},
        optimizer={"name": "momentum", "lr": 0.003, "momentum": 0.0, "nesterov": True},
        schedule={"name": "sutskever_momentum", "mu_max": 0.995, "period": 50 if quick or smoke else 250},
        loss="auto", steps=rnn_steps, batch_size=100, eval_every=max(rnn_steps // 20, 1),
    ))
    grid = {
        # (label, mu_max, nesterov); mu_max 0 is SGD
        # (label, mu_max, nesterov, learning rates tried); mu_max 0 is SGD. Quick tries the paper's two
        # largest rates at mu_max 0.999 (where 0.05 can be unstable), else only 0.05 (at quick size
        # NAG 0.99 and CM 0.99 reached 10.3 and 14.4 with 0.05 against 16.8 and 16.7 with 0.01).
        "ae_settings": ([("SGD", 0.0, False, [0.05]), ("NAG 0.99", 0.99, True, [0.05]),
                         ("CM 0.99", 0.99, False, [0.05])] if smoke else
                        [("SGD", 0.0, False, [0.05]), ("NAG 0.9", 0.9, True, [0.05]),
                         ("NAG 0.99", 0.99, True, [0.05]), ("NAG 0.999", 0.999, True, [0.05, 0.01]),
                         ("CM 0.99", 0.99, False, [0.05]), ("CM 0.999", 0.999, False, [0.05, 0.01])]
                        if quick else
                        [("SGD", 0.0, False, PAPER_LRS)] + [(f"{m} {mu}", mu, m == "NAG", PAPER_LRS)
                                                            for m in ("NAG", "CM") for mu in (0.9, 0.99, 0.995, 0.999)]),
        "sparse_scales": [0.25, 1.0] if smoke else ([0.25, 0.5, 1.0, 2.0] if quick else [0.25, 0.5, 1.0, 2.0, 4.0]),
        # (label, mu_max, lr): SGD at its best usable lr (the prototype: 0.02, near divergence)
        "rnn_settings": [("NAG 0.995", 0.995, 0.003), ("SGD", 0.0, 0.02)],
        "rnn_seeds": 1 if smoke else (3 if quick else 5),
    }
    return {"autoencoder": ae, "addition": addition, "grid": grid}


def _ae_config(base: Config, mu_max: float, nesterov: bool, lr: float, scale: float = 1.0,
               final_phase: bool = True) -> Config:
    d = base.to_dict()
    d["optimizer"].update(lr=lr, nesterov=nesterov, momentum=0.0)
    if mu_max == 0:
        d["schedule"] = None
    else:
        d["schedule"].update(mu_max=mu_max)
        if not final_phase:
            d["schedule"].update(total_steps=None)
    d["init"] = _sparse_init(d["model"]["sizes"], scale)
    return from_dict(d)


def _rnn_config(base: Config, mu_max: float, lr: float, seed: int) -> Config:
    d = base.to_dict()
    d["optimizer"].update(lr=lr, nesterov=mu_max > 0)
    d["schedule"] = dict(d["schedule"], mu_max=mu_max) if mu_max > 0 else None
    d["seed"] = seed
    return from_dict(d)


def _final(t: dict, metric: str = "train_error") -> float:
    v = t["metrics"].get(metric) if t["status"] == "completed" else None
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.inf


def _curves(sweep, t: dict) -> list:
    return read_jsonl(sweep.directory / "trials" / t["id"] / "metrics.jsonl")


def mean_image_error(cfg: Config) -> float:
    """Summed squared error per case of predicting the training set's mean image (on the same
    examples ``train`` evaluates): the error of an autoencoder that has learned nothing."""
    from ..experiments import components

    data = components.build_data(cfg)
    x = data.x_train[: data.eval_examples]
    return float(((x - x.mean(0)) ** 2).sum(1).mean())


def run(quick: bool = True, out: Path = Path("runs/reproduce"), seeds: int = 1, smoke: bool = False,
        device: str = "cpu") -> PaperResult:
    t0 = time.perf_counter()
    cfg = get_config(quick, smoke)
    mode = "smoke" if smoke else "quick" if quick else "full"
    ae, add, grid = cfg["autoencoder"], cfg["addition"], cfg["grid"]
    if device != "cpu":
        ae, add = ae.replace(device=device), add.replace(device=device)
    n_rnn_seeds = max(seeds, grid["rnn_seeds"])
    out = Path(out)
    fig_dir = out / "sutskever2013"
    fig_dir.mkdir(parents=True, exist_ok=True)
    workers = 1 if smoke else None

    # stage 1: the autoencoder table and the RNN runs, one pool
    stage1 = {}
    for label, mu, nes, lrs in grid["ae_settings"]:
        for lr in lrs:
            stage1[f"ae|{label}|{lr}"] = _ae_config(ae, mu, nes, lr)
    for label, mu, lr in grid["rnn_settings"]:
        for s in range(n_rnn_seeds):
            stage1[f"addition|{label}|{s}"] = _rnn_config(add, mu, lr, add.seed + s)
    s1 = run_configs(stage1, out=out / "sutskever2013", name=f"stage1-{mode}", workers=workers, resume=True)
    by1 = {t["overrides"]["label"]: t for t in s1.trials}

    ae_err = {}  # setting -> (best lr, final train error)
    for label, _, _, lrs in grid["ae_settings"]:
        errs = {lr: _final(by1[f"ae|{label}|{lr}"]) for lr in lrs}
        best_lr = min(errs, key=errs.get)
        ae_err[label] = (best_lr, errs[best_lr])
    # the best high-momentum NAG setting: used for the final-phase and the sparse-scale runs
    nag = [(label, mu) for label, mu, nes, _ in grid["ae_settings"] if nes and mu >= 0.99]
    best_nag, best_nag_mu = min(nag, key=lambda lm: ae_err[lm[0]][1])
    nag_lr = ae_err[best_nag][0]
    ref_scale_label = "NAG 0.99" if "NAG 0.99" in ae_err else best_nag
    scale_lr = ae_err[ref_scale_label][0]

    # stage 2: without the final phase, and the sparse-init scales (NAG mu_max 0.99, its best lr)
    stage2 = {f"nofinal|{best_nag}|{nag_lr}": _ae_config(ae, best_nag_mu, True, nag_lr, final_phase=False)}
    for sc in grid["sparse_scales"]:
        if sc != 1.0:
            stage2[f"scale|{sc}"] = _ae_config(ae, 0.99, True, scale_lr, scale=sc)
    s2 = run_configs(stage2, out=out / "sutskever2013", name=f"stage2-{mode}", workers=workers, resume=True)
    by2 = {t["overrides"]["label"]: t for t in s2.trials}

    baseline = mean_image_error(ae)
    res = PaperResult("sutskever2013", TITLE, _setting(mode, ae, add, grid, n_rnn_seeds))

    # Table 1
    res.tables["deep autoencoder, final training error (summed squared error per case; best lr per setting)"] = [
        {"setting": label, "best lr": ae_err[label][0], "train error": ae_err[label][1],
         "paper (CURVES, full size)": PAPER_TABLE1.get(label)} for label, _, _, _ in grid["ae_settings"]]
    sgd = ae_err["SGD"][1]
    best_mom_label = min((lb for lb in ae_err if lb != "SGD"), key=lambda lb: ae_err[lb][1])
    best_mom = ae_err[best_mom_label][1]
    res.claims.append(Claim(
        "momentum with the schedule beats SGD by a large factor on the deep autoencoder",
        f"SGD {sgd:.3g} vs {best_mom_label} {best_mom:.3g} ({sgd / best_mom:.2g}x; mean-image error {baseline:.3g})",
        "SGD error >= 2 x best momentum error", sgd >= 2 * best_mom, "SGD 0.48 vs 0.999N 0.074 (6.5x)"))
    pairs = [mu for label, mu, nes, _ in grid["ae_settings"] if nes and mu >= 0.99 and f"CM {mu}" in ae_err]
    nag_vs_cm = {mu: (ae_err[f"NAG {mu}"][1], ae_err[f"CM {mu}"][1]) for mu in pairs}
    res.claims.append(Claim(
        "NAG matches or beats CM at high mu_max",
        "; ".join(f"mu_max {mu}: NAG {n:.3g} vs CM {c:.3g}" for mu, (n, c) in nag_vs_cm.items()),
        "NAG <= 1.05 x CM at every mu_max >= 0.99", all(n <= 1.05 * c for n, c in nag_vs_cm.values()),
        "0.99N 0.096 vs 0.99M 0.10"))
    if "NAG 0.9" in ae_err:
        n9, n99 = ae_err["NAG 0.9"][1], ae_err["NAG 0.99"][1]
        res.claims.append(Claim("raising mu_max from 0.9 to 0.99 lowers NAG's error", f"{n9:.3g} -> {n99:.3g}",
                                "NAG 0.99 < NAG 0.9", n99 < n9, "0.16 -> 0.096"))

    # Table 2
    nofinal = _final(by2[f"nofinal|{best_nag}|{nag_lr}"])
    with_final = ae_err[best_nag][1]
    res.tables["the final low-momentum phase"] = [
        {"setting": best_nag, "lr": nag_lr, "without final phase": nofinal, "with final phase (mu 0.9)": with_final}]
    res.claims.append(Claim(
        "the final low-momentum phase lowers the training error",
        f"{best_nag}: {nofinal:.3g} without -> {with_final:.3g} with", "with < without", with_final < nofinal,
        "lower in every setting (Table 2)"))

    # Table 3
    scale_err = {1.0: ae_err[ref_scale_label][1]}
    scale_err.update({sc: _final(by2[f"scale|{sc}"]) for sc in grid["sparse_scales"] if sc != 1.0})
    res.tables[f"scale of the sparse init (NAG mu_max 0.99, lr {scale_lr})"] = [
        {"scale": sc, "train error": scale_err[sc], "fraction of the mean-image error": scale_err[sc] / baseline,
         "paper (CURVES)": PAPER_TABLE3.get(sc)} for sc in sorted(scale_err)]
    small = [sc for sc in scale_err if sc < 1]
    large = [sc for sc in scale_err if sc >= 1 and sc <= 2]
    res.claims.append(Claim(
        f"a sparse-init scale below 1 ({', '.join(map(str, small))}) does not train",
        ", ".join(f"scale {sc}: {scale_err[sc] / baseline:.2f} of the mean-image error" for sc in small),
        "error >= 0.8 x the mean-image error", all(scale_err[sc] >= 0.8 * baseline for sc in small),
        "0.25 and 0.5 -> 16 (no training)"))
    res.claims.append(Claim(
        f"scales {', '.join(map(str, large))} train",
        ", ".join(f"scale {sc}: {scale_err[sc] / baseline:.2f} of the mean-image error" for sc in large),
        "error < 0.5 x the mean-image error", all(scale_err[sc] < 0.5 * baseline for sc in large),
        "1 -> 0.074, 2 -> 0.083"))

    # Table 5: the addition problem
    rnn_rows, solve = [], {}
    for label, mu, lr in grid["rnn_settings"]:
        runs = [by1[f"addition|{label}|{s}"] for s in range(n_rnn_seeds)]
        firsts = []
        for t in runs:
            hist = _curves(s1, t)
            first = next((m["step"] for m in hist if m.get("test_solved")), None)
            firsts.append(first)
        solved = [f is not None and t["status"] == "completed" for f, t in zip(firsts, runs)]
        solve[label] = sum(solved) / len(runs)
        finals = [_final(t, "test_error") for t in runs]
        rnn_rows.append({"setting": label, "lr": lr, "solved": f"{sum(solved)}/{len(runs)}",
                         "median updates to solve": statistics.median([f for f in firsts if f is not None])
                         if any(f is not None for f in firsts) else None,
                         "median final test MSE": statistics.median(finals),
                         "status": ",".join(sorted({t["status"] for t in runs}))})
    res.tables[f"tanh RNN, addition problem (T = {add.data['seq_len']}; solved: test MSE < 0.04)"] = rnn_rows
    nag_label, sgd_label = grid["rnn_settings"][0][0], grid["rnn_settings"][1][0]
    res.claims.append(Claim(
        f"the RNN with echo-state init solves the addition problem with {nag_label}",
        f"{solve[nag_label]:.0%} of seeds", "at least 2/3 of seeds", solve[nag_label] >= 2 / 3 - 1e-9,
        "0.995 NAG: test error 0.00025 (T = 80)"))
    res.claims.append(Claim(
        f"momentum solves more seeds than mu = 0 ({sgd_label}) in the same budget",
        f"{nag_label} {solve[nag_label]:.0%} vs {sgd_label} {solve[sgd_label]:.0%}",
        "NAG solve rate > SGD solve rate", solve[nag_label] > solve[sgd_label], "mu = 0 stays at 0.39 (T = 80)"))

    res.figures.append(Figure(_plot_autoencoder(s1, by1, grid, ae_err, baseline, fig_dir / "autoencoder.png"),
                              "Sutskever et al., Table 1: with the momentum schedule and sparse init the deep "
                              "autoencoder's training error falls far below SGD's; NAG handles high mu_max better "
                              "than CM (best lr per setting; the final-phase start is marked)."))
    res.figures.append(Figure(_plot_scales(scale_err, baseline, fig_dir / "sparse_scale.png"),
                              "Sutskever et al., Table 3: too small a scale of the sparse init (0.25, 0.5) does "
                              "not train at all; 1 and 2 train."))
    res.figures.append(Figure(_plot_rnn(s1, by1, grid, n_rnn_seeds, fig_dir / "addition.png"),
                              "Sutskever et al., Table 5: the echo-state-initialized tanh RNN solves the addition "
                              "problem with high momentum (NAG); with mu = 0 it stays on the plateau of the mean "
                              "predictor (MSE 0.167)."))
    res.wall_time_s = time.perf_counter() - t0
    return res


def _setting(mode: str, ae: Config, add: Config, grid: dict, n_seeds: int) -> str:
    sched = ae.schedule
    return (f"{mode}: autoencoder {'-'.join(map(str, ae.model['sizes']))} (mirrored) on {ae.data['n']} CURVES-like "
            f"images, batch {ae.batch_size}, {ae.steps} updates, schedule period {sched['period']} (paper: 250), "
            f"final phase {sched['final_steps']} updates (paper: 1000), lrs per setting in the table; addition "
            f"T = {add.data['seq_len']} (paper: 80), {add.model['hidden_size']} hidden units (paper: 100), "
            f"{add.steps} updates (paper: 50,000), {n_seeds} seeds")


def _plot_autoencoder(sweep, by, grid, ae_err, baseline, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (label, _, _, _) in enumerate(grid["ae_settings"]):
        t = by[f"ae|{label}|{ae_err[label][0]}"]
        ms = [m for m in _curves(sweep, t) if isinstance(m.get("train_error"), float) and math.isfinite(m["train_error"])]
        ax.plot([m["step"] for m in ms], [m["train_error"] for m in ms], color=f"C{i}",
                label=f"{label} (lr {ae_err[label][0]})", ls="--" if label.startswith("CM") else "-")
    ax.axhline(baseline, color="gray", lw=0.8, ls=":", label="mean image")
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("training error (squared error per case)")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def _plot_scales(scale_err: dict, baseline: float, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    xs = sorted(scale_err)
    ax.bar([str(x) for x in xs], [min(scale_err[x], 10 * baseline) for x in xs], color="C0")
    ax.axhline(baseline, color="gray", ls=":", label="mean-image error")
    ax.set_xlabel("scale of the sparse init")
    ax.set_ylabel("final training error")
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def _plot_rnn(sweep, by, grid, n_seeds: int, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (label, _, lr) in enumerate(grid["rnn_settings"]):
        for s in range(n_seeds):
            ms = [m for m in _curves(sweep, by[f"addition|{label}|{s}"])
                  if isinstance(m.get("test_error"), float) and math.isfinite(m["test_error"])]
            ax.plot([m["step"] for m in ms], [m["test_error"] for m in ms], color=f"C{i}", lw=1,
                    label=f"{label} (lr {lr})" if s == 0 else None)
    ax.axhline(0.04, color="gray", ls=":", label="solved (0.04)")
    ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("test MSE")
    ax.legend(fontsize="small")
    return save_figure(fig, path)
