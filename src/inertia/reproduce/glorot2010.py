"""Glorot & Bengio (2010), "Understanding the difficulty of training deep feedforward neural
networks" (AISTATS): 5-hidden-layer MLPs on Shapeset-3x2 with sigmoid, tanh and softsign units
under the "standard" init W ~ U[-1/sqrt(n_in), 1/sqrt(n_in)] (Var W = 1/(3 n_in)) and the
normalized init W ~ U[-sqrt(6/(n_in + n_out)), +sqrt(6/(n_in + n_out))] (Var W = 2/(n_in + n_out),
the paper's equation 16); biases 0.

What runs:

1. **At initialization, on the faithful Shapeset-3x2** (300 images, float64), for the three
   activations x two inits: per-layer activation, back-propagated gradient (d loss / d
   pre-activation) and weight-gradient statistics and histograms from ``diagnostics.layer_stats``
   (Figures 6, 7 and 8), and the singular values of the four hidden layer-to-layer Jacobians
   J_i = diag(phi'(a_i)) W_i, i = 2..5, from ``diagnostics.layer_jacobian_singular_values``
   (section 4.2.2: mean singular value about 0.8 normalized vs 0.5 standard).
2. **Training**, six ``train(config)`` runs in one resumable pool (``run_configs``): plain SGD,
   minibatch 10, softmax and negative log-likelihood, one learning rate (0.05) for every model
   (the paper tunes it per model). The Monitor's ``layer_stats`` gives each hidden layer's
   activation mean, std and 98th percentile along training on 300 fixed test images (Figures
   2-4); the test error
   (Table 1) is the mean of the last three evaluations, which smooths minibatch-SGD noise.

Quick: the init-time measurements at width 500 (the same values as at 1000: 0.49 vs 0.75-0.78),
the training runs at width 200 for 18,000 updates on the clearly labelled **easy Shapeset
variant** (larger white shapes on black, not the paper's data): the faithful set is too hard for a
quick budget (78-84% test error after 10,000 updates; chance 88.9%). Full: width 1000 everywhere,
the faithful data (100,000 training images standing in for the paper's online stream), 1,000,000
updates (the paper trains online for much longer than any quick budget; its exact count is not
reproduced here), and, as the paper tunes the learning rate per model, every setting at each rate
of ``FULL_LRS`` (0.01, 0.03, 0.1) with the best one (lowest smoothed test error) kept per
setting and the other seeds run at it; quick keeps lr 0.05 for every model.

Activation statistics along training are computed, as in the paper, on 300 fixed test images at
each recorded update (``monitor.probe: 300``: one extra forward/backward pass with the Monitor's
hooks armed; training itself is unchanged).

Command: ``inertia reproduce glorot2010 --quick`` (about 2 minutes on 2 cores) or
``inertia reproduce glorot2010 --full [--device cuda]``.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..diagnostics.plots import subplots
from ..experiments.config import Config, from_dict
from ..experiments.store import read_jsonl
from ..experiments.sweep import run_configs
from ..render import save_figure
from .budget import PaperBudget, apply_budget
from .claims import Claim, Figure, PaperResult, mode_name

TITLE = "Understanding the difficulty of training deep feedforward neural networks (Glorot & Bengio 2010)"
ACTIVATIONS = ("sigmoid", "tanh", "softsign")
INITS = {"standard": "standard_uniform", "normalized": "glorot_uniform"}
HIDDEN = 5
CHANCE = 8 / 9  # 9 balanced classes
# Table 1, Shapeset-3x2 test error (%), 5 hidden layers, long online training ("N": normalized init)
PAPER_TABLE1 = {
    ("softsign", "standard"): 16.27,
    ("softsign", "normalized"): 16.06,
    ("tanh", "standard"): 27.15,
    ("tanh", "normalized"): 15.60,
    ("sigmoid", "standard"): 82.61,
}


# the paper tunes the learning rate per model; --full tries these for each of the six settings
FULL_LRS = (0.01, 0.03, 0.1)


@dataclass(frozen=True)
class Sizes:
    """The sizes and budget of one mode: the training runs' width, updates and training / test
    images, and the init-time measurement's width, images and images for the Jacobians."""

    width: int
    steps: int
    n: int
    n_test: int
    init_width: int
    init_examples: int
    jacobian_examples: int
    lrs: tuple = (0.05,)  # the learning rates tried per model (the best one per model is kept)


