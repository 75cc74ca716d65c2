"""The doctor's rules: each a registered :class:`Rule` with the quantities it reads, its threshold,
what justifies it, and the fix it proposes (in the style of the Monitor's registered quantities).

A rule reads the :class:`DoctorReport` the measurements filled; when a quantity it needs is missing
(its measurement was skipped, or the model has no such layer) the rule is reported as skipped, with
why. Thresholds marked "benchmark" were chosen on the ``tune`` half of
``benchmarks/bench_doctor_verdicts.py``; docs/doctor.md reports the held-out half.

Evidence from training beats evidence from the model at initialization: when the trial run (a copy
trained for :data:`TRIAL_STEPS` updates with the user's optimizer) trains, the other rules' errors
and warnings become ``info`` (they describe the model, but do not stop it training); when it
diverges, ``unstable_lr`` is an error; when it stays, ``no_progress`` says so and the rules that
explain why keep their severity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .._registry import Registry
from ..diagnostics.layers import ACTIVATION_TYPES
from .report import SEVERITY, DoctorReport, Finding, LayerDiagnosis, Skipped

__all__ = [
    "DENORMAL_SHARE",
    "RULES",
    "TRAINS_BELOW",
    "Rule",
    "RuleContext",
    "run_rules",
    "trial_trains",
]

DENORMAL_SHARE = 1e-4  # a share of denormal entries (input, activations or gradients) worth a warning on a CPU
TRAINS_BELOW = 0.8  # benchmark: the trial trains when its last loss is below 0.8 x min(first, constant-prediction loss)
APPLY_FIX = "inertia.init.apply(model, {!r})"
HIGH_MOMENTUM = 0.99


@dataclass
class RuleContext:
    """What rules read besides the report: the model's modules and the optimizer's hyperparameters."""

    modules: dict[str, nn.Module]
    hypers: tuple | None  # (lr, momentum, nesterov)

    @property
    def activation_kinds(self) -> set[str]:
        return {type(m).__name__ for m in self.modules.values() if isinstance(m, ACTIVATION_TYPES)}

    @property
    def init_fix(self) -> str:
        """The fix for a bad signal at init: the right init, and tanh units instead of sigmoids
        (Glorot & Bengio 2010: deep sigmoid nets train badly with either init)."""
        fix = APPLY_FIX.format(self.good_init)
        if "Sigmoid" in self.activation_kinds:
            return "inertia.models.replace_modules(model, torch.nn.Sigmoid, torch.nn.Tanh); " + fix
        return fix

    @property
    def good_init(self) -> str:
        return "he_normal" if self.activation_kinds & {"ReLU", "LeakyReLU", "ReLU6"} else "glorot_uniform"


@dataclass(frozen=True)
class Rule:
    """``name`` (the finding code), ``reads`` (report fields it needs), ``threshold`` and
    ``justification`` (for the docs), ``check(report, context) -> list[Finding]``."""

    name: str
    reads: tuple[str, ...]
    threshold: str
    justification: str
    check: Callable[[DoctorReport, RuleContext], list[Finding]]

    def missing(self, report: DoctorReport) -> str | None:
        for q in self.reads:
            if q == "layers":
                if not any(r.spectral_radius is None for r in report.layers):
                    return "no weight layer was found"
            elif q == "recurrence":
                if not any(r.spectral_radius is not None for r in report.layers):
                    return None  # a feed-forward model: nothing to check, not a skip
            elif getattr(report, q) is None:
                return f"{q} was not measured"
        return None


RULES: Registry[Rule] = Registry("doctor rule")


def rule(name: str, reads: tuple[str, ...], threshold: str, justification: str) -> Callable:
    def register(fn: Callable[[DoctorReport, RuleContext], list[Finding]]) -> Callable:
        RULES.register(name, Rule(name, reads, threshold, justification, fn))
        return fn

    return register


def _weights(report: DoctorReport) -> list[LayerDiagnosis]:
    return [r for r in report.layers if r.spectral_radius is None]


def _hypers_fix(overrides: dict[str, float]) -> str:
    """The pasteable fix that sets ``overrides`` in every parameter group."""
    return "for g in optimizer.param_groups: " + "; ".join(f'g["{k}"] = {v:.3g}' for k, v in overrides.items())


def _lr_fix(lr: float) -> str:
    return _hypers_fix({"lr": lr})


def _measured(t: dict) -> str:
    """What the trial of the proposed fix showed (``measure_trial``'s fix search)."""
    fix = t.get("fix")
    tried = t.get("fixes_tried") or []
    if fix is None:
        if not tried:
            return ""
        return f"; none of {len(tried)} other settings tried on a copy trained either"
    last = tried[-1]  # the search stops at the first candidate that trains
    what = ", ".join(f"{k} {v:.3g}" for k, v in fix.items())
    return f"; with {what} a trial on a copy trains (loss {t['losses'][0]:.4g} -> {last['final']:.4g})"


def trial_trains(report: DoctorReport) -> bool | None:
    """True / False when the trial run trained / did not; None without a complete trial."""
    t = report.trial
    if t is None or t["out_of_time"] and not t["diverged"]:
        return None
    if t["diverged"]:
        return False
    return bool(t["losses"][-1] < TRAINS_BELOW * t["reference"])


# -- the signal at initialization (Glorot & Bengio 2010; He et al. 2015) -------------------------
@rule("non_finite_loss", ("loss",), "the loss at init is inf or NaN", "Glorot & Bengio 2010, sec. 4.2")
def _non_finite(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    if report.loss is not None and math.isfinite(report.loss):
        return []
    return [
        Finding(
            "error",
            "non_finite_loss",
            f"the loss at initialization is {report.loss}: activations overflow",
            APPLY_FIX.format(ctx.good_init) + "  # or a smaller init scale",
            "Glorot & Bengio 2010, sec. 4.2",
            None,
            float("inf"),
        )
    ]


@rule(
    "vanishing_activations",
    ("layers",),
    "activation std of the last hidden layer < 0.01 x the first's (or > 100 x: exploding_activations)",
    "Glorot & Bengio 2010, sec. 4.2 (Figure 6); He et al. 2015",
)
def _activations(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    acts = [r for r in _weights(report) if r.act_std is not None]
    if len(acts) < 3:
        return []
    first, last = acts[0].act_std, acts[-2].act_std  # last hidden layer (the output is not an activation)
    assert first is not None and last is not None
    ratio = last / max(first, 1e-30)
    fix = ctx.init_fix
    if ratio < 0.01:
        msg = (
            f"activation std falls from {first:.3g} ({acts[0].name}) to {last:.3g} ({acts[-2].name}): "
            f"the signal vanishes with depth (x{ratio:.2g})"
        )
        reason = "Glorot & Bengio 2010, sec. 4.2; He et al. 2015"
        return [Finding("error", "vanishing_activations", msg, fix, reason, acts[-2].name, 10 - math.log10(ratio))]
    if ratio > 100:
        msg = f"activation std grows from {first:.3g} to {last:.3g} with depth (x{ratio:.3g})"
        reason = "Glorot & Bengio 2010, sec. 4.2"
        return [Finding("error", "exploding_activations", msg, fix, reason, acts[-2].name, 10 + math.log10(ratio))]
    return []


GRADIENT_RATIO = 0.01  # benchmark: first / last relative weight gradient below this is vanishing


@rule(
    "vanishing_gradients",
    ("layers",),
    f"|grad W|/|W| of the first weight layer < {GRADIENT_RATIO} x the last's (> 1/{GRADIENT_RATIO}: exploding)",
    "Glorot & Bengio 2010, sec. 4.2.2 (Figure 7), on a scale-free quantity: the relative step per unit lr",
)
def _gradients(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    rows = [r for r in _weights(report) if r.grad_ratio is not None and math.isfinite(r.grad_ratio)]
    if len(rows) < 3:
        return []
    bottom, top = rows[0], rows[-1]
    assert bottom.grad_ratio is not None and top.grad_ratio is not None
    ratio = bottom.grad_ratio / max(top.grad_ratio, 1e-300)
    fix = ctx.init_fix
    if ratio < GRADIENT_RATIO:
        msg = (
            f"the relative weight gradient |grad W|/|W| falls from {top.grad_ratio:.3g} at the top ({top.name}) to "
            f"{bottom.grad_ratio:.3g} at the first layer ({bottom.name}) (x{ratio:.2g}): lower layers will barely learn"
        )
        reason = "Glorot & Bengio 2010, sec. 4.2.2 (Figure 7)"
        return [Finding("error", "vanishing_gradients", msg, fix, reason, bottom.name, -math.log10(max(ratio, 1e-300)))]
    if ratio > 1 / GRADIENT_RATIO:
        msg = (
            f"the relative weight gradient |grad W|/|W| grows from {top.grad_ratio:.3g} at the top to "
            f"{bottom.grad_ratio:.3g} at the first layer (x{ratio:.3g})"
        )
        reason = "Glorot & Bengio 2010, sec. 4.2.2"
        return [Finding("error", "exploding_gradients", msg, fix, reason, bottom.name, math.log10(ratio))]
    return []


@rule(
    "zero_weights", ("layers",), "a weight layer whose entries are all zero", "symmetry: every unit gets one gradient"
)
def _zero_weights(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    zero = [r for r in report.layers if r.std == 0.0 and r.scheme == "zeros"]
    if not zero:
        return []
    names = ", ".join(r.name for r in zero[:4]) + (" ..." if len(zero) > 4 else "")
    msg = f"{len(zero)} weight tensor(s) are all zero ({names}): their units stay identical and gradients vanish"
    fix = APPLY_FIX.format(ctx.good_init)
    return [Finding("error", "zero_weights", msg, fix, "symmetry breaking needs random init", zero[0].name, 20.0)]


@rule(
    "saturation",
    ("layers",),
    "> 30% of sigmoid/tanh/softsign units saturated, > 30% of ReLUs dead for the whole batch",
    "Glorot & Bengio 2010, sec. 3; He et al. 2015",
)
def _saturation(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    out = []
    for r in _weights(report):
        if r.saturated is not None and r.saturated > 0.3:
            msg = f"{100 * r.saturated:.0f}% of {r.activation} units after {r.name} are saturated at init"
            fix = APPLY_FIX.format("glorot_uniform")
            out.append(Finding("warning", "saturation", msg, fix, "Glorot & Bengio 2010, sec. 3", r.name, r.saturated))
        if r.dead is not None and r.dead > 0.3:
            msg = f"{100 * r.dead:.0f}% of ReLU units after {r.name} are zero for every example of the batch"
            fix = "inertia.init.apply(model, 'he_normal', bias=0.0)"
            out.append(Finding("warning", "dead_units", msg, fix, "He et al. 2015", r.name, r.dead))
    return out


@rule(
    "sigmoid_top_saturation",
    ("layers",),
    "sigmoid hidden units in a net of >= 4 weight layers",
    "Glorot & Bengio 2010, sec. 3.1 (Figure 2)",
)
def _sigmoid_top(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    acts = [r for r in _weights(report) if r.act_std is not None]
    if "Sigmoid" not in ctx.activation_kinds or len(acts) < 4:
        return []
    top = acts[-2]
    msg = (
        f"sigmoid hidden units have mean {top.act_mean:.2g} (not zero-centred): in deep sigmoid nets the top hidden "
        "layer is driven to saturation at 0 early in training"
    )
    fix = (
        "inertia.models.replace_modules(model, torch.nn.Sigmoid, torch.nn.Tanh); "
        "inertia.init.apply(model, 'glorot_uniform')"
    )
    return [Finding("warning", "sigmoid_top_saturation", msg, fix, "Glorot & Bengio 2010, sec. 3.1", top.name, 1.0)]


# -- Jacobians (Hu, Xiao & Pennington 2020) -------------------------------------------------------
CONDITION_LIMIT = 1e3


@rule(
    "ill_conditioned_jacobian",
    ("input_output_condition",),
    f"input-output Jacobian condition number > {CONDITION_LIMIT:g}",
    "Hu, Xiao & Pennington 2020 (orthogonal init needs width independent of depth)",
)
def _jacobian(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    cond = report.input_output_condition
    if cond is None or not cond > CONDITION_LIMIT:
        return []
    spread = [r.jacobian_std / r.jacobian_mean for r in _weights(report) if r.jacobian_mean and r.jacobian_std]
    msg = (
        f"input-output Jacobian condition number {cond:.3g}: singular values spread over "
        f"{math.log10(cond):.1f} orders of magnitude"
        + (f" (layer Jacobians: std/mean {max(spread):.2g})" if spread else "")
    )
    reason = "Hu, Xiao & Pennington 2020 (orthogonal init needs width independent of depth)"
    return [
        Finding(
            "error", "ill_conditioned_jacobian", msg, APPLY_FIX.format("orthogonal"), reason, None, math.log10(cond)
        )
    ]


# -- recurrence (Sutskever et al. 2013) -----------------------------------------------------------
def _echo_state_fix(rows: list[LayerDiagnosis]) -> str:
    calls = [
        f"inertia.init.echo_state_(model.get_parameter({r.name!r}), spectral_radius=1.1, fan_in={min(15, r.shape[1])})"
        for r in rows
    ]
    return "; ".join(calls)


@rule(
    "exploding_recurrence",
    ("recurrence",),
    "spectral radius of a plain (ungated) recurrent weight > 1.5; < 0.5: vanishing_recurrence",
    "Sutskever et al. 2013, sec. 4 (echo-state init, radius 1.1); gated cells (LSTM, GRU) bound their state",
)
def _recurrence(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    out = []
    for r in report.layers:
        if r.spectral_radius is None:
            continue
        if r.spectral_radius > 1.5 and not r.gated:
            msg = (
                f"spectral radius of {r.name} is {r.spectral_radius:.3g}: the hidden state of this tanh recurrence and "
                "its gradients grow with every step"
            )
            reason = "Sutskever et al. 2013, sec. 4 (echo-state init, radius 1.1)"
            out.append(
                Finding("error", "exploding_recurrence", msg, _echo_state_fix([r]), reason, r.name, r.spectral_radius)
            )
        elif r.spectral_radius < 0.5:
            msg = f"spectral radius of {r.name} is {r.spectral_radius:.3g}: memory fades within a few steps"
            score = 1 / max(r.spectral_radius, 1e-6)
            out.append(
                Finding(
                    "warning",
                    "vanishing_recurrence",
                    msg,
                    _echo_state_fix([r]),
                    "Sutskever et al. 2013, sec. 4",
                    r.name,
                    score,
                )
            )
    return out


# -- the step size: what the trial run shows ------------------------------------------------------
@rule(
    "unstable_lr",
    ("trial",),
    "the trial run's loss becomes non-finite or exceeds 10 x its first value",
    "a trial run of the user's optimizer on a copy (the quadratic bound at init is reported, not used)",
)
def _unstable(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    t = report.trial
    assert t is not None and ctx.hypers is not None
    if not t["diverged"]:
        return []
    lr, mu = ctx.hypers[0], ctx.hypers[1]
    suggested = lr / 10
    if report.stability is not None:
        suggested = min(suggested, report.stability["max_stable_lr"])
    fix = _lr_fix(suggested)
    if mu >= HIGH_MOMENTUM:  # benchmark (tune half): at mu >= 0.99 a smaller lr alone does not stop it
        fix = _hypers_fix({"momentum": 0.9})
    if t.get("fix"):
        fix = _hypers_fix(t["fix"])
    msg = (
        f"training diverges: in a trial run of {t['steps_run']} update(s) with lr {lr:.3g} "
        f"(momentum {ctx.hypers[1]:.3g}{', Nesterov' if ctx.hypers[2] else ''}) the loss went from "
        f"{t['losses'][0]:.4g} to {t['losses'][-1]:.4g}" + _measured(t)
    )
    return [Finding("error", "unstable_lr", msg, fix, "trial run on a copy of the model", None, 5.0)]


@rule(
    "no_progress",
    ("trial",),
    f"after the trial's updates the loss is above {TRAINS_BELOW} x min(first loss, constant-prediction loss)",
    "a trial run of the user's optimizer on a copy; threshold from the benchmark's tune half",
)
def _no_progress(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    t = report.trial
    assert t is not None and ctx.hypers is not None
    if t["diverged"] or trial_trains(report) is not False:
        return []
    lr, mu, _ = ctx.hypers
    first, last = t["losses"][0], t["losses"][-1]
    msg = (
        f"the loss barely falls: {first:.4g} -> {last:.4g} in a trial run of {t['steps_run']} updates "
        f"(a constant prediction reaches {t['constant_loss']:.4g})"
    )
    if t.get("fix"):
        fix, score = _hypers_fix(t["fix"]), 1.0
    else:  # no candidate trained: a larger lr, unmeasured; a finding about the model itself ranks first
        s = report.stability
        setting = {"lr": max(0.5 * s["max_stable_lr"] if s is not None else 10 * lr, 10 * lr)}
        msg += f"; lr {lr:.3g} may be too small"
        if mu >= HIGH_MOMENTUM:
            setting["momentum"] = 0.9
            msg += f", and momentum {mu:.3g} carries the iterates past the minimum"
        fix, score = _hypers_fix(setting), 0.0
    msg += _measured(t)
    return [Finding("warning", "no_progress", msg, fix, "trial run on a copy of the model", None, score)]


@rule(
    "momentum_beyond_trial",
    ("trial",),
    "momentum mu with a time scale 1 / (1 - mu) longer than the trial's updates (mu > 0.993 at 150)",
    "a trial sees a momentum only over several of its time scales; Sutskever et al. 2013 reach mu 0.999 by a slowly "
    "rising schedule; benchmark tune half: every case at a constant mu of 0.999 fails within 300 updates (4 of 4)",
)
def _momentum_beyond_trial(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    t = report.trial
    assert t is not None and ctx.hypers is not None
    mu = ctx.hypers[1]
    steps = t["steps"]  # the trial's planned length: one cut short by its time cap is not held against mu
    if t["diverged"] or mu <= 0 or steps <= 0 or mu >= 1 or 1 / (1 - mu) <= steps:
        return []
    horizon = 1 / (1 - mu)
    msg = (
        f"momentum {mu:.4g} averages the gradients of about the last {horizon:.0f} updates, longer than the "
        f"trial's {steps}: the trial cannot show whether it stays stable, and a constant momentum this high "
        "often diverges or stalls later (Sutskever et al. 2013 reach 0.999 through a slowly rising schedule)"
    )
    fix = _hypers_fix({"momentum": 0.99})
    score = 0.5 if t.get("fix") else horizon / steps  # a fix measured by the trial ranks first
    return [Finding("warning", "momentum_beyond_trial", msg, fix, "momentum time scale vs the trial", None, score)]


@rule(
    "sharp_at_init",
    ("stability",),
    "lr * lam_max above the quadratic bound 2 (1 + mu) / (1 + 2 mu) (NAG) at init: info only",
    "quadratic model; Sutskever et al. 2013, sec. 2.1; the sharpness falls early in training (Lewkowycz et al. 2020)",
)
def _sharp(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    s = report.stability
    assert s is not None
    if s["lr"] * s["lam_max"] < s["bound"]:
        return []
    msg = (
        f"lr * lam_max = {s['lr'] * s['lam_max']:.3g} exceeds the quadratic bound {s['bound']:.3g} at init; networks "
        "often train past it (the sharpness falls early), which the trial run checks"
    )
    return [Finding("info", "sharp_at_init", msg, _lr_fix(0.9 * s["max_stable_lr"]), "quadratic model", None, 0.0)]


@rule(
    "denormal_floats",
    ("denormal_share",),
    f"a share >= {DENORMAL_SHARE:g} of denormal floats in the input, an activation or the gradients (CPU)",
    "benchmarks/bench_denormal.py (an update of the CURVES autoencoder 9x slower)",
)
def _denormal(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    d = report.denormal_share
    if d is None or d < DENORMAL_SHARE:
        return []
    on_cpu = report.device == "cpu"
    msg = (
        f"{100 * d:.2g}% of the nonzero entries of the {report.denormal_where} are denormal floats "
        f"(below {torch.finfo(torch.float32).tiny:.2g} in float32)"
        + (
            ": on an x86 CPU each one sends the matrix products that read it down a slow path "
            "(an update of the CURVES autoencoder 9x slower, benchmarks/bench_denormal.py)"
            if on_cpu
            else ""
        )
    )
    fix = (
        "torch.set_flush_denormal(True)  # as inertia's train() does during a run; or zero them "
        "in the data: x[x.abs() < torch.finfo(x.dtype).tiny] = 0"
    )
    return [
        Finding("warning" if on_cpu else "info", "denormal_floats", msg, fix, "benchmarks/bench_denormal.py", None, d)
    ]


EVIDENCE_FROM_TRAINING = ("unstable_lr", "no_progress", "momentum_beyond_trial", "denormal_floats")


def _demote(findings: list[Finding], report: DoctorReport) -> list[Finding]:
    """When the trial trains, what the model looks like at init does not stop it: info."""
    t = report.trial
    assert t is not None
    losses = t["losses"]
    note = f" (the trial run trains regardless: loss {losses[0]:.4g} -> {losses[-1]:.4g} in {t['steps_run']} updates)"
    for f in findings:
        if f.severity in ("error", "warning") and f.code not in EVIDENCE_FROM_TRAINING:
            f.severity, f.message = "info", f.message + note
    return findings


def run_rules(report: DoctorReport, ctx: RuleContext) -> list[Finding]:
    """Every registered rule on ``report``: the findings ranked by severity then score; a rule that
    cannot run is added to ``report.skipped`` with why."""
    findings: list[Finding] = []
    for name in RULES.available():
        r = RULES.get(name)
        why = r.missing(report)
        if why is not None:
            report.skipped.append(Skipped(name, why))
            continue
        try:
            findings += r.check(report, ctx)
        except Exception as e:  # noqa: BLE001 - one rule failing must not stop the others
            report.skipped.append(Skipped(name, f"{type(e).__name__}: {e}"))
    if trial_trains(report):
        findings = _demote(findings, report)
    findings.sort(key=lambda f: (-SEVERITY[f.severity], -f.score))
    return findings
