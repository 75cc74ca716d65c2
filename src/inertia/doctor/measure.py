"""What the doctor measures, one function per quantity; each fills part of a :class:`DoctorReport`.

Every measurement leaves the model as it found it (parameters, gradients, buffers, mode, the
global RNG): the forward/backward pass restores gradients and buffers, the trial run trains a deep
copy. A measurement that cannot run on a model raises; the doctor then reports it as skipped.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .. import init as _init
from ..diagnostics import curvature
from ..diagnostics.batches import call, head
from ..diagnostics.jacobians import input_output_jacobian_spectrum, layer_jacobian_singular_values
from ..diagnostics.layers import ACTIVATION_TYPES, LayerStats
from ..diagnostics.products import twice_differentiable
from ..diagnostics.state import preserved
from ..diagnostics.trial import TrialRun, constant_prediction_loss, trial_run
from ..init.fans import rnn_gates
from .report import DoctorReport, LayerDiagnosis, Skipped
from .rules import HIGH_MOMENTUM, TRAINS_BELOW

__all__ = [
    "CURVATURE_BATCH",
    "TRIAL_STEPS",
    "Examination",
    "denormal_share",
    "measure_curvature",
    "measure_forward_backward",
    "measure_jacobians",
    "measure_layers",
    "measure_recurrence",
    "measure_trial",
    "optimizer_hypers",
    "recognize_scheme",
    "stability_bound",
]

CURVATURE_BATCH = 128  # examples for the Hessian quantities (fewer where the time budget needs it)
LAM_MAX_PRODUCTS = 12  # Hessian-vector products lam_max's Lanczos run takes, about (tol 1e-2)
LAM_MAX_ITER = 40  # at most, and no more than fit in half the curvature budget
JACOBIAN_SECONDS = 2.0  # the Jacobians' time budget (input-output, then layer blocks)
JACOBIAN_LANCZOS_STEPS = 12  # Lanczos steps of an estimated block spectrum
TRIAL_STEPS = 150  # updates of the trial run (chosen on the tune half of bench_doctor_verdicts.py)
HOPELESS = 1e4  # a trial stops when its loss exceeds this multiple of the first (or is not finite)
DIVERGED_ABOVE = 10.0  # a trial that ends above this multiple of its first loss diverged
FIX_SEARCH_TRIALS = 3  # the fix search stops starting candidates after this many trials' time caps
FIX_PATIENCE = 20  # a fix's trial stops once this many consecutive losses are below the "trains" line
JACOBIAN_EXAMPLES = 4  # examples whose per-example Jacobians are measured
GATED = (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell)


@dataclass
class Examination:
    """The inputs of one doctor call and what the forward/backward pass recorded."""

    model: nn.Module
    inputs: Any  # a tensor, a tuple of tensors or a dict of them
    targets: torch.Tensor | None
    loss_of: Callable[[Any, Any], torch.Tensor]
    params: list[torch.Tensor]
    modules: dict[str, nn.Module]
    records: dict = field(default_factory=dict)
    dead_units: dict = field(default_factory=dict)
    grad_ratio: dict = field(default_factory=dict)  # weight name -> |grad W|_F / |W|_F
    outputs: torch.Tensor | None = None

    def batch_loss(self, model: nn.Module, n: int | None = None) -> torch.Tensor:
        x = self.inputs if n is None else head(self.inputs, n)
        t = self.targets if (n is None or self.targets is None) else self.targets[:n]
        return self.loss_of(output_tensor(call(model, x)), t)


def batch_tensors(inputs: Any) -> list[torch.Tensor]:
    """Every tensor of the batch."""
    if isinstance(inputs, dict):
        return [t for v in inputs.values() for t in batch_tensors(v)]
    if isinstance(inputs, (tuple, list)):
        return [t for v in inputs for t in batch_tensors(v)]
    return [inputs] if isinstance(inputs, torch.Tensor) else []


def describe(inputs: Any) -> str:
    """The batch's shapes, for messages: ``shape (256, 784)`` or ``{input_ids: (8, 16), ...}``."""
    if isinstance(inputs, torch.Tensor):
        return f"shape {tuple(inputs.shape)}"
    if isinstance(inputs, dict):
        return (
            "{"
            + ", ".join(f"{k}: {tuple(v.shape) if isinstance(v, torch.Tensor) else v!r}" for k, v in inputs.items())
            + "}"
        )
    return "(" + ", ".join(str(tuple(v.shape)) if isinstance(v, torch.Tensor) else repr(v) for v in inputs) + ")"


