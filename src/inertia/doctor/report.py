"""What the doctor returns: findings, skipped checks, per-layer rows, and their renderings
(terminal tables, JSON, a self-contained HTML page) through :mod:`inertia.render`."""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import render

__all__ = [
    "SEVERITY",
    "DoctorReport",
    "Finding",
    "LayerDiagnosis",
    "Skipped",
    "stability_line",
]

SEVERITY = {"error": 2, "warning": 1, "info": 0}


@dataclass
class Finding:
    """One diagnosis: ``severity`` (error, warning, info), ``code`` (the rule's name), ``message``
    with the measured numbers, a ``fix`` to paste (Python with ``model`` and ``optimizer`` bound),
    ``reason`` (the paper or figure behind the rule), the ``layer`` it concerns and ``score`` (how
    far from healthy, for ranking)."""

    severity: str
    code: str
    message: str
    fix: str
    reason: str
    layer: str | None = None
    score: float = 0.0


@dataclass
class Skipped:
    """A rule or measurement that could not run on this model, and why."""

    name: str
    why: str


@dataclass
class LayerDiagnosis:
    name: str
    shape: tuple
    fan_in: float | None = None
    fan_out: float | None = None
    std: float | None = None
    scheme: str | None = None
    activation: str | None = None
    act_mean: float | None = None
    act_std: float | None = None
    saturated: float | None = None
    dead: float | None = None
    backprop_std: float | None = None
    grad_ratio: float | None = None  # |grad W|_F / |W|_F: the relative size of an SGD step, per unit lr
    jacobian_mean: float | None = None
    jacobian_std: float | None = None
    hessian_norm: float | None = None
    spectral_radius: float | None = None
    gated: bool = False


_LAYER_COLUMNS = (
    ("layer", "name"),
    ("shape", None),
    ("init", "scheme"),
    ("std", "std"),
    ("act mean", "act_mean"),
    ("act std", "act_std"),
    ("sat/dead", None),
    ("|g|/|W|", "grad_ratio"),
    ("grad std", "backprop_std"),
    ("J mean", "jacobian_mean"),
    ("||H||_F", "hessian_norm"),
    ("radius", "spectral_radius"),
)


COMPACT_COLUMNS = ("layer", "shape", "init", "act std", "sat/dead", "|g|/|W|", "J mean", "radius")  # fit 80 columns


def short_init(label: str | None) -> str | None:
    """The init label without its explanation, for a narrow table.

    >>> short_init("standard / torch default (U[±1/sqrt(fan_in)])"), short_init("normalized (Glorot)")
    ('standard', 'normalized')
    >>> short_init("custom (std 0.1 = 2.8/sqrt(fan_in))"), short_init("sparse (15 per unit)")
    ('custom', 'sparse 15')
    >>> short_init("He (fan_out) = normalized (Glorot)")
    'He fan_out=normalized'

    """
    if label is None:
        return None
    if label.startswith("sparse ("):
        return "sparse " + label[len("sparse (") :].split()[0]
    if label.startswith("custom"):
        return "custom"
    if " = " in label:
        return "=".join(short_init(part) or "" for part in label.split(" = "))
    if label.startswith("He (fan_out)"):
        return "He fan_out"
    return label.split(" / ")[0].split(" (")[0]


def stability_line(s: dict) -> str:
    """The quadratic-model stability numbers in one line (``DoctorReport.stability``)."""
    return (
        f"stability (quadratic model at init): {s['method']} with lr {s['lr']:.3g}, momentum {s['momentum']:.3g}: "
        f"lr * lam_max = {s['lr'] * s['lam_max']:.3g}, bound {s['bound']:.3g}; "
        f"largest stable lr on that quadratic {s['max_stable_lr']:.3g}"
    )


def _trial_line(t: dict) -> str:
    losses = t["losses"]
    return (
        f"trial run: {t['steps_run']} of {t['steps']} updates on a copy of the model: loss {losses[0]:.4g} -> "
        f"{losses[-1]:.4g} (constant-prediction loss {t['constant_loss']:.4g})"
        + ("; diverged" if t["diverged"] else "")
    )


