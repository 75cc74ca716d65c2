"""``inertia.doctor``: why a network will not train, and what to change.

``doctor(model, inputs, targets, ...)`` measures the model on one batch (one forward/backward pass
with hooks, layer-Jacobian spectra, a few Hessian-vector products and, when it knows the optimizer
or the learning rate, a short trial run of that optimizer on a copy of the model), then runs the
registered rules (:data:`RULES`, in :mod:`inertia.doctor.rules`) on what it measured:

- Glorot & Bengio (2010): activations and relative weight gradients that shrink or grow with
  depth, saturated sigmoid/tanh/softsign units, the non-zero-centred sigmoid that drives the top
  hidden layer into saturation, the spread of layer-Jacobian singular values;
- Hu, Xiao & Pennington (2020): an input-output Jacobian whose singular values spread over orders
  of magnitude (Gaussian init of a deep linear or near-linear net) where orthogonal init keeps
  them equal;
- Sutskever et al. (2013): plain recurrent weights whose spectral radius makes the hidden state
  explode or vanish (echo-state init at 1.1);
- Temperoni et al. (2020): the Frobenius norm of the loss Hessian w.r.t. each layer;
- the trial run: a step size that makes the loss diverge, or a loss that does not fall. The
  quadratic stability bound at init (GD lr * lam < 2, CM lr * lam < 2 (1 + mu), NAG
  lr * lam < 2 (1 + mu) / (1 + 2 mu)) is reported as information: networks train past it.

Each finding has a severity (error, warning, info), a message with the measured numbers, a fix
the user can paste (Python, with ``model`` and ``optimizer`` bound to theirs), and the paper or
benchmark figure behind it. What the doctor measures never changes the model: parameters,
gradients, buffers (BatchNorm statistics), modes and the global RNG are as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .. import progress as _progress
from ..diagnostics.state import preserved
from ..validation import check_integer, check_number
from .measure import (
    CURVATURE_BATCH,
    TRIAL_STEPS,
    Examination,
    batch_tensors,
    denormal_share,
    measure_curvature,
    measure_forward_backward,
    measure_jacobians,
    measure_layers,
    measure_recurrence,
    measure_trial,
    optimizer_hypers,
    recognize_scheme,
    stability_bound,
)
from .report import SEVERITY, DoctorReport, Finding, LayerDiagnosis, Skipped, stability_line
from .rules import RULES, Rule, RuleContext, run_rules

__all__ = [
    "CURVATURE_BATCH",
    "RULES",
    "SEVERITY",
    "TRIAL_STEPS",
    "DoctorReport",
    "Finding",
    "LayerDiagnosis",
    "Rule",
    "Skipped",
    "denormal_share",
    "doctor",
    "recognize_scheme",
    "stability_bound",
    "stability_line",
]


def _default_loss(out: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    if targets is None:
        return 0.5 * (out**2).mean()
    if not targets.is_floating_point() and out.dim() >= 2:
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1))
    return nn.functional.mse_loss(out, targets.to(out.dtype).reshape(out.shape))


def _unwrap(model: Any) -> Any:
    """The module inside ``DistributedDataParallel`` / ``DataParallel``: the doctor measures it
    alone, in this process, so the wrapper's gradient all-reduce and the process group are not
    touched (no collective runs; call it on one rank or on all)."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while isinstance(model, (DataParallel, DistributedDataParallel)):
        model = model.module
    return model


def _check_inputs(
    model: Any, inputs: Any, trial_steps: int, trial_seconds: float, curvature_seconds: float
) -> list[torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"doctor needs an nn.Module, got {type(model).__name__}")
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to examine")
    tensors = batch_tensors(inputs) if isinstance(inputs, (torch.Tensor, tuple, list, dict)) else []
    if not tensors:
        raise ValueError(
            f"inputs must be a tensor, a tuple of tensors (model(*inputs)) or a dict of them (model(**inputs)), "
            f"got {type(inputs).__name__}"
        )
    check_integer("trial_steps", trial_steps, lo=0)
    check_number("trial_seconds", trial_seconds, lo=0, lo_open=True)
    check_number("curvature_seconds", curvature_seconds, lo=0, lo_open=True)
    return params


