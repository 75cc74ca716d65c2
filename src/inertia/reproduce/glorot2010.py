"""Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
networks": with the "standard" init U[-1/sqrt(n_in), 1/sqrt(n_in)] back-propagated gradients
shrink toward the input and layer Jacobians contract (mean singular value about 0.5); the
normalized init U[+-sqrt(6/(n_in + n_out))] keeps both level (about 0.8); sigmoid networks
saturate their top hidden layer and train worst.

What runs:

1. **At initialization, on the faithful Shapeset-3x2** (300 images): 5-hidden-layer MLPs
   (1024-m-m-m-m-m-9) for sigmoid, tanh and softsign under both inits; per-layer activation and
   back-propagated gradient (d loss / d pre-activation) statistics and histograms
   (``diagnostics.LayerStats``), and the singular values of each hidden layer-to-layer Jacobian
   (``diagnostics.layer_jacobian_singular_values``). Figures 6-7 and section 4.2.2 of the paper.
2. **Training** (``train(config)`` for the six settings, one pool): plain SGD, minibatch 10,
   softmax and negative log-likelihood, per-layer activation mean and std recorded along training
   on the training minibatches (the Monitor's ``layer_stats``): Figures 2-4 and Table 1.

Quick: width 500 for the init-time measurements (the prototype found the same values for widths
200-1000), and the training runs at width 200 for 6,000 updates on the clearly labelled *easy*
Shapeset variant (larger white shapes on black): the faithful set is too hard for a quick budget
(78-84% test error after 10,000 updates). Full: width 1000, the faithful data, 100,000 updates.
Command: ``inertia reproduce glorot2010 --quick`` (or ``--full [--device cuda]``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..experiments.config import Config, from_dict
from ..experiments.store import read_jsonl
from ..experiments.sweep import run_configs
from .claims import Claim, Figure, PaperResult

TITLE = "Understanding the difficulty of training deep feedforward neural networks (Glorot & Bengio 2010)"
ACTIVATIONS = ("sigmoid", "tanh", "softsign")
INITS = {"standard": "standard_uniform", "normalized": "glorot_uniform"}
# Table 1, Shapeset-3x2 test error (%) after long training, 5 hidden layers ("N": normalized init)
PAPER_TABLE1 = {("softsign", "standard"): 16.27, ("softsign", "normalized"): 16.06, ("tanh", "standard"): 27.15,
                ("tanh", "normalized"): 15.60, ("sigmoid", "standard"): 82.61}


def get_config(quick: bool = True, smoke: bool = False) -> dict:
    """Glorot & Bengio 2010: Figures 2-4 and 6-7, section 4.2.2 and Table 1 (Shapeset-3x2 rows).

    Returns ``{"train": Config, "init_width": int, "init_examples": int}``: the base training
    config (tanh, standard init; the six settings vary ``model.activation`` and the init).
    Command: ``inertia reproduce glorot2010 --quick|--full``."""
    width = 32 if smoke else (200 if quick else 1000)
    steps = 60 if smoke else (6000 if quick else 100_000)
    every = max(steps // 20, 1)
    train = from_dict(dict(
        experiment="glorot2010",
        data={"name": "shapeset" if not (quick or smoke) else "shapeset_easy",
              "n": 500 if smoke else (10_000 if quick else 50_000), "n_test": 200 if smoke else 2000},
        model={"name": "mlp", "sizes": [1024] + [width] * 5 + [9], "activation": "tanh"},
        init={"scheme": "standard_uniform"},
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.0},
        loss="cross_entropy", steps=steps, batch_size=10, eval_every=every,
        monitor={"quantities": ["layer_stats"], "every": every},
    ))
    return {"train": train, "init_width": 32 if smoke else (500 if quick else 1000),
            "init_examples": 60 if smoke else 300}


def _train_config(base: Config, activation: str, init: str) -> Config:
    d = base.to_dict()
    d["model"]["activation"] = activation
    d["init"] = {"scheme": INITS[init]}
    return from_dict(d)


def _net(width: int, activation: str, init: str, seed: int):
    from .. import init as I
    from ..models import mlp

    net = mlp([1024] + [width] * 5 + [9], activation=activation).double()
    I.apply(net, INITS[init], generator=torch.Generator().manual_seed(seed))
    return net


def init_measurements(width: int, examples: int, seed: int = 0, jacobian_examples: int = 4) -> dict:
    """Per (activation, init): per-layer activation and back-propagated gradient stats (with
    histograms) on ``examples`` faithful Shapeset images, and the mean singular value of each
    hidden layer-to-layer Jacobian (hidden layers 2..5)."""
    from ..data import shapeset
    from ..diagnostics import layer_jacobian_singular_values, layer_stats
    from ..diagnostics.jacobians import blocks_of

    x, y = shapeset(examples, seed=seed + 7)
    x = x.double()
    out = {}
    for act in ACTIVATIONS:
        for init in INITS:
            net = _net(width, act, init, seed)
            recs = layer_stats(net, x, lambda o, t: F.cross_entropy(o, t), y)
            acts = [r for r in recs if r["kind"] == "activation"]  # hidden layers 1..5 in order
            grads = [r for r in recs if r["kind"] == "backprop_grad"]  # hooks fire output-first: sort
            grads = sorted(grads, key=lambda r: int(r["layer"]))[:5]  # the 5 hidden pre-activations
            blocks = blocks_of(net)[1:5]  # hidden layer i-1 -> hidden layer i, i = 2..5
            spectra = layer_jacobian_singular_values(net, x, examples=jacobian_examples, blocks=None)
            spectra = [s for s in spectra if s.name in {n for n, _ in blocks}]
            out[(act, init)] = {"activations": acts, "grads": grads,
                                "jacobian_mean_sv": [s.mean for s in spectra]}
    return out


def run(quick: bool = True, out: Path = Path("runs/reproduce"), seeds: int = 1, smoke: bool = False,
        device: str = "cpu") -> PaperResult:
    t0 = time.perf_counter()
    cfg = get_config(quick, smoke)
    base = cfg["train"] if device == "cpu" else cfg["train"].replace(device=device)
    mode = "smoke" if smoke else "quick" if quick else "full"
    out = Path(out)
    fig_dir = out / "glorot2010"
    fig_dir.mkdir(parents=True, exist_ok=True)

    # 1. at initialization (before the training pool, which uses every core)
    m = init_measurements(cfg["init_width"], cfg["init_examples"], seed=base.seed)
    res = PaperResult("glorot2010", TITLE, _setting(mode, base, cfg))
    rows = []
    for (act, init), v in m.items():
        g = [r["std"] for r in v["grads"]]
        rows.append({"activation": act, "init": init,
                     "activation std, layers 1-5": [round(r["std"], 3) for r in v["activations"]],
                     "back-prop. gradient std, layer 1 / layer 5": g[0] / g[-1],
                     "mean Jacobian singular value": statistics.fmean(v["jacobian_mean_sv"])})
    res.tables[f"at initialization (faithful Shapeset, width {cfg['init_width']})"] = rows
    by = {(r["activation"], r["init"]): r for r in rows}
    rs, rn = (by[("tanh", k)]["back-prop. gradient std, layer 1 / layer 5"] for k in ("standard", "normalized"))
    res.claims.append(Claim(
        "tanh, standard init: back-propagated gradients shrink toward the input; normalized init keeps them level",
        f"layer-1 / layer-5 gradient std: standard {rs:.2f}, normalized {rn:.2f}",
        "standard < 0.5 and normalized > 2 x standard", rs < 0.5 and rn > 2 * rs,
        "Figure 7 (variance shrinks toward the input under standard init)"))
    js, jn = (by[("tanh", k)]["mean Jacobian singular value"] for k in ("standard", "normalized"))
    res.claims.append(Claim(
        "mean singular value of the layer-to-layer Jacobian: about 0.8 normalized vs 0.5 standard (tanh)",
        f"normalized {jn:.2f}, standard {js:.2f}", "normalized in [0.6, 1.0], standard in [0.35, 0.6]",
        0.6 <= jn <= 1.0 and 0.35 <= js <= 0.6, "0.8 vs 0.5 (section 4.2.2)"))
    res.figures.append(Figure(_plot_histograms(m, fig_dir / "histograms_at_init.png"),
                              "Glorot & Bengio, Figures 6-7: tanh activations and back-propagated gradients per "
                              "layer at initialization; with the standard init the gradients' spread shrinks "
                              "toward the input layers, with the normalized init it is about the same in every "
                              "layer."))

    # 2. training
    configs = {f"{act}|{init}": _train_config(base, act, init) for act in ACTIVATIONS for init in INITS}
    sweep = run_configs(configs, out=fig_dir, name=f"train-{mode}", workers=1 if smoke else None, resume=True)
    trials = {t["overrides"]["label"]: t for t in sweep.trials}
    err, curves = {}, {}
    for label, t in trials.items():
        d = sweep.directory / "trials" / t["id"]
        v = t["metrics"].get("test_error") if t["status"] == "completed" else None
        err[label] = float(v) if isinstance(v, (int, float)) else 1.0
        curves[label] = _activation_curves(read_jsonl(d / "diagnostics.jsonl"))
    res.tables["test error after training (%)"] = [
        {"activation": act, "init": init, "test error (%)": 100 * err[f"{act}|{init}"],
         "paper (faithful Shapeset, long training)": PAPER_TABLE1.get((act, init)),
         "status": trials[f"{act}|{init}"]["status"]} for act in ACTIVATIONS for init in INITS]
    sig = min(err["sigmoid|standard"], err["sigmoid|normalized"])
    others = max(err[f"{a}|{i}"] for a in ("tanh", "softsign") for i in INITS)
    res.claims.append(Claim(
        "sigmoid networks train worst", f"sigmoid {100 * sig:.1f}% vs worst tanh/softsign {100 * others:.1f}%",
        "best sigmoid error > worst tanh/softsign error", sig > others, "sigmoid 82.61% vs 15.60-27.15%"))
    ts, tn = err["tanh|standard"], err["tanh|normalized"]
    res.claims.append(Claim(
        "the normalized init helps tanh", f"standard {100 * ts:.1f}% vs normalized {100 * tn:.1f}%",
        "normalized < standard", tn < ts, "27.15% vs 15.60%"))
    sc = curves["sigmoid|standard"]
    if sc and len(sc["mean"]) >= 2:
        top0, top_min = sc["mean"][0][-1], min(row[-1] for row in sc["mean"])
        low_min = min(min(row[:-1]) for row in sc["mean"])
        res.claims.append(Claim(
            "sigmoid: the top hidden layer saturates toward 0 during training while the lower layers stay near 0.5",
            f"top layer mean {top0:.2f} -> min {top_min:.2f}; lower layers' lowest mean {low_min:.2f}",
            "top layer's minimum < 0.5 x its initial mean and lower layers >= 0.35",
            top_min < 0.5 * top0 and low_min >= 0.35, "layer 5 falls to about 0 quickly (Figure 2)"))
    res.figures.append(Figure(_plot_activation_curves(curves, fig_dir / "activations_over_training.png"),
                              "Glorot & Bengio, Figures 2-4: mean (and std, shaded) of each hidden layer's "
                              "activations during training; sigmoid's top hidden layer is pushed to saturation "
                              "at 0 while the lower layers stay near 0.5."))
    res.wall_time_s = time.perf_counter() - t0
    return res


def _activation_curves(diag: list) -> dict:
    """steps and per-layer activation mean/std ([step][layer]) from Monitor records."""
    steps, means, stds = [], [], []
    for rec in diag:
        acts = [r for r in rec.get("layers", []) if r.get("kind") == "activation"]
        acts = sorted(acts, key=lambda r: int(r["layer"]))[:5]  # hidden layers 1..5 (not the output)
        if len(acts) == 5:
            steps.append(rec["step"])
            means.append([r["mean"] for r in acts])
            stds.append([r["std"] for r in acts])
    return {"step": steps, "mean": means, "std": stds}


def _setting(mode: str, base: Config, cfg: dict) -> str:
    data = "easy Shapeset variant (NOT the paper's data)" if base.data["name"] == "shapeset_easy" else "Shapeset-3x2"
    return (f"{mode}: init-time measurements on the faithful Shapeset-3x2, width {cfg['init_width']}, "
            f"{cfg['init_examples']} images; training on the {data}, width {base.model['sizes'][1]}, "
            f"{base.data['n']} training images, SGD lr {base.optimizer.lr}, minibatch {base.batch_size}, "
            f"{base.steps} updates (paper: width 1000, lr tuned per model, long training)")


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _plot_histograms(m: dict, path: Path) -> Path:
    plt = _mpl()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for col, init in enumerate(INITS):
        v = m[("tanh", init)]
        for row, (kind, recs) in enumerate((("activation values", v["activations"]),
                                            ("back-propagated gradients", v["grads"]))):
            ax = axes[row][col]
            for i, r in enumerate(recs):
                lo, hi = r["hist_range"]
                h = r["hist"]
                centers = [lo + (k + 0.5) * (hi - lo) / len(h) for k in range(len(h))]
                total = sum(h) or 1
                ax.plot(centers, [c / total for c in h], label=f"layer {i + 1}", color=f"C{i}")
            ax.set_title(f"tanh, {init} init: {kind}")
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_activation_curves(curves: dict, path: Path) -> Path:
    plt = _mpl()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, act in zip(axes, ACTIVATIONS):
        c = curves.get(f"{act}|standard") or {"step": []}
        if c["step"]:
            for i in range(5):
                mu = [row[i] for row in c["mean"]]
                sd = [row[i] for row in c["std"]]
                ax.plot(c["step"], mu, color=f"C{i}", label=f"layer {i + 1}")
                ax.fill_between(c["step"], [a - b for a, b in zip(mu, sd)], [a + b for a, b in zip(mu, sd)],
                                color=f"C{i}", alpha=0.1)
        ax.set_title(f"{act}, standard init")
        ax.set_xlabel("update")
        ax.set_ylabel("activation mean (std shaded)")
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["get_config", "run", "init_measurements", "TITLE"]
