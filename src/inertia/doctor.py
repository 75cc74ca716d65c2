"""``inertia.doctor``: why a network will not train, and what to change.

It runs one forward/backward pass with hooks and a few Hessian-vector products (no training),
then applies the papers' diagnoses:

- Glorot & Bengio (2010): activations and back-propagated gradients that shrink or grow with
  depth, saturated sigmoid/tanh/softsign units, the non-zero-centred sigmoid that drives the top
  hidden layer into saturation, the spread of layer-Jacobian singular values;
- Hu, Xiao & Pennington (2020): an input-output Jacobian whose singular values spread over
  orders of magnitude (Gaussian init of a deep linear or near-linear net) where orthogonal init
  keeps them equal;
- Sutskever et al. (2013): recurrent weights whose spectral radius makes the hidden state
  explode or vanish (echo-state init at 1.1), and the momentum stability bound;
- Temperoni et al. (2020): the Frobenius norm of the loss Hessian w.r.t. each layer.

Stability (a quadratic model with top Hessian eigenvalue lam): gradient descent needs
lr * lam < 2, classical momentum lr * lam < 2 (1 + mu), Nesterov lr * lam < 2 (1 + mu) / (1 + 2 mu)
(NAG acts as CM with momentum mu (1 - lam lr) along each eigendirection).

Each finding has a severity (error, warning, info), a message with the measured numbers, a fix
the user can paste, and the paper it comes from. Findings are ranked by severity, then by how
far the measurement is from healthy.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from . import init as _init
from .diagnostics import curvature
from .diagnostics.jacobians import JacobianSpectrum, _spectrum, blocks_of
from .diagnostics.layers import ACTIVATION_TYPES, LayerStats
from .init.fans import rnn_gates

SEVERITY = {"error": 2, "warning": 1, "info": 0}
CURVATURE_BATCH = 128


@dataclass
class Finding:
    severity: str
    code: str
    message: str
    fix: str
    reason: str
    layer: str | None = None
    score: float = 0.0


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
    jacobian_mean: float | None = None
    jacobian_std: float | None = None
    hessian_norm: float | None = None
    spectral_radius: float | None = None


@dataclass
class DoctorReport:
    layers: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    loss: float | None = None
    lam_max: float | None = None
    stability: dict | None = None
    input_output_condition: float | None = None
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
            "input_output_condition": self.input_output_condition,
            "denormal_share": self.denormal_share,
            "denormal_where": self.denormal_where,
            "device": self.device,
            "findings": [asdict(f) for f in self.findings],
            "layers": [asdict(r) for r in self.layers],
        }

    def to_json(self) -> str:
        from ._json import to_json

        return to_json(self.to_dict(), indent=2)

    def tables(self):
        """Rich tables: findings, then layers."""
        from rich.table import Table

        ft = Table("#", "severity", "finding", "fix", "source", title="findings" if self.findings else "no findings")
        for i, f in enumerate(self.findings, 1):
            ft.add_row(str(i), f.severity, f.message, f.fix, f.reason)
        cols = [
            "layer",
            "shape",
            "init",
            "std",
            "act mean",
            "act std",
            "sat/dead",
            "grad std",
            "J mean",
            "J std",
            "||H||_F",
            "radius",
        ]
        lt = Table(*cols, title="layers (input to output)")
        for r in self.layers:
            sd = r.saturated if r.saturated is not None else r.dead
            lt.add_row(
                r.name,
                "x".join(map(str, r.shape)),
                r.scheme or "-",
                *[
                    _fmt(v)
                    for v in (
                        r.std,
                        r.act_mean,
                        r.act_std,
                        sd,
                        r.backprop_std,
                        r.jacobian_mean,
                        r.jacobian_std,
                        r.hessian_norm,
                        r.spectral_radius,
                    )
                ],
            )
        return ft, lt

    def __str__(self) -> str:
        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=160, force_terminal=False)
        for t in self.tables():
            console.print(t)
        if self.stability:
            console.print(_stability_line(self.stability))
        return buf.getvalue()

    def to_html(self, path) -> None:
        """A self-contained HTML page: findings, layer table, per-layer figures (embedded PNG)."""
        from ._atomic import atomic_write_bytes

        figs = _figures(self)
        rows = "".join(
            f"<tr><td>{i}</td><td class='{f.severity}'>{f.severity}</td><td><b>{f.code}</b>: {html.escape(f.message)}</td>"
            f"<td><code>{html.escape(f.fix)}</code></td><td>{html.escape(f.reason)}</td></tr>"
            for i, f in enumerate(self.findings, 1)
        )
        layer_rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v if v is not None else '-'))}</td>"
                for v in (
                    r.name,
                    "x".join(map(str, r.shape)),
                    r.scheme,
                    _fmt(r.std),
                    _fmt(r.act_mean),
                    _fmt(r.act_std),
                    _fmt(r.saturated if r.saturated is not None else r.dead),
                    _fmt(r.backprop_std),
                    _fmt(r.jacobian_mean),
                    _fmt(r.hessian_norm),
                    _fmt(r.spectral_radius),
                )
            )
            + "</tr>"
            for r in self.layers
        )
        imgs = "".join(
            f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>"
            f"<figcaption>{html.escape(t)}</figcaption></figure>"
            for t, b in figs
        )
        stab = f"<p>{html.escape(_stability_line(self.stability))}</p>" if self.stability else ""
        page = f"""<!doctype html><html><head><meta charset="utf-8"><title>inertia doctor</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