@dataclass
class DoctorReport:
    layers: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    loss: float | None = None
    lam_max: float | None = None
    stability: dict | None = None
    trial: dict | None = None
    input_output_condition: float | None = None
    input_output_method: str | None = None  # "exact" or "lanczos" (estimated)
    curvature_batch: int | None = None  # examples the curvature quantities were measured on
    curvature_note: str | None = None  # set when curvature_seconds cut those examples
    # per block (diagnostics.layer_jacobian_singular_values): mean, std, max singular value, method, shape
    jacobian_blocks: dict | None = None
    # share of denormal floats among the nonzero entries (0 < |x| < finfo.tiny), where it is largest:
    # "input", a module's output, or "gradients" (of the parameters)
    denormal_share: float | None = None
    denormal_where: str | None = None
    device: str | None = None

    @property
    def healthy(self) -> bool:
        return not any(f.severity in ("error", "warning") for f in self.findings)

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def to_dict(self) -> dict:
        return {
            "healthy": self.healthy,
            "loss": self.loss,
            "lam_max": self.lam_max,
            "stability": self.stability,
            "trial": self.trial,
            "input_output_condition": self.input_output_condition,
            "input_output_method": self.input_output_method,
            "curvature_batch": self.curvature_batch,
            "curvature_note": self.curvature_note,
            "jacobian_blocks": self.jacobian_blocks,
            "denormal_share": self.denormal_share,
            "denormal_where": self.denormal_where,
            "device": self.device,
            "findings": [asdict(f) for f in self.findings],
            "skipped": [asdict(s) for s in self.skipped],
            "layers": [asdict(r) for r in self.layers],
        }

    def to_json(self) -> str:
        from .._json import to_json

        return to_json(self.to_dict(), indent=2)

    # -- renderings ----------------------------------------------------------------------------
    def _finding_rows(self, html: bool) -> list[dict]:
        def cell(text: str, css: str | None = None, code: bool = False) -> Any:
            return render.Cell(text, css_class=css, code=code) if html else text

        return [
            {
                "#": i,
                "severity": cell(f.severity, f.severity),
                "finding": f"{f.code}: {f.message}",
                "fix": cell(f.fix, code=True),
                "source": f.reason,
            }
            for i, f in enumerate(self.findings, 1)
        ]

    def _layer_rows(self) -> list[tuple]:
        rows = []
        for r in self.layers:
            sd = r.saturated if r.saturated is not None else r.dead
            values: list[Any] = []
            for label, attr in _LAYER_COLUMNS:
                if label == "shape":
                    values.append("x".join(map(str, r.shape)))
                elif label == "sat/dead":
                    values.append(sd)
                else:
                    values.append(getattr(r, attr) if attr else None)
            rows.append(tuple(values))
        return rows

    def notes(self) -> list[str]:
        """The trial, the stability numbers and what was skipped, one line each."""
        notes = []
        if self.trial:
            notes.append(_trial_line(self.trial))
        if self.stability:
            notes.append(stability_line(self.stability))
        if self.curvature_note:
            notes.append(self.curvature_note)
        notes += [f"skipped {s.name}: {s.why}" for s in self.skipped]
        return notes

    def tables(self, wide: bool = True) -> tuple[render.Table, render.Table]:
        """The findings table and the layer table (input to output). ``wide=False``: the layer
        table keeps :data:`COMPACT_COLUMNS` that hold a value for some layer, with short init
        labels (what fits an 80-column terminal; ``--wide``, ``--json`` and ``--html`` have all)."""
        findings = render.Table(
            self._finding_rows(html=False),
            columns=("#", "severity", "finding", "fix", "source"),
            title="findings",
            empty="no findings",
            digits=3,
        )
        header = tuple(c for c, _ in _LAYER_COLUMNS)
        rows = self._layer_rows()
        if not wide:
            keep = [
                i
                for i, c in enumerate(header)
                if c in COMPACT_COLUMNS and (c == "layer" or any(r[i] is not None for r in rows))
            ]
            init = header.index("init")
            rows = [tuple(short_init(r[i]) if i == init else r[i] for i in keep) for r in rows]
            header = tuple(header[i] for i in keep)
        layers = render.Table(rows, columns=header, title="layers (input to output)", digits=3)
        return findings, layers

    def __str__(self) -> str:
        findings, layers = self.tables()
        text = render.render_text([findings.to_rich(), layers.to_rich()], width=160)
        return text + "".join(f"{n}\n" for n in self.notes())

    def page(self) -> render.Page:
        """The report as a :class:`inertia.render.Page` (findings, notes, layers, figures)."""
        verdict = "healthy: no warnings or errors" if self.healthy else f"{len(self.findings)} finding(s)"
        findings = render.Table(self._finding_rows(html=True), columns=("#", "severity", "finding", "fix", "source"))
        layers = render.Table(self._layer_rows(), columns=tuple(c for c, _ in _LAYER_COLUMNS), digits=3)
        return render.Page(
            "inertia doctor",
            [
                render.Text(verdict),
                render.Section("Findings", [findings, *[render.Text(n) for n in self.notes()]]),
                render.Section("Layers", [layers]),
                render.Section("Figures", _figures(self)),
            ],
            style=".error{color:#b00}.warning{color:#a60}.info{color:#666}",
        )

    def to_html(self, path: str | Path) -> None:
        """A self-contained HTML page: findings, layer table, per-layer figures (embedded PNG)."""
        from .._atomic import atomic_write_bytes

        atomic_write_bytes(path, self.page().to_html().encode("utf-8"))


def _figures(report: DoctorReport) -> list:
    from ..diagnostics.plots import subplots  # a Figure without pyplot: the user's backend is left alone

    out = []
    for title, attr, ylabel, log in (
        ("activation std by depth", "act_std", "std", True),
        ("back-propagated gradient std by depth", "backprop_std", "std", True),
        ("relative weight gradient |grad W| / |W| by depth", "grad_ratio", "|grad W| / |W|", True),
        ("mean layer-Jacobian singular value", "jacobian_mean", "mean singular value", False),
        ("Hessian Frobenius norm per layer", "hessian_norm", "||H_l||_F", True),
    ):
        pts = [(r.name, getattr(r, attr)) for r in report.layers if getattr(r, attr) is not None]
        pts = [(n, v) for n, v in pts if math.isfinite(v) and (not log or v != 0)]
        if not pts:
            continue
        fig, ax = subplots(figsize=(6, 3))
        ax.plot(range(len(pts)), [abs(v) for _, v in pts], "o-")
        step = max(1, len(pts) // 20)  # at most ~20 readable names
        ax.set_xticks(range(0, len(pts), step), [n for n, _ in pts][::step], rotation=45, fontsize=7, ha="right")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("layer (input to output)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        out.append(render.Image(title, data=buf.getvalue()))
    return out