def _attempt(report: DoctorReport, name: str, measure: Callable[[], None]) -> None:
    """Run one optional measurement; if it cannot run on this model, say so in the report. The
    caller's progress reporter, if any (:mod:`inertia.progress`), hears which one runs."""
    reporter = _progress.current()
    if reporter is not None:
        reporter.note(name)
    try:
        measure()
    except Exception as e:  # noqa: BLE001 - the doctor never fails as a whole for one measurement
        report.skipped.append(Skipped(name, f"{type(e).__name__}: {e}"))


def doctor(
    model: nn.Module,
    inputs: Any,
    targets: torch.Tensor | None = None,
    loss_fn: Callable | None = None,
    optimizer: Any = None,
    *,
    lr: float | None = None,
    momentum: float | None = None,
    nesterov: bool = False,
    curvature_checks: bool = True,
    trial_steps: int = TRIAL_STEPS,
    trial_seconds: float = 5.0,
    curvature_seconds: float = 4.0,
    seed: int = 0,
) -> DoctorReport:
    """Examine ``model`` on the batch ``inputs`` and return a :class:`DoctorReport`.

    Args:
        model: any ``nn.Module``.
        inputs: a batch the model accepts: a tensor (``model(inputs)``), a tuple of tensors
            (``model(*inputs)``) or a dict (``model(**inputs)``, as Hugging Face models take
            ``input_ids`` and ``attention_mask``); an output with ``.logits`` is read there.
        targets: optional targets; with ``loss_fn=None`` the loss is cross-entropy for integer
            targets, MSE for float targets, and 0.5 * mean(output^2) without targets.
        loss_fn: ``loss_fn(outputs, targets)`` (or ``loss_fn(outputs)`` without targets).
        optimizer: any torch optimizer (its lr, momentum and Nesterov flag are read from its
            first group, and the trial run uses a copy of it with its state). Or pass ``lr``,
            ``momentum``, ``nesterov``.
        curvature_checks: compute Hessian norms and lam_max (on at most 128 examples; fewer when
            one forward/backward pass says lam_max would take over half of ``curvature_seconds``).
        trial_steps: updates of the trial run (0: no trial run).
        trial_seconds: wall-clock cap of the trial run; a trial cut short judges divergence only.
            When the trial does not train, candidate fixes are tried for up to 3 more caps.
        curvature_seconds: the curvature checks' wall-clock budget: lam_max's examples are cut to
            fit half of it, then per-layer Hessian norms are measured while it lasts; the layers
            left are listed in ``report.skipped``. (The Jacobians, input-output then layer blocks,
            share their own 2 s budget, ``measure.JACOBIAN_SECONDS``, and are estimated by
            Lanczos above 2**18 entries.)
        seed: for the random probes of the curvature estimates.

    Examples:
        >>> import torch, inertia
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
        >>> x, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
        >>> report = inertia.doctor(net, x, y, lr=100.0, momentum=0.9)
        >>> report.top.code
        'unstable_lr'
    """
    model = _unwrap(model)
    params = _check_inputs(model, inputs, trial_steps, trial_seconds, curvature_seconds)

    def loss_of(out: Any, tgt: Any) -> torch.Tensor:
        if loss_fn is None:
            return _default_loss(out, tgt)
        return loss_fn(out, tgt) if tgt is not None else loss_fn(out)

    with preserved(model):  # every measurement leaves the model, its buffers, modes, grads and the RNG as found
        ex = Examination(model, inputs, targets, loss_of, params, dict(model.named_modules()))
        report = DoctorReport()
        # no progress line before this pass: a model that rejects the inputs gets one error line, nothing else
        measure_forward_backward(ex, report)  # a model that cannot run on inputs is an error, not a skip
        measure_layers(ex, report)
        measure_recurrence(ex, report)
        _attempt(report, "jacobians", lambda: measure_jacobians(ex, report))
        hypers = optimizer_hypers(optimizer, lr, momentum, nesterov)
        finite = report.loss is not None and report.loss == report.loss and abs(report.loss) != float("inf")
        if curvature_checks and finite:
            _attempt(report, "curvature", lambda: measure_curvature(ex, report, hypers, seed, curvature_seconds))
        if hypers is None:
            report.skipped.append(Skipped("trial run", "no optimizer or lr given"))
        elif trial_steps > 0 and finite:
            trial = lambda: measure_trial(ex, report, optimizer, hypers, trial_steps, trial_seconds)  # noqa: E731
            _attempt(report, "trial run", trial)
        report.findings = run_rules(report, RuleContext(ex.modules, hypers))
        return report