.error{{color:#b00}}.warning{{color:#a60}}.info{{color:#666}}img{{max-width:640px}}</style></head><body>
<h1>inertia doctor</h1><p>{"healthy: no warnings or errors" if self.healthy else f"{len(self.findings)} finding(s)"}</p>
<h2>Findings</h2><table><tr><th>#</th><th>severity</th><th>finding</th><th>fix</th><th>source</th></tr>{rows}</table>{stab}
<h2>Layers</h2><table><tr><th>layer</th><th>shape</th><th>init</th><th>std</th><th>act mean</th><th>act std</th>
<th>sat/dead</th><th>grad std</th><th>J mean</th><th>||H||_F</th><th>radius</th></tr>{layer_rows}</table>
<h2>Figures</h2>{imgs}</body></html>"""
        atomic_write_bytes(path, page.encode("utf-8"))


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _stability_line(s: dict) -> str:
    return (
        f"stability: {s['method']} with lr {s['lr']:.3g}, momentum {s['momentum']:.3g}: lr * lam_max = "
        f"{s['lr'] * s['lam_max']:.3g}, bound {s['bound']:.3g}; largest stable lr {s['max_stable_lr']:.3g}"
    )


def _figures(report: DoctorReport) -> list:
    import base64

    from .diagnostics.plots import subplots  # a Figure without pyplot: the user's backend is left alone

    out = []

    def add(title, ys, ylabel, log=True):
        pts = [(r.name, getattr(r, ys)) for r in report.layers if getattr(r, ys) is not None]
        if not pts:
            return
        fig, ax = subplots(figsize=(6, 3))
        ax.plot(range(len(pts)), [abs(v) for _, v in pts], "o-")
        ax.set_xticks(range(len(pts)), [n for n, _ in pts], rotation=45, fontsize=7)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        out.append((title, base64.b64encode(buf.getvalue()).decode()))

    add("activation std by depth", "act_std", "std")
    add("back-propagated gradient std by depth", "backprop_std", "std")
    add("mean layer-Jacobian singular value", "jacobian_mean", "mean singular value", log=False)
    add("Hessian Frobenius norm per layer", "hessian_norm", "||H_l||_F")
    return out


# -- recognizing the init scheme ----------------------------------------------------------------
def recognize_scheme(weight: torch.Tensor, fan_in: float, fan_out: float) -> tuple[str, float]:
    """Name the init scheme a weight most likely came from, by its std against the fans (and
    orthogonality / sparsity). Returns (label, std)."""
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
        "LeCun": math.sqrt(1 / fan_in),
    }
    name, expected = min(candidates.items(), key=lambda kv: abs(math.log(std / kv[1])))
    if abs(math.log(std / expected)) < math.log(1.1):
        return name, std
    return f"custom (std {std:.3g} = {std * math.sqrt(fan_in):.3g}/sqrt(fan_in))", std


# -- the examination ------------------------------------------------------------------------------
def _default_loss(out: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    if targets is None:
        return 0.5 * (out**2).mean()
    if not targets.is_floating_point() and out.dim() >= 2:
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1))
    return nn.functional.mse_loss(out, targets.to(out.dtype).reshape(out.shape))


def _optimizer_hypers(optimizer, lr, momentum, nesterov) -> tuple | None:
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


def _blocks(model: nn.Module):
    if isinstance(model, nn.Sequential):
        try:
            return blocks_of(model)
        except ValueError:
            return None
    layers = getattr(model, "layers", None)
    if isinstance(layers, (nn.ModuleList, nn.Sequential)) and all(isinstance(m, nn.Linear) for m in layers):
        return [(f"layers.{i}", m) for i, m in enumerate(layers)]
    return None


def doctor(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    loss_fn: Callable | None = None,
    optimizer=None,
    *,
    lr: float | None = None,
    momentum: float | None = None,
    nesterov: bool = False,
    curvature_checks: bool = True,
    seed: int = 0,
) -> DoctorReport:
    """Examine ``model`` on the batch ``inputs`` and return a :class:`DoctorReport`.

    Args:
        model: any ``nn.Module`` (per-layer Jacobians need an ``nn.Sequential`` or a ``layers``
            list of ``Linear``).
        inputs: a batch the model accepts.
        targets: optional targets; with ``loss_fn=None`` the loss is cross-entropy for integer
            targets, MSE for float targets, and 0.5 * mean(output^2) without targets.
        loss_fn: ``loss_fn(outputs, targets)`` (or ``loss_fn(outputs)`` without targets).
        optimizer: a ``Momentum`` or ``torch.optim.SGD``: its lr, momentum and Nesterov flag are
            checked against the stability bound. Or pass ``lr``, ``momentum``, ``nesterov``.
        curvature_checks: compute Hessian norms and lam_max (on at most 128 examples).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"doctor needs an nn.Module, got {type(model).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to examine")
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a tensor, got {type(inputs).__name__}")

    def loss_of(out, tgt):
        if loss_fn is None:
            return _default_loss(out, tgt)
        return loss_fn(out, tgt) if tgt is not None else loss_fn(out)

    report = DoctorReport()
    named_modules = dict(model.named_modules())
    saved_grads = [p.grad for p in params]
    dead_units: dict = {}

    def dead_hook(name):
        def hook(_m, _i, out):  # units that are zero for every example of the batch
            if isinstance(out, torch.Tensor) and out.dim() >= 2:
                dead_units[name] = float((out.detach() == 0).all(0).float().mean())

        return hook

    handles = [
        m.register_forward_hook(dead_hook(n)) for n, m in model.named_modules() if isinstance(m, (nn.ReLU, nn.ReLU6))
    ]
    denormals = {"input": denormal_share([inputs])}

    def denormal_hook(name):
        def hook(_m, _i, out):
            if isinstance(out, torch.Tensor):
                denormals[f"output of {name}"] = denormal_share([out])

        return hook

    handles += [
        m.register_forward_hook(denormal_hook(n))
        for n, m in model.named_modules()
        if n and next(m.children(), None) is None
    ]  # leaf modules
    try:
        with LayerStats(model, kinds=LayerStats.KINDS, histograms=False) as ls:
            model.zero_grad(set_to_none=True)
            try:
                out = model(inputs)
            except Exception as e:
                raise ValueError(
                    f"model(inputs) failed for inputs of shape {tuple(inputs.shape)}: {type(e).__name__}: {e}"
                ) from None
            if not isinstance(out, torch.Tensor):
                raise ValueError(f"the model returned {type(out).__name__}; doctor needs a tensor output")
            loss = loss_of(out, targets)
            loss.backward()
            records = ls.collect(0)
            denormals["gradients"] = denormal_share([p.grad for p in params])
            report.device = params[0].device.type
    finally:
        for h in handles:
            h.remove()
        for p, g in zip(params, saved_grads, strict=False):
            p.grad = g
    report.loss = float(loss.detach())
    counted = {k: v for k, v in denormals.items() if v is not None}
    if counted:
        report.denormal_where = max(counted, key=counted.get)
        report.denormal_share = counted[report.denormal_where]
    finite = math.isfinite(report.loss)
    by = {(r["layer"], r["kind"]): r for r in records}

    # layers in forward order: parameterised modules and activation modules, as hooks saw them
    order = list(dict.fromkeys(r["layer"] for r in records if r["kind"] in ("activation", "preactivation")))
    weight_layers = [
        n
        for n in order
        if getattr(named_modules.get(n), "weight", None) is not None and named_modules[n].weight.dim() >= 2
    ]
    act_after = {}
    last_w = None
    for n in order:
        m = named_modules.get(n)
        if isinstance(m, ACTIVATION_TYPES) and last_w is not None:
            act_after[last_w] = n
        elif n in weight_layers:
            last_w = n
    for n in weight_layers:
        m = named_modules[n]
        fi, fo = _init.fans(m)
        scheme, std = recognize_scheme(m.weight, fi, fo)
        row = LayerDiagnosis(n, tuple(m.weight.shape), fi, fo, std, scheme)
        a = by.get((act_after.get(n), "activation")) or by.get((n, "preactivation"))
        if a:
            row.activation = type(named_modules[act_after[n]]).__name__ if n in act_after else None
            row.act_mean, row.act_std = a["mean"], a["std"]
            row.saturated = a.get("saturated")
            row.dead = dead_units.get(act_after.get(n))
        g = by.get((n, "backprop_grad"))
        if g:
            row.backprop_std = g["std"]
        report.layers.append(row)
    # recurrent weights (nn.RNN-style or TanhRNN-style): spectral radius
    for pname, p in model.named_parameters():
        if "weight_hh" in pname and p.dim() == 2:
            blocks = [p.detach()]
            mod = named_modules.get(pname.rsplit(".", 1)[0]) if "." in pname else model
            try:
                blocks = list(p.detach().chunk(rnn_gates(mod), 0))
            except ValueError:  # not a gated torch RNN (e.g. inertia's TanhRNN): one matrix
                pass
            radius = max(_init.spectral_radius(b) for b in blocks if b.shape[0] == b.shape[1])
            report.layers.append(
                LayerDiagnosis(
                    pname,
                    tuple(p.shape),
                    scheme=recognize_scheme(p, p.shape[1], p.shape[0] // len(blocks))[0],
                    std=float(p.detach().std()),
                    spectral_radius=radius,
                )
            )

    # Jacobians
    blocks = _blocks(model)
    x_small = inputs[:4].detach()
    if blocks:
        h = x_small
        try:
            for name, block in blocks:
                spec = JacobianSpectrum(name, _spectrum(block, h, gram=True).detach())
                row = next((r for r in report.layers if r.name == name), None)
                if row is not None:
                    row.jacobian_mean, row.jacobian_std = spec.mean, spec.std
                with torch.no_grad():
                    h = block(h)
        except Exception:  # noqa: BLE001 - Jacobians are optional for exotic blocks
            pass
    try:
        if x_small[0].numel() <= 4096:
            io_spec = JacobianSpectrum("input_output", _spectrum(model, x_small[:4]).detach())
            s = io_spec.singular_values
            report.input_output_condition = float((s.max(1).values / s.min(1).values.clamp_min(1e-300)).median())
    except Exception:  # noqa: BLE001
        pass

    # curvature on a small batch
    hypers = _optimizer_hypers(optimizer, lr, momentum, nesterov)
    if curvature_checks and finite:
        xc = inputs[:CURVATURE_BATCH]
        tc = targets[:CURVATURE_BATCH] if targets is not None else None
        closure = lambda: loss_of(model(xc), tc)  # noqa: E731
        gen = torch.Generator().manual_seed(seed)
        for row in report.layers:
            m = named_modules.get(row.name)
            if m is not None and getattr(m, "weight", None) is not None:
                res = curvature.hessian_frobenius_norm(closure, [m.weight], probes=3, generator=gen)
                row.hessian_norm = res.value
        try:
            eig = curvature.hessian_eigenvalues(
                closure, params, k=1, which="largest_magnitude", tol=1e-2, max_iter=40, generator=gen
            )
            report.lam_max = abs(float(eig.values[0]))
        except ValueError:  # curvature overflows: reported through the non-finite findings
            report.lam_max = None
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
    report.findings = _diagnose(report, named_modules)
    if not finite:
        report.findings.insert(
            0,
            Finding(
                "error",
                "non_finite_loss",
                f"the loss at initialization is {report.loss}: activations overflow",
                "inertia.init.apply(model, 'glorot_uniform')  # or a smaller init scale",
                "Glorot & Bengio 2010, sec. 4.2",
                None,
                float("inf"),
            ),
        )
    return report


def denormal_share(tensors) -> float | None:
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


DENORMAL_SHARE = 1e-4  # a share of denormal entries (input, activations or gradients) worth a warning on a CPU


def _diagnose(report: DoctorReport, modules: dict) -> list:
    f: list[Finding] = []
    layers = [r for r in report.layers if r.spectral_radius is None]
    acts = [r for r in layers if r.act_std is not None]
    grads = [r for r in layers if r.backprop_std is not None]
    apply_fix = "inertia.init.apply(model, {!r})"
    kinds = {type(modules[n]).__name__ for n in modules if isinstance(modules[n], ACTIVATION_TYPES)}
    relu = bool(kinds & {"ReLU", "LeakyReLU", "ReLU6"})
    good = "he_normal" if relu else "glorot_uniform"

    # signal propagation (Glorot & Bengio 2010; He et al. 2015)
    if len(acts) >= 3:
        first, last = acts[0].act_std, acts[-2].act_std  # last hidden layer (the output is not an activation)
        ratio = last / max(first, 1e-30)
        if ratio < 0.01:
            f.append(
                Finding(
                    "error",
                    "vanishing_activations",
                    f"activation std falls from {first:.3g} ({acts[0].name}) to {last:.3g} ({acts[-2].name}): "
                    f"the signal vanishes with depth (x{ratio:.2g})",
                    apply_fix.format(good),
                    "Glorot & Bengio 2010, sec. 4.2; He et al. 2015",
                    acts[-2].name,
                    10 - math.log10(max(ratio, 1e-30)),
                )
            )  # the cause ranks first
        elif ratio > 100:
            f.append(
                Finding(
                    "error",
                    "exploding_activations",
                    f"activation std grows from {first:.3g} to {last:.3g} with depth (x{ratio:.3g})",
                    apply_fix.format(good),
                    "Glorot & Bengio 2010, sec. 4.2",
                    acts[-2].name,
                    10 + math.log10(ratio),
                )
            )
    if len(grads) >= 3:
        top, bottom = grads[-1].backprop_std, grads[0].backprop_std
        ratio = bottom / max(top, 1e-30)
        if ratio < 0.02:
            f.append(
                Finding(
                    "error",
                    "vanishing_gradients",
                    f"back-propagated gradient std falls from {top:.3g} at the top ({grads[-1].name}) to "
                    f"{bottom:.3g} at the first layer ({grads[0].name}) (x{ratio:.2g}): lower layers will "
                    f"barely learn",
                    apply_fix.format(good),
                    "Glorot & Bengio 2010, sec. 4.2.2 (Figure 7)",
                    grads[0].name,
                    -math.log10(max(ratio, 1e-30)),
                )
            )
        elif ratio > 20:
            f.append(
                Finding(
                    "error",
                    "exploding_gradients",
                    f"back-propagated gradient std grows from {top:.3g} at the top to {bottom:.3g} at the "
                    f"first layer (x{ratio:.3g})",
                    apply_fix.format(good),
                    "Glorot & Bengio 2010, sec. 4.2.2",
                    grads[0].name,
                    math.log10(ratio),
                )
            )
    # saturation and dead units
    for r in acts:
        if r.saturated is not None and r.saturated > 0.3:
            f.append(
                Finding(
                    "warning",
                    "saturation",
                    f"{100 * r.saturated:.0f}% of {r.activation} units after {r.name} are saturated at init",
                    apply_fix.format("glorot_uniform"),
                    "Glorot & Bengio 2010, sec. 3",
                    r.name,
                    r.saturated,
                )
            )
        if r.dead is not None and r.dead > 0.3:
            f.append(
                Finding(
                    "warning",
                    "dead_units",
                    f"{100 * r.dead:.0f}% of ReLU units after {r.name} are zero for every example of the batch",
                    apply_fix.format("he_normal") + "  # and bias=0.0",
                    "He et al. 2015",
                    r.name,
                    r.dead,
                )
            )
    if "Sigmoid" in kinds and len(acts) >= 4:
        top_hidden = acts[-2]
        f.append(
            Finding(
                "warning",
                "sigmoid_top_saturation",
                f"sigmoid hidden units have mean {top_hidden.act_mean:.2g} (not zero-centred): in deep "
                "sigmoid nets the top hidden layer is driven to saturation at 0 early in training",
                "use tanh or softsign units with inertia.init.apply(model, 'glorot_uniform')",
                "Glorot & Bengio 2010, sec. 3.1 (Figure 2)",
                top_hidden.name,
                1.0,
            )
        )
    # Jacobian conditioning (Hu et al. 2020)
    if report.input_output_condition is not None and report.input_output_condition > 1e3:
        spread = [r.jacobian_std / r.jacobian_mean for r in layers if r.jacobian_mean]
        f.append(
            Finding(
                "error",
                "ill_conditioned_jacobian",
                f"input-output Jacobian condition number {report.input_output_condition:.3g}: singular "
                f"values spread over {math.log10(report.input_output_condition):.1f} orders of magnitude"
                + (f" (layer Jacobians: std/mean {max(spread):.2g})" if spread else ""),
                apply_fix.format("orthogonal"),
                "Hu, Xiao & Pennington 2020 (orthogonal init needs width independent of depth)",
                None,
                math.log10(report.input_output_condition),
            )
        )
    # recurrent spectral radius (Sutskever et al. 2013)
    for r in report.layers:
        if r.spectral_radius is None:
            continue
        if r.spectral_radius > 1.5:
            f.append(
                Finding(
                    "error",
                    "exploding_recurrence",
                    f"spectral radius of {r.name} is {r.spectral_radius:.3g}: the hidden state and its "
                    "gradients grow with every step",
                    "inertia.init.apply(model, 'normal', rules={'*weight_hh*': ('echo_state', "
                    "{'spectral_radius': 1.1})})  # echo_state_ with 1.1",
                    "Sutskever et al. 2013, sec. 4 (echo-state init, radius 1.1)",
                    r.name,
                    r.spectral_radius,
                )
            )
        elif r.spectral_radius < 0.5:
            f.append(
                Finding(
                    "warning",
                    "vanishing_recurrence",
                    f"spectral radius of {r.name} is {r.spectral_radius:.3g}: memory fades within a few steps",
                    "use echo_state_ with spectral_radius 1.1 on the recurrent weights",
                    "Sutskever et al. 2013, sec. 4",
                    r.name,
                    1 / max(r.spectral_radius, 1e-6),
                )
            )
    # momentum stability
    s = report.stability
    if s is not None and s["lr"] * s["lam_max"] >= s["bound"]:
        f.append(
            Finding(
                "error",
                "unstable_lr",
                f"lr {s['lr']:.3g} with {s['method'].upper()} (momentum {s['momentum']:.3g}) exceeds the "
                f"stability bound: lr * lam_max = {s['lr'] * s['lam_max']:.3g} >= {s['bound']:.3g}",
                f"use lr <= {0.9 * s['max_stable_lr']:.3g} (largest stable: {s['max_stable_lr']:.3g})",
                "quadratic model; Sutskever et al. 2013, sec. 2.1 (NAG = CM with mu(1 - lam lr))",
                None,
                s["lr"] * s["lam_max"] / s["bound"],
            )
        )
    # denormal floats: a speed problem on CPUs, not a numerical one
    d = report.denormal_share
    if d is not None and d >= DENORMAL_SHARE:
        on_cpu = report.device == "cpu"
        f.append(
            Finding(
                "warning" if on_cpu else "info",
                "denormal_floats",
                f"{100 * d:.2g}% of the nonzero entries of the {report.denormal_where} are denormal floats "
                f"(below {torch.finfo(torch.float32).tiny:.2g} in float32)"
                + (
                    ": on an x86 CPU each one sends the matrix products that read it down a slow path "
                    "(an update of the CURVES autoencoder 9x slower, benchmarks/bench_denormal.py)"
                    if on_cpu
                    else ""
                ),
                "torch.set_flush_denormal(True)  # as inertia's train() does during a run; or zero them "
                "in the data: x[x.abs() < torch.finfo(x.dtype).tiny] = 0",
                "benchmarks/bench_denormal.py",
                None,
                d,
            )
        )
    f.sort(key=lambda x: (-SEVERITY[x.severity], -x.score))
    return f