def output_tensor(out: Any) -> Any:
    """The tensor to take the loss of: the output itself, or an HF-style output's ``logits``."""
    if isinstance(out, torch.Tensor):
        return out
    logits = out.get("logits") if isinstance(out, dict) else getattr(out, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else out


# -- recognizing the init scheme --------------------------------------------------------------
def recognize_scheme(weight: torch.Tensor, fan_in: float, fan_out: float) -> tuple[str, float]:
    """Name the init scheme a weight most likely came from, by its std against the fans (and
    orthogonality / sparsity). Returns (label, std). The std must be within sampling noise of a
    scheme's (three standard errors, at least 10%), else the label is ``custom``; where the fans
    make several schemes alike (Glorot and LeCun when fan_in = fan_out; He with fan_out and
    Glorot on a 7x7 stem) the label names all of them, nearest first."""
    w = weight.detach().float().reshape(weight.shape[0], -1)
    std = float(w.std()) if w.numel() > 1 else 0.0
    if std == 0.0:
        return "zeros", 0.0
    nz = (w != 0).sum(1)
    if float((w == 0).float().mean()) > 0.5 and bool((nz == nz[0]).all()):
        return f"sparse ({int(nz[0])} per unit)", std
    rows, cols = w.shape
    if min(rows, cols) >= 2:
        g = w @ w.T if rows <= cols else w.T @ w
        scale = float(torch.diagonal(g).mean())
        if scale > 0 and float((g / scale - torch.eye(g.shape[0])).abs().max()) < 1e-3:
            return f"orthogonal (gain {math.sqrt(scale):.3g})", std
    candidates = {
        "standard / torch default (U[±1/sqrt(fan_in)])": 1 / math.sqrt(3 * fan_in),
        "normalized (Glorot)": math.sqrt(2 / (fan_in + fan_out)),
        "He": math.sqrt(2 / fan_in),
        "He (fan_out)": math.sqrt(2 / fan_out),  # torchvision's kaiming_normal_(mode="fan_out")
        "LeCun": math.sqrt(1 / fan_in),
    }
    # a std measured on n values is off by about 1/sqrt(2n) relative: three of those, at least 10%
    tol = max(math.log(1.1), 3 / math.sqrt(2 * w.numel()))
    near = sorted((abs(math.log(std / e)), name) for name, e in candidates.items())
    best = near[0][0]
    if best >= tol:
        return f"custom (std {std:.3g} = {std * math.sqrt(fan_in):.3g}/sqrt(fan_in))", std
    # schemes these fans cannot tell apart (equal expected std within 3%): all of them, nearest first
    same = [name for d, name in near if d - best < 0.03 and d < tol]
    return " = ".join(dict.fromkeys(same)), std


def denormal_share(tensors: Any) -> float | None:
    """The share of the nonzero entries of the floating-point ``tensors`` that are denormal
    (0 < |x| < ``torch.finfo(dtype).tiny``); ``None`` when there are none to count."""
    nonzero = denormal = 0
    for t in tensors:
        if t is None or not t.is_floating_point():
            continue
        a = t.detach().abs()
        nz = a != 0
        nonzero += int(nz.sum())
        denormal += int((nz & (a < torch.finfo(t.dtype).tiny)).sum())
    return denormal / nonzero if nonzero else None


def optimizer_hypers(optimizer: Any, lr: float | None, momentum: float | None, nesterov: bool) -> tuple | None:
    """(lr, momentum, nesterov) now, read from the optimizer's first group, or given."""
    if optimizer is not None:
        g = optimizer.param_groups[0]
        step = g.get("step", 0)
        lr_v = g["lr"](step) if callable(g["lr"]) else float(g["lr"])
        mu = g.get("momentum", 0.0)
        mu_v = mu(step) if callable(mu) else float(mu or 0.0)
        return float(lr_v), float(mu_v), bool(g.get("nesterov", False))
    if lr is not None:
        return float(lr), float(momentum or 0.0), bool(nesterov)
    return None


def stability_bound(method: str, momentum: float) -> float:
    """The largest stable lr * lam_max on a quadratic for ``"gd"``, ``"cm"`` or ``"nag"``."""
    if method == "gd" or momentum == 0:
        return 2.0
    if method == "cm":
        return 2.0 * (1 + momentum)
    return 2.0 * (1 + momentum) / (1 + 2 * momentum)


# -- the forward/backward pass ------------------------------------------------------------------
@contextlib.contextmanager
def _hooks(ex: Examination, denormals: dict) -> Iterator[None]:
    calls: dict[str, int] = {}

    def dead_hook(name: str) -> Callable:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:  # units that are zero for every example
            if isinstance(out, torch.Tensor) and out.dim() >= 2:
                k = calls[name] = calls.get(name, 0) + 1  # per call, labelled as LayerStats labels them
                dead_units[name if k == 1 else f"{name}#{k}"] = float((out.detach() == 0).all(0).float().mean())

        return hook

    def denormal_hook(name: str) -> Callable:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                denormals[f"output of {name}"] = denormal_share([out])

        return hook

    dead_units = ex.dead_units
    handles = [
        m.register_forward_hook(dead_hook(n)) for n, m in ex.modules.items() if isinstance(m, (nn.ReLU, nn.ReLU6))
    ]
    handles += [
        m.register_forward_hook(denormal_hook(n))
        for n, m in ex.modules.items()
        if n and next(m.children(), None) is None
    ]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def measure_forward_backward(ex: Examination, report: DoctorReport) -> None:
    """One forward/backward pass with hooks: layer statistics, dead units, denormal floats, the
    loss, and each weight's relative gradient |grad W| / |W|."""
    denormals = {"input": denormal_share(batch_tensors(ex.inputs))}
    with preserved(ex.model, ex.params), _hooks(ex, denormals):
        with LayerStats(ex.model, kinds=LayerStats.KINDS, histograms=False) as ls:
            ex.model.zero_grad(set_to_none=True)
            try:
                out = output_tensor(call(ex.model, ex.inputs))
            except Exception as e:
                raise ValueError(
                    f"model(inputs) failed for inputs of {describe(ex.inputs)}: {type(e).__name__}: {e}"
                ) from None
            if not isinstance(out, torch.Tensor):
                raise ValueError(f"the model returned {type(out).__name__}; doctor needs a tensor output")
            try:
                loss = ex.loss_of(out, ex.targets)
            except Exception as e:
                shapes = f"outputs {tuple(out.shape)}" + (
                    "" if ex.targets is None else f", targets {tuple(ex.targets.shape)} {ex.targets.dtype}"
                )
                raise ValueError(f"the loss failed on {shapes}: {type(e).__name__}: {e}") from None
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise ValueError(f"the loss must be a scalar tensor, got {type(loss).__name__}")
            loss.backward()
            records = ls.collect(0)
        denormals["gradients"] = denormal_share([p.grad for p in ex.params])
        for name, p in ex.model.named_parameters():
            if p.grad is not None and p.dim() >= 2:
                w = float(p.detach().norm())
                ex.grad_ratio[name] = float(p.grad.norm()) / w if w > 0 else math.inf
    ex.outputs = out.detach()
    ex.records = {(r["layer"], r["kind"]): r for r in records}
    report.device = ex.params[0].device.type
    report.loss = float(loss.detach())
    counted = {k: v for k, v in denormals.items() if v is not None}
    if counted:
        report.denormal_where = max(counted, key=lambda k: counted[k])
        report.denormal_share = counted[report.denormal_where]


def _weight(module: nn.Module | None) -> torch.Tensor | None:
    """The module's weight if it has a matrix (or convolution) weight."""
    w = getattr(module, "weight", None)
    return w if isinstance(w, torch.Tensor) and w.dim() >= 2 else None


def _module_name(label: str) -> str:
    """The module of a LayerStats label (``relu#2``: the second call of ``relu`` in the pass)."""
    return label.split("#", 1)[0]


def _weight_layers_in_order(ex: Examination) -> tuple[list[str], dict[str, str]]:
    """The weight layers in forward order, and for each the label of the activation call right
    after it (each call of a shared activation module is its own label, so every layer gets the
    statistics of its own call)."""
    order = list(dict.fromkeys(layer for layer, kind in ex.records if kind in ("activation", "preactivation")))
    weight_layers = [n for n in order if "#" not in n and isinstance(_weight(ex.modules.get(n)), torch.Tensor)]
    act_after: dict[str, str] = {}
    last_w = None
    for n in order:
        if isinstance(ex.modules.get(_module_name(n)), ACTIVATION_TYPES) and last_w is not None:
            act_after.setdefault(last_w, n)
        elif n in weight_layers:
            last_w = n
    return weight_layers, act_after


def measure_layers(ex: Examination, report: DoctorReport) -> None:
    """One row per weight layer, in forward order: fans, std, recognized init, the statistics of
    the activation after it, dead units, back-propagated gradient std and relative gradient."""
    weight_layers, act_after = _weight_layers_in_order(ex)
    for n in weight_layers:
        m, w = ex.modules[n], _weight(ex.modules[n])
        assert w is not None
        fi, fo = _init.fans(m)
        scheme, std = recognize_scheme(w, fi, fo)
        row = LayerDiagnosis(n, tuple(w.shape), fi, fo, std, scheme)
        a = ex.records.get((act_after.get(n), "activation")) or ex.records.get((n, "preactivation"))
        if a:
            row.activation = type(ex.modules[_module_name(act_after[n])]).__name__ if n in act_after else None
            row.act_mean, row.act_std = a["mean"], a["std"]
            row.saturated = a.get("saturated")
            row.dead = ex.dead_units.get(act_after.get(n, ""))
        g = ex.records.get((n, "backprop_grad"))
        if g:
            row.backprop_std = g["std"]
        row.grad_ratio = ex.grad_ratio.get(f"{n}.weight" if n else "weight")
        report.layers.append(row)


def measure_recurrence(ex: Examination, report: DoctorReport) -> None:
    """The spectral radius of each recurrent weight (per gate for torch's gated RNNs)."""
    for pname, p in ex.model.named_parameters():
        if "weight_hh" not in pname or p.dim() != 2:
            continue
        mod = ex.modules.get(pname.rsplit(".", 1)[0], ex.model) if "." in pname else ex.model
        blocks = [p.detach()]
        with contextlib.suppress(ValueError):  # not a gated torch RNN (e.g. inertia's TanhRNN): one matrix
            blocks = list(p.detach().chunk(rnn_gates(mod), 0))
        radius = max(_init.spectral_radius(b) for b in blocks if b.shape[0] == b.shape[1])
        report.layers.append(
            LayerDiagnosis(
                pname,
                tuple(p.shape),
                scheme=recognize_scheme(p, p.shape[1], p.shape[0] // len(blocks))[0],
                std=float(p.detach().std()),
                spectral_radius=radius,
                gated=isinstance(mod, GATED),
            )
        )


def measure_jacobians(ex: Examination, report: DoctorReport) -> None:
    """Layer-Jacobian singular values (the blocks of any model, from the embedding output on for
    token models; estimated above ``MAX_ENTRIES`` entries per example) and the input-output
    condition number (floating-point tensor inputs only), together within ``JACOBIAN_SECONDS``:
    the input-output Jacobian first, then the layers in what is left (at least half of it)."""
    start = time.perf_counter()
    if isinstance(ex.inputs, torch.Tensor) and ex.inputs.is_floating_point():
        io_spec = input_output_jacobian_spectrum(ex.model, ex.inputs, examples=JACOBIAN_EXAMPLES)
        report.input_output_condition = io_spec.condition_number
        report.input_output_method = io_spec.method
    else:
        report.skipped.append(Skipped("input-output Jacobian", "the inputs are integer tokens or a tuple/dict batch"))
    left = max(JACOBIAN_SECONDS - (time.perf_counter() - start), JACOBIAN_SECONDS / 2)
    spectra = layer_jacobian_singular_values(
        ex.model, ex.inputs, examples=JACOBIAN_EXAMPLES, lanczos_steps=JACOBIAN_LANCZOS_STEPS, seconds=left
    )
    if spectra.skipped:
        why = f"over the Jacobian time budget ({JACOBIAN_SECONDS:g} s): {', '.join(spectra.skipped)}"
        report.skipped.append(Skipped(f"Jacobian of {len(spectra.skipped)} block(s)", why))
    rows = {r.name: r for r in report.layers}
    for spec in spectra:
        row = rows.get(spec.name)
        if row is not None:
            row.jacobian_mean, row.jacobian_std = spec.mean, spec.std
    report.jacobian_blocks = {
        s.name: {"mean": s.mean, "std": s.std, "max": s.max, "method": s.method, "shape": list(s.shape or ())}
        for s in spectra
    }


def _curvature_batch(ex: Examination, seconds: float | None) -> tuple[int, int, int]:
    """The examples for the curvature checks, how many they could have been, and how many
    Hessian-vector products lam_max's Lanczos run may take: :data:`CURVATURE_BATCH` examples (or
    all the batch has), fewer when one forward/backward pass on them says
    :data:`LAM_MAX_PRODUCTS` products (each about 3 passes) would take more than ``seconds / 2``;
    then as many products as fit in ``seconds / 2`` at that cost, between
    :data:`LAM_MAX_PRODUCTS` and :data:`LAM_MAX_ITER`."""
    first = next((t for t in _tensors(ex.inputs) if t.dim() > 0), None)
    n = min(CURVATURE_BATCH, first.shape[0]) if first is not None else CURVATURE_BATCH
    if seconds is None or first is None or n <= 2:
        return n, n, LAM_MAX_ITER
    t0 = time.perf_counter()
    torch.autograd.grad(ex.batch_loss(ex.model, n), ex.params, allow_unused=True)
    product = 3 * (time.perf_counter() - t0)  # one Hessian-vector product on the n examples
    used = (
        n if LAM_MAX_PRODUCTS * product <= seconds / 2 else max(2, int(n * seconds / 2 / (LAM_MAX_PRODUCTS * product)))
    )
    fits = int(seconds / 2 / max(product * used / n, 1e-12))
    return used, n, min(LAM_MAX_ITER, max(LAM_MAX_PRODUCTS, fits))


def _tensors(batch: Any) -> list[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        return [batch]
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else []
    return [t for t in values if isinstance(t, torch.Tensor)]


def measure_curvature(
    ex: Examination, report: DoctorReport, hypers: tuple | None, seed: int, seconds: float | None = None
) -> None:
    """lam_max and the quadratic bound, then per-layer Hessian Frobenius norms (Temperoni et al.
    2020) while ``seconds`` of wall clock last (no layer is started that, as long as the last one,
    would end past them; None: no limit); the layers left without one are
    listed in ``report.skipped`` (the norms are shown, no rule reads them).

    With a budget, the examples are cut so that lam_max's Lanczos run (about
    :data:`LAM_MAX_PRODUCTS` Hessian-vector products, each about 3 forward/backward passes) fits in
    half of it; ``report.curvature_batch`` says how many were used."""
    start = time.perf_counter()
    with preserved(ex.model, ex.params), twice_differentiable():
        n, full, max_iter = _curvature_batch(ex, seconds)
        report.curvature_batch = n
        if n < full:
            report.curvature_note = (
                f"lam_max and the Hessian norms on {n} examples of {full} (cut to fit curvature_seconds={seconds:g})"
            )
        closure = lambda: ex.batch_loss(ex.model, n)  # noqa: E731
        gen = torch.Generator().manual_seed(seed)
        last = 0.0  # the forecast of the next layer's Hessian norm: the last one's time
        try:
            t0 = time.perf_counter()
            eig = curvature.hessian_eigenvalues(
                closure, ex.params, k=1, which="largest_magnitude", tol=1e-2, max_iter=max_iter, generator=gen
            )
            report.lam_max = abs(float(eig.values[0]))
            # before the first layer: its 3 probes, each a product at most as costly as lam_max's
            last = 3 * (time.perf_counter() - t0) / max(eig.num_hvps, 1)
        except ValueError as e:  # curvature overflows: reported through the non-finite findings
            if "non-finite" not in str(e):
                raise  # e.g. no second derivative: the curvature check is skipped, with why
            report.lam_max = None
        left = []
        for row in report.layers:
            w = _weight(ex.modules.get(row.name))
            if w is None or not w.requires_grad:
                continue
            if seconds is not None and time.perf_counter() - start + last > seconds:  # it would end past it
                left.append(row.name)
                continue
            t0 = time.perf_counter()
            row.hessian_norm = curvature.hessian_frobenius_norm(closure, [w], probes=3, generator=gen).value
            last = time.perf_counter() - t0
        if left:
            why = f"over the curvature time budget ({seconds:g} s, curvature_seconds=): {', '.join(left)}"
            report.skipped.append(Skipped(f"Hessian norm of {len(left)} layer(s)", why))
    if hypers is not None and report.lam_max is not None:
        lr_v, mu_v, nes = hypers
        method = "gd" if mu_v == 0 else ("nag" if nes else "cm")
        bound = stability_bound(method, mu_v)
        report.stability = {
            "method": method,
            "lr": lr_v,
            "momentum": mu_v,
            "lam_max": report.lam_max,
            "bound": bound,
            "max_stable_lr": bound / max(report.lam_max, 1e-300),
        }


def _trial(
    ex: Examination, optimizer: Any, hypers: tuple, steps: int, seconds: float, overrides=None, stop_below=None
) -> TrialRun:
    """One trial run; diverged when it stopped on a hopeless loss (non-finite or above
    :data:`HOPELESS` x the first) or ended above :data:`DIVERGED_ABOVE` x the first. Judging at the
    end, not at the first spike, lets a run through the early "catapult" (the loss jumps, the
    sharpness falls, the loss comes back down; Lewkowycz et al. 2020)."""
    lr, mu, nesterov = hypers
    run = trial_run(
        ex.model,
        ex.batch_loss,
        optimizer,
        lr=None if optimizer is not None else lr,
        momentum=mu,
        nesterov=nesterov,
        steps=steps,
        blowup=HOPELESS,
        max_seconds=seconds,
        overrides=overrides,
        stop_below=stop_below,
        patience=FIX_PATIENCE,
    )
    if not run.diverged and run.initial > 0 and run.final > DIVERGED_ABOVE * run.initial:
        run.diverged = True
    return run


def _trains(run: TrialRun, reference: float) -> bool:
    """The trial trains: it ran to its end and its last loss is below TRAINS_BELOW x the reference."""
    return not run.diverged and not run.out_of_time and run.final < TRAINS_BELOW * reference


def _fix_candidates(
    lr: float, mu: float, diverged: bool, max_stable_lr: float | None, rose: bool = False
) -> list[dict[str, float]]:
    """The hyperparameters a fix may propose, in the order they are tried. After a divergence:
    lr / 10 (or the quadratic bound's rate when smaller), then lr / 100 and lr / 1000 (at high
    momentum, first lr itself with momentum 0.9). After a stall: half the quadratic bound's rate
    when that is larger than lr (the rule of the tune half before fixes were measured), then
    lr x 10, lr / 10 (a stall is as often an oscillation at too large a rate), lr x 100 and
    lr / 100; when the stalled trial's loss ``rose`` above its first value (on a fixed batch, the
    sign of a step too large for the curvature), the smaller rate of each pair first. Momentum
    goes back to 0.9 where it was at least HIGH_MOMENTUM."""
    if diverged:
        first = lr / 10 if max_stable_lr is None else min(lr / 10, max_stable_lr)
        rates = [first, lr / 100, lr / 1000]
        if mu >= HIGH_MOMENTUM:  # tune half: at mu >= 0.99 momentum 0.9 alone often stops it
            rates.insert(0, lr)
    else:
        rates = [0.5 * max_stable_lr] if max_stable_lr is not None and 0.5 * max_stable_lr > lr else []
        rates += [lr / 10, lr * 10, lr / 100, lr * 100] if rose else [lr * 10, lr / 10, lr * 100, lr / 100]
    extra = {"momentum": 0.9} if mu >= HIGH_MOMENTUM else {}
    out: list[dict[str, float]] = []
    for r in rates:
        cand = {"lr": float(f"{r:.3g}"), **extra}
        if cand not in out:
            out.append(cand)
    return out


def measure_trial(
    ex: Examination, report: DoctorReport, optimizer: Any, hypers: tuple, steps: int, seconds: float
) -> None:
    """A trial run of the user's optimizer on a copy (``diagnostics.trial``), and the loss a
    constant prediction reaches, its yardstick. When it does not train, the fix is measured too:
    the candidates of :func:`_fix_candidates` are tried on fresh copies, each as long as the trial
    (or until FIX_PATIENCE consecutive losses are below the "trains" line),
    until one trains; ``report.trial["fix"]`` holds the first that does (None when none does) and
    ``"fixes_tried"`` every candidate with its last loss."""
    run = _trial(ex, optimizer, hypers, steps, seconds)
    assert ex.outputs is not None
    const = constant_prediction_loss(ex.outputs, None, lambda out: ex.loss_of(out, ex.targets))
    reference = min(run.initial, const) if math.isfinite(run.initial) else const  # every copy starts at run.initial
    report.trial = {
        "steps": steps,
        "steps_run": run.steps_run,
        "losses": run.losses,
        "diverged": run.diverged,
        "out_of_time": run.out_of_time,
        "constant_loss": const,
        "reference": reference,
        "fix": None,
        "fixes_tried": [],
    }
    if _trains(run, reference) or (run.out_of_time and not run.diverged):
        return
    stable = report.stability["max_stable_lr"] if report.stability is not None else None
    start = time.perf_counter()
    rose = max(run.losses) > run.initial
    for cand in _fix_candidates(hypers[0], hypers[1], run.diverged, stable, rose):
        if time.perf_counter() - start > FIX_SEARCH_TRIALS * seconds:  # the search's time cap
            break
        tried = _trial(ex, optimizer, hypers, steps, seconds, overrides=cand, stop_below=TRAINS_BELOW * reference)
        report.trial["fixes_tried"].append(
            {**cand, "final": tried.final, "diverged": tried.diverged, "steps_run": tried.steps_run}
        )
        if _trains(tried, reference):
            report.trial["fix"] = cand
            return