SIZES = {
    "smoke": Sizes(width=32, steps=60, n=500, n_test=200, init_width=32, init_examples=60, jacobian_examples=2),
    "quick": Sizes(
        width=200, steps=18_000, n=10_000, n_test=2000, init_width=500, init_examples=300, jacobian_examples=8
    ),
    "full": Sizes(
        width=1000,
        steps=1_000_000,
        n=100_000,
        n_test=10_000,
        init_width=1000,
        init_examples=300,
        jacobian_examples=16,
        lrs=FULL_LRS,
    ),
}
# a 1024-1000x5-9 MLP update at minibatch 10: about 0.3 GFLOP, ~12 ms on one core (estimate)
BUDGET = PaperBudget("glorot2010", {"steps": 1000}, hours=lambda s: 6 * len(s.lrs) * s.steps * 0.012 / 3600)
PROBE_IMAGES = 300  # the paper computes activation statistics on 300 fixed test images
TANH_SATURATED_P98 = 0.97  # a tanh layer counts as saturated once its 98th percentile reaches this
SIGMOID_LOWER_BAND = 0.15  # sigmoid's lower layers "stay near 0.5": |mean - 0.5| <= this throughout


def get_config(quick: bool = True, smoke: bool = False, sizes: Sizes | None = None) -> Config:
    """Glorot & Bengio 2010: the training runs behind Figures 2-4 and Table 1 (Shapeset-3x2 rows).

    The base config (tanh, standard init); the six settings vary ``model.activation`` and
    ``init.scheme`` (``standard_uniform`` or ``glorot_uniform``). 1024-m-m-m-m-m-9 MLP, SGD with
    lr 0.05 (``--full`` tries ``FULL_LRS`` per setting), minibatch 10, per-layer statistics every
    ``steps / 40`` updates. Quick: m = 200, 18,000 updates on the easy Shapeset variant (10,000
    images); full: m = 1000, 1,000,000 updates on the faithful Shapeset-3x2 (100,000 images). The
    init-time measurements' sizes are in ``SIZES``. Command: ``inertia reproduce glorot2010
    --quick|--full [--device cuda]``."""
    mode = mode_name(quick, smoke)
    s = sizes or SIZES[mode]
    every = max(s.steps // 40, 1)
    return from_dict(
        dict(
            experiment="glorot2010",
            data={
                "name": "shapeset" if mode == "full" else "shapeset_easy",
                "n": s.n,
                "n_test": s.n_test,
            },
            model={"name": "mlp", "sizes": [1024] + [s.width] * HIDDEN + [9], "activation": "tanh"},
            init={"scheme": INITS["standard"]},
            optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.0},
            loss="cross_entropy",
            steps=s.steps,
            batch_size=10,
            eval_every=max(s.steps // 10, 1),
            # layer statistics on 300 fixed test images, as the paper's Figures 2-4 (smoke: 50)
            monitor={"quantities": ["layer_stats"], "every": every, "probe": 50 if smoke else PROBE_IMAGES},
        )
    )


def setting_config(base: Config, activation: str, init: str, seed: int = 0, lr: float | None = None) -> Config:
    """``base`` with one (activation, init) setting, seed ``base.seed + seed`` and ``lr`` (None:
    ``base``'s)."""
    d = base.to_dict()
    if lr is not None:
        d["optimizer"]["lr"] = lr
    d["model"]["activation"] = activation
    d["init"] = {"scheme": INITS[init]}
    d["seed"] = base.seed + seed
    return from_dict(d)


# ---------------------------------------------------------------------------------------------
# at initialization


def make_net(width: int, activation: str, init: str, seed: int = 0, dtype=torch.float64) -> nn.Sequential:
    """The paper's 1024-m-m-m-m-m-9 MLP (m = ``width``) with ``init`` ("standard" or "normalized"),
    biases 0, in ``dtype``."""
    from .. import init as I
    from ..models import mlp

    net = mlp([1024] + [width] * HIDDEN + [9], activation=activation).to(dtype)
    I.apply(net, INITS[init], generator=torch.Generator().manual_seed(seed))
    return net


def hidden_layer_names(net: nn.Sequential) -> tuple[list[str], list[str]]:
    """(names of the hidden ``Linear`` layers, names of their activation modules), input first;
    the output layer is left out."""
    linear = [n for n, m in net.named_children() if isinstance(m, nn.Linear)][:-1]
    acts = [n for n, m in net.named_children() if not isinstance(m, nn.Linear)]
    return linear, acts


def _by_layer(records: list, kind: str, names: list) -> list:
    last = {r["layer"]: r for r in records if r["kind"] == kind}
    return [last[n] for n in names]


def init_measurements(
    width: int, examples: int, seed: int = 0, jacobian_examples: int = 8, activations=ACTIVATIONS, device: str = "cpu"
) -> dict:
    """Measurements at initialization on ``examples`` faithful Shapeset-3x2 images (data seed
    ``seed + 7``), per (activation, init):

    - ``activation``: layer-statistics records (mean, std, p98, histogram) of hidden layers 1..5;
    - ``backprop_grad``: of d loss / d a_i at the hidden pre-activations a_1..a_5 (Figure 7);
    - ``weight_grad``: of d loss / d W_i, hidden layers 1..5 (Figure 8);
    - ``jacobian_mean_sv``: mean singular value of dh_i / dh_{i-1}, i = 2..5, over
      ``jacobian_examples`` images (section 4.2.2).

    The loss is the mean negative log-likelihood over the batch; the network is float64."""
    from ..data import shapeset
    from ..diagnostics import layer_jacobian_singular_values, layer_stats
    from ..diagnostics.jacobians import blocks_of

    x, y = shapeset(examples, seed=seed + 7)
    x, y = x.to(device=device, dtype=torch.float64), y.to(device)
    out = {}
    for act in activations:
        for init in INITS:
            net = make_net(width, act, init, seed).to(device)
            linear, acts = hidden_layer_names(net)
            recs = layer_stats(net, x, F.cross_entropy, y)
            blocks = blocks_of(net)
            with torch.no_grad():
                h1 = blocks[0][1](x[:jacobian_examples])  # hidden layer 1's output [k, width]
            spectra = layer_jacobian_singular_values(
                net, h1, examples=jacobian_examples, blocks=blocks[1:HIDDEN], method="exact"
            )
            out[(act, init)] = {
                "activation": _by_layer(recs, "activation", acts),
                "backprop_grad": _by_layer(recs, "backprop_grad", linear),
                "weight_grad": _by_layer(recs, "weight_grad", [f"{n}.weight" for n in linear]),
                "jacobian_mean_sv": [s.mean for s in spectra],
            }
    return out


def ratio(records: list, key: str = "std") -> float:
    """``records[0][key] / records[-1][key]``: layer 1 over layer 5."""
    return records[0][key] / records[-1][key]


def init_claims(m: dict) -> list:
    """The four init-time claims (tanh), decided from :func:`init_measurements`."""
    std, nrm = m[("tanh", "standard")], m[("tanh", "normalized")]
    a_s, a_n = ratio(std["activation"][::-1]), ratio(nrm["activation"][::-1])  # layer 5 / layer 1
    g_s, g_n = ratio(std["backprop_grad"]), ratio(nrm["backprop_grad"])
    w_s = ratio(std["weight_grad"])
    j_s, j_n = statistics.fmean(std["jacobian_mean_sv"]), statistics.fmean(nrm["jacobian_mean_sv"])
    return [
        Claim(
            "tanh at init: with the standard init the activations shrink toward 0 in higher layers; the "
            "normalized init keeps their spread closer to level (Figure 6)",
            f"layer-5 / layer-1 activation std: standard {a_s:.2f}, normalized {a_n:.2f}",
            "standard < 0.5 and normalized > 2 x standard",
            a_s < 0.5 and a_n > 2 * a_s,
            "Figure 6: the 0-peak grows with the layer under the standard init",
        ),
        Claim(
            "tanh at init: back-propagated gradients shrink toward the input with the standard init and stay "
            "about level with the normalized init (Figure 7)",
            f"layer-1 / layer-5 back-propagated gradient std: standard {g_s:.2f}, normalized {g_n:.2f}",
            "standard < 0.5 and normalized > 0.5",
            g_s < 0.5 and g_n > 0.5,
            "Figure 7: variance shrinks toward the input under the standard init",
        ),
        Claim(
            "tanh at init, standard init: the weight gradients do not shrink toward the input even though the "
            "back-propagated gradients do (Figure 8)",
            f"layer-1 / layer-5 weight-gradient std {w_s:.2f} (back-propagated: {g_s:.2f})",
            "weight-gradient ratio in [0.5, 2] and back-propagated ratio < 0.5",
            0.5 <= w_s <= 2 and g_s < 0.5,
            "Figure 8: about the same in every layer",
        ),
        Claim(
            "tanh at init: the mean singular value of the layer-to-layer Jacobians is about 0.8 with the "
            "normalized init and 0.5 with the standard init (section 4.2.2)",
            f"normalized {j_n:.2f}, standard {j_s:.2f} (hidden layers 2-5)",
            "normalized in [0.6, 1.0], standard in [0.35, 0.6]",
            0.6 <= j_n <= 1.0 and 0.35 <= j_s <= 0.6,
            "0.8 vs 0.5",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# training


def activation_curves(diag: list, names: list) -> dict:
    """Per recorded update, the activation statistics of each layer in ``names`` (input first)
    from Monitor records: ``{"step": [t], "mean"|"std"|"p98"|"saturated": [t][layer]}``.

    The last record per layer is used (records from before ``Monitor.paused`` existed could also
    hold evaluation passes' statistics, listed first)."""
    keys = ("mean", "std", "p98", "saturated")
    out: dict[str, list] = {"step": [], **{k: [] for k in keys}}
    for rec in diag:
        last = {r["layer"]: r for r in rec.get("layers", []) if r.get("kind") == "activation"}
        if all(n in last for n in names):
            out["step"].append(rec["step"])
            for k in keys:
                out[k].append([last[n].get(k, float("nan")) for n in names])
    return out


def sigmoid_saturation_claim(curve: dict, band: float = SIGMOID_LOWER_BAND) -> Claim:
    """Figure 2: the sigmoid net's top hidden layer is driven toward 0 during training (in the paper
    into saturation at 0) while the lower layers stay near 0.5. Passes when layer 5's mean falls
    below half its initial value and layers 1-4 stay within 0.5 +- ``band`` at every record."""
    statement = (
        "sigmoid: the top hidden layer's activations are driven toward 0 during training (the paper: "
        "into saturation) while the lower layers stay near 0.5 (Figure 2)"
    )
    paper = "layer 5 falls to about 0 quickly; layers 1-4 stay near 0.5"
    test = f"layer-5 mean falls below 0.5 x its initial mean and layers 1-4 stay within 0.5 +- {band}"
    means = curve["mean"]
    if len(means) < 2:
        return Claim(statement, f"only {len(means)} recorded update(s)", test, False, paper)
    top = [row[-1] for row in means]
    k = min(range(len(top)), key=top.__getitem__)
    half = next((s for s, v in zip(curve["step"], top, strict=False) if v < 0.5 * top[0]), None)
    dev = max(abs(v - 0.5) for row in means for v in row[:-1])
    return Claim(
        statement,
        f"layer-5 mean {top[0]:.3f} at update 0 -> {top[k]:.3f} at update {curve['step'][k]} (below half from "
        f"update {'never' if half is None else half}; saturated fraction, h < 0.01 or h > 0.99: "
        f"{curve['saturated'][k][-1]:.2f}); layers 1-4 at most {dev:.3f} from 0.5",
        test,
        half is not None and dev <= band,
        paper,
    )


def first_saturated_steps(curve: dict, threshold: float = TANH_SATURATED_P98) -> list:
    """Per layer, the first recorded update at which its 98th percentile reaches ``threshold``
    (``None`` if never)."""
    steps = curve["step"]
    n = len(curve["p98"][0]) if curve["p98"] else 0
    return [
        next((s for s, row in zip(steps, curve["p98"], strict=False) if row[i] >= threshold), None) for i in range(n)
    ]


def tanh_saturation_claim(curve: dict, threshold: float = TANH_SATURATED_P98) -> Claim:
    """Figure 3 (top): tanh layers saturate one after another, starting with layer 1. Passes when
    the layers that saturate are layers 1..k with k >= 2, in order (t_1 < t_2 <= ... <= t_k)."""
    t = first_saturated_steps(curve, threshold)
    reached = [i for i, s in enumerate(t) if s is not None]
    k = len(reached)
    ordered = k >= 2 and reached == list(range(k)) and t[0] < t[1] and all(t[i] <= t[i + 1] for i in range(k - 1))
    last_p98 = curve["p98"][-1] if curve["p98"] else []
    return Claim(
        "tanh (standard init): the hidden layers saturate one after another, starting with layer 1 (Figure 3)",
        "first update with p98 >= {:g}: {}; final p98 {}".format(
            threshold,
            ", ".join(f"layer {i + 1}: {'never' if s is None else s}" for i, s in enumerate(t)),
            ", ".join(f"{v:.2f}" for v in last_p98),
        ),
        f"layers 1..k saturate (p98 >= {threshold:g}) in order with k >= 2",
        ordered,
        "layer 1 saturates first, then layer 2, and so on",
    )


def smoothed_error(metrics: list, last: int = 3) -> float | None:
    """Mean test error of the last ``last`` evaluations after update 0 (``None`` if none)."""
    errs = [
        m["test_error"]
        for m in metrics
        if m.get("step", 0) > 0
        and isinstance(m.get("test_error"), (int, float))
        and not isinstance(m.get("test_error"), bool)
    ]
    return statistics.fmean(errs[-last:]) if errs else None


def error_claims(err: dict, n: int) -> list:
    """Table 1's ordering from the test errors ``err[(activation, init)]`` (fractions), each a mean
    over ``n`` test predictions in all; a gap counts when it exceeds two binomial standard errors
    of the difference."""

    def gap_ok(lo: float, hi: float) -> tuple[bool, float]:
        se = math.sqrt(lo * (1 - lo) / n + hi * (1 - hi) / n)
        return hi - lo > 2 * se, 2 * se

    sig = min(err[("sigmoid", i)] for i in INITS)
    others = max(err[(a, i)] for a in ("tanh", "softsign") for i in INITS)
    ts, tn, ss = err[("tanh", "standard")], err[("tanh", "normalized")], err[("softsign", "standard")]
    helps, m1 = gap_ok(tn, ts)
    soft, m2 = gap_ok(ss, ts)
    return [
        Claim(
            "sigmoid networks train worst (Table 1)",
            f"best sigmoid {100 * sig:.1f}% vs worst tanh/softsign {100 * others:.1f}% (chance {100 * CHANCE:.1f}%)",
            "best sigmoid error > worst tanh/softsign error",
            sig > others,
            "sigmoid 82.61% vs 15.60-27.15%",
        ),
        Claim(
            "the normalized init lowers tanh's test error (Table 1)",
            f"standard {100 * ts:.1f}% vs normalized {100 * tn:.1f}% (gap {100 * (ts - tn):.1f} points)",
            f"standard - normalized > 2 standard errors ({100 * m1:.1f} points)",
            helps,
            "27.15% vs 15.60% (gap 11.55 points)",
        ),
        Claim(
            "with the standard init, softsign networks beat tanh networks (Table 1)",
            f"softsign {100 * ss:.1f}% vs tanh {100 * ts:.1f}% (gap {100 * (ts - ss):.1f} points)",
            f"tanh - softsign > 2 standard errors ({100 * m2:.1f} points)",
            soft,
            "16.27% vs 27.15%",
        ),
    ]


# ---------------------------------------------------------------------------------------------


def run(
    quick: bool = True,
    out: Path = Path("runs/reproduce"),
    seeds: int = 1,
    smoke: bool = False,
    device: str = "cpu",
    budget_hours: float | None = None,
) -> PaperResult:
    """Measure at initialization, train the six settings, decide the claims; ``budget_hours``
    (``--full`` only) cuts the updates to fit (:mod:`inertia.reproduce.budget`)."""
    t0 = time.perf_counter()
    mode = mode_name(quick, smoke)
    sizes, cut = apply_budget(SIZES[mode], BUDGET, budget_hours)
    base = get_config(quick, smoke, sizes)
    if device != "cpu":
        base = base.replace(device=device)
    fig_dir = Path(out) / "glorot2010"
    fig_dir.mkdir(parents=True, exist_ok=True)
    res = PaperResult("glorot2010", TITLE, _setting(mode, base, seeds, sizes), cut=cut.note() if cut else "")
    # at initialization first: the training pool takes every core
    at_initialization(res, sizes, fig_dir, seed=base.seed, device=device)
    training = _train(base, seeds, fig_dir, mode, sizes.lrs)
    training_table(res, training)
    res.claims.append(sigmoid_saturation_claim(training.curves[("sigmoid", "standard")]))
    res.claims.append(tanh_saturation_claim(training.curves[("tanh", "standard")]))
    res.claims.extend(error_claims(training.mean_error, base.data["n_test"] * seeds))
    training_figures(res, training, fig_dir)
    res.wall_time_s = time.perf_counter() - t0
    return res


def at_initialization(res: PaperResult, s: Sizes, fig_dir: Path, seed: int, device: str = "cpu") -> None:
    """Figures 6-8 and section 4.2.2: the init-time table, its four claims and two figures."""
    m = init_measurements(
        s.init_width, s.init_examples, seed=seed, jacobian_examples=s.jacobian_examples, device=device
    )
    res.tables[f"at initialization (faithful Shapeset-3x2, width {s.init_width}, {s.init_examples} images)"] = [
        {
            "activation": a,
            "init": i,
            "activation std, layers 1-5": [round(r["std"], 3) for r in v["activation"]],
            "back-prop. gradient std, layer 1 / layer 5": ratio(v["backprop_grad"]),
            "weight-gradient std, layer 1 / layer 5": ratio(v["weight_grad"]),
            "mean Jacobian singular value, layers 2-5": [round(j, 3) for j in v["jacobian_mean_sv"]],
        }
        for (a, i), v in m.items()
    ]
    res.claims.extend(init_claims(m))
    res.figures.append(
        Figure(
            _plot_histograms(m, fig_dir / "histograms_at_init.png"),
            "Glorot & Bengio, Figures 6-8: normalized histograms of tanh activations, "
            "back-propagated gradients and weight gradients per layer at initialization, standard "
            "(left) vs normalized (right) init: with the standard init the activations' 0-peak "
            "grows with the layer and the back-propagated gradients shrink toward the input, "
            "while the weight gradients stay about the same; with the normalized init all are "
            "about level.",
        )
    )
    res.figures.append(
        Figure(
            _plot_jacobians(m, fig_dir / "jacobian_singular_values.png"),
            "Glorot & Bengio, section 4.2.2: mean singular value of each hidden layer-to-layer "
            "Jacobian at initialization, about 0.8 with the normalized init and 0.5 with the "
            "standard init (tanh).",
        )
    )


@dataclass
class Training:
    """What the six settings' training runs measured, per (activation, init): the test errors (one
    per seed; 1.0 for a run that did not complete) and statuses, and seed 0's test-error history
    and activation curves."""

    errors: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    lr: dict = field(default_factory=dict)  # with a grid of rates: the one chosen per setting
    lr_scores: dict = field(default_factory=dict)  # ... and every rate's smoothed test error (seed 0)

    @property
    def mean_error(self) -> dict:
        return {key: statistics.fmean(v) for key, v in self.errors.items()}


def _train(base: Config, seeds: int, fig_dir: Path, mode: str, lrs: tuple = (0.05,)) -> Training:
    """Six settings x seeds in resumable pools. With more than one learning rate (``--full``), as
    the paper tunes it per model: first each setting at every rate of ``lrs`` (seed 0), then the
    other seeds at each setting's best rate (the lowest smoothed test error; a run that did not
    complete scores 100%)."""
    one = len(lrs) == 1
    if one:
        configs = {
            _label(a, i, None, k, True): setting_config(base, a, i, k)
            for a in ACTIVATIONS
            for i in INITS
            for k in range(seeds)
        }
    else:
        configs = {
            _label(a, i, lr, 0, False): setting_config(base, a, i, 0, lr)
            for a in ACTIVATIONS
            for i in INITS
            for lr in lrs
        }
    workers = 1 if mode == "smoke" else None
    first = run_configs(configs, out=fig_dir, name=f"train-{mode}", workers=workers, resume=True)
    trials = {t["overrides"]["label"]: (first, t) for t in first.trials}
    out = Training()
    if not one:
        for a in ACTIVATIONS:
            for i in INITS:
                scores = {lr: _score(*trials[_label(a, i, lr, 0, False)]) for lr in lrs}
                out.lr[(a, i)] = min(lrs, key=scores.__getitem__)
                out.lr_scores[(a, i)] = scores
        if seeds > 1:
            more = {
                _label(a, i, out.lr[(a, i)], k, False): setting_config(base, a, i, k, out.lr[(a, i)])
                for a in ACTIVATIONS
                for i in INITS
                for k in range(1, seeds)
            }
            second = run_configs(more, out=fig_dir, name=f"train-{mode}-seeds", workers=workers, resume=True)
            trials.update({t["overrides"]["label"]: (second, t) for t in second.trials})
    _, act_names = hidden_layer_names(make_net(2, "tanh", "standard"))  # the same module names at any width
    for a in ACTIVATIONS:
        for i in INITS:
            lr = None if one else out.lr[(a, i)]
            for k in range(seeds):
                sweep, t = trials[_label(a, i, lr, k, one)]
                d = sweep.directory / "trials" / t["id"]
                metrics = read_jsonl(d / "metrics.jsonl")
                out.errors.setdefault((a, i), []).append(_error(t, metrics))
                out.status.setdefault((a, i), []).append(t["status"])
                if k == 0:
                    out.history[(a, i)] = [(mm["step"], mm["test_error"]) for mm in metrics if "test_error" in mm]
                    out.curves[(a, i)] = activation_curves(read_jsonl(d / "diagnostics.jsonl"), act_names)
    return out


def _label(activation: str, init: str, lr: float | None, seed: int, one: bool) -> str:
    return f"{activation}|{init}|{seed}" if one else f"{activation}|{init}|{lr}|{seed}"


def _error(t: dict, metrics: list) -> float:
    """A run's smoothed test error; a diverged or failed run scores 100%."""
    e = smoothed_error(metrics) if t["status"] == "completed" else None
    return 1.0 if e is None else e


def _score(sweep, t: dict) -> float:
    """:func:`_error` of a trial read from its folder: what picks a model's rate."""
    return _error(t, read_jsonl(sweep.directory / "trials" / t["id"] / "metrics.jsonl"))


def training_table(res: PaperResult, training: Training) -> None:
    """Table 1: the test error of each setting after training."""
    mean_err, history = training.mean_error, training.history
    res.tables["test error after training (%)"] = [
        {
            "activation": a,
            "init": i,
            "test error (%), mean of the last 3 evaluations": 100 * mean_err[(a, i)],
            "final evaluation (%)": 100 * history[(a, i)][-1][1] if history.get((a, i)) else None,
            "paper (faithful Shapeset, long training)": PAPER_TABLE1.get((a, i)),
            "status": ", ".join(training.status[(a, i)]),
            **(
                {
                    "lr (chosen)": training.lr[(a, i)],
                    "smoothed test error (%) per lr tried": {
                        str(lr): round(100 * e, 2) for lr, e in training.lr_scores[(a, i)].items()
                    },
                }
                if training.lr
                else {}
            ),
        }
        for a in ACTIVATIONS
        for i in INITS
    ]


def training_figures(res: PaperResult, training: Training, fig_dir: Path) -> None:
    """Figures 2-4 (activations along training) and Figure 11 (test error along training)."""
    res.figures.append(
        Figure(
            _plot_activation_curves(training.curves, fig_dir / "activations_over_training.png"),
            "Glorot & Bengio, Figures 2-4 (standard init): top, mean and std (band) of each "
            "hidden layer's activations during training: sigmoid's top hidden layer is driven to "
            "0 while the lower layers stay near 0.5; bottom, the 98th percentiles: tanh's layers "
            "saturate one after another from layer 1 up, softsign's much less.",
        )
    )
    res.figures.append(
        Figure(
            _plot_test_error(training.history, fig_dir / "test_error.png"),
            "Glorot & Bengio, Figure 11 and Table 1: test error during training for the six "
            "settings; sigmoid is worst, and the normalized init helps tanh most.",
        )
    )


def _setting(mode: str, base: Config, seeds: int, sizes: Sizes | None = None) -> str:
    s = sizes or SIZES[mode]
    data = (
        "the easy Shapeset variant (larger white shapes on black; NOT the paper's data)"
        if base.data["name"] == "shapeset_easy"
        else "the faithful Shapeset-3x2"
    )
    return (
        f"{mode}: init-time measurements on the faithful Shapeset-3x2 ({s.init_examples} images, width "
        f"{s.init_width}, Jacobians at {s.jacobian_examples} images); training on {data}, width "
        f"{s.width}, {base.data['n']} training and {base.data['n_test']} test images, SGD "
        + (f"lr {base.optimizer.lr} for every model" if len(s.lrs) == 1 else f"lr chosen per model from {list(s.lrs)}")
        + f", minibatch {base.batch_size}, {base.steps} updates, layer "
        f"statistics on {base.monitor.probe} fixed test images every {base.monitor.every} updates, {seeds} "
        f"seed(s) per setting (paper: width 1000, the faithful data online, lr tuned per model, long training)"
    )


def _density(rec: dict) -> tuple[list, list]:
    """Bin centres and density (count / (total x bin width)) of a layer-statistics histogram, so
    layers whose histograms span different ranges are comparable."""
    lo, hi = rec["hist_range"]
    h = rec["hist"]
    w = (hi - lo) / len(h)
    total = sum(h) or 1
    return [lo + (k + 0.5) * w for k in range(len(h))], [c / (total * w) for c in h]


def _plot_histograms(m: dict, path: Path) -> Path:
    kinds = (
        ("activation", "activation value"),
        ("backprop_grad", "back-propagated gradient d loss / d a"),
        ("weight_grad", "weight gradient d loss / d W"),
    )
    fig, axes = subplots(len(kinds), 2, figsize=(11, 9))
    for col, init in enumerate(INITS):
        v = m[("tanh", init)]
        for row, (kind, label) in enumerate(kinds):
            ax = axes[row][col]
            for li, r in enumerate(v[kind]):
                x, dens = _density(r)
                ax.plot(x, dens, color=f"C{li}", label=f"layer {li + 1}")
            ax.set_title(f"tanh, {init} init")
            ax.set_xlabel(label)
            ax.set_ylabel("density")
            if kind != "activation":
                ax.ticklabel_format(axis="both", style="sci", scilimits=(-2, 2))
            ax.legend(fontsize="x-small")
    return save_figure(fig, path)


def _plot_jacobians(m: dict, path: Path) -> Path:
    fig, ax = subplots(figsize=(7, 4))
    for ci, act in enumerate(ACTIVATIONS):
        for init, ls in zip(INITS, ("--", "-"), strict=False):
            sv = m[(act, init)]["jacobian_mean_sv"]
            ax.plot(range(2, 2 + len(sv)), sv, ls, marker="o", color=f"C{ci}", label=f"{act}, {init}")
    for y in (0.5, 0.8):
        ax.axhline(y, color="grey", lw=0.6, ls=":")
    ax.set_xticks(range(2, 2 + HIDDEN - 1))
    ax.set_xlabel("hidden layer i (Jacobian dh_i / dh_{i-1})")
    ax.set_ylabel("mean singular value")
    ax.set_title("layer Jacobians at init (paper, tanh: 0.8 normalized, 0.5 standard)")
    ax.legend(fontsize="x-small", ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    return save_figure(fig, path)


def _plot_activation_curves(curves: dict, path: Path) -> Path:
    fig, axes = subplots(2, 3, figsize=(15, 7))
    for col, act in enumerate(ACTIVATIONS):
        c = curves.get((act, "standard")) or {"step": []}
        for li in range(HIDDEN if c["step"] else 0):
            mu = [row[li] for row in c["mean"]]
            sd = [row[li] for row in c["std"]]
            axes[0][col].plot(c["step"], mu, color=f"C{li}", label=f"layer {li + 1}")
            axes[0][col].fill_between(
                c["step"],
                [a - b for a, b in zip(mu, sd, strict=False)],
                [a + b for a, b in zip(mu, sd, strict=False)],
                color=f"C{li}",
                alpha=0.1,
            )
            axes[1][col].plot(c["step"], [row[li] for row in c["p98"]], ".-", color=f"C{li}", label=f"layer {li + 1}")
        axes[0][col].set_title(f"{act}, standard init: mean (std band)")
        axes[1][col].set_title(f"{act}, standard init: 98th percentile")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xlabel("update")
            ax.legend(fontsize="x-small")
    return save_figure(fig, path)


def _plot_test_error(history: dict, path: Path) -> Path:
    fig, ax = subplots(figsize=(7, 4))
    for ci, act in enumerate(ACTIVATIONS):
        for init, ls in zip(INITS, ("--", "-"), strict=False):
            h = history.get((act, init)) or []
            ax.plot([s for s, _ in h], [100 * e for _, e in h], ls, marker=".", color=f"C{ci}", label=f"{act}, {init}")
    ax.axhline(100 * CHANCE, color="grey", lw=0.6, ls=":", label="chance")
    ax.set_xlabel("update")
    ax.set_ylabel("test error (%)")
    ax.legend(fontsize="x-small", ncol=2)
    return save_figure(fig, path)


__all__ = [
    "get_config",
    "run",
    "init_measurements",
    "init_claims",
    "activation_curves",
    "sigmoid_saturation_claim",
    "tanh_saturation_claim",
    "first_saturated_steps",
    "error_claims",
    "smoothed_error",
    "make_net",
    "setting_config",
    "TITLE",
    "SIZES",
    "Sizes",
    "Training",
    "at_initialization",
    "training_figures",
    "training_table",
]
