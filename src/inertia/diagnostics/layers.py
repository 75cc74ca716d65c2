"""Per-layer statistics recorded by hooks: Glorot & Bengio (2010)'s figures for any model.

For every watched module, at recorded steps:

- ``activation``: the output of activation modules (``nn.Tanh``, ``nn.Sigmoid``, ``nn.Softsign``,
  ``nn.ReLU``, ...): mean, std, 2nd and 98th percentiles, fraction saturated, histogram;
- ``preactivation``: the output of parameterised layers (Linear, Conv, ...) with the same
  statistics (for activations written as functions inside a custom ``forward``, this is what can
  be seen);
- ``backprop_grad``: the gradient of the loss w.r.t. each parameterised layer's output, i.e. the
  back-propagated gradient at the pre-activation (Glorot & Bengio's Figure 7): std and histogram;
- ``weight_grad``: the gradient w.r.t. each weight: std and histogram.

Saturation (fraction of units): sigmoid h < 0.01 or h > 0.99; tanh |h| > 0.99; softsign
|h| > 0.9 (softsign approaches its asymptotes polynomially, so 0.99 would need |x| = 99); ReLU
reports the fraction of exact zeros ("dead" for that batch) instead.

Cost: on steps that are not recorded each hook only checks a flag. Mean and std use every
finite element (``torch.var_mean`` in float64); percentiles, saturation and histograms use at
most ``max_sample`` evenly spaced finite elements (sorted once); every tensor is detached
immediately, so no graph is retained. NaN and inf (a diverging run) are counted in
``nonfinite``, never raised on, and an empty batch gives NaN statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

ACTIVATION_TYPES = (
    nn.Sigmoid,
    nn.Tanh,
    nn.Softsign,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Hardtanh,
    nn.SELU,
    nn.Mish,
    nn.ReLU6,
    nn.CELU,
)


def _saturation(module: nn.Module | None, h: np.ndarray) -> float | None:
    if isinstance(module, nn.Sigmoid):
        return float(((h < 0.01) | (h > 0.99)).mean())
    if isinstance(module, nn.Tanh):
        return float((np.abs(h) > 0.99).mean())
    if isinstance(module, nn.Softsign):
        return float((np.abs(h) > 0.9).mean())
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return float((h == 0).mean())
    return None


def _moments(flat: torch.Tensor) -> tuple[float, float]:
    """Mean and std (Bessel-corrected) of a 1-D tensor by ``torch.var_mean``, a stable reduction
    (no ``E[x^2] - E[x]^2`` cancellation, which reports std 0 for ``0.5 + 1e-4 * randn`` in
    float32), accumulated in float64 where the device has it (not MPS)."""
    acc = flat.float() if flat.device.type == "mps" else flat.double()
    var, mean = torch.var_mean(acc, correction=1 if acc.numel() > 1 else 0)
    return float(mean), math.sqrt(float(var))


def _histogram(sample: np.ndarray, lo: float, hi: float, bins: int) -> list[int]:
    """Counts in ``bins`` equal-width bins over ``[lo, hi]`` (every element in the first bin when
    ``hi == lo``); computed in float64 so that a range near the float32 limits cannot overflow."""
    if hi <= lo:
        return [int(sample.size)] + [0] * (bins - 1)
    x = sample.astype(np.float64)
    idx = np.clip(((x - lo) * (bins / (hi - lo))).astype(np.int64), 0, bins - 1)
    return np.bincount(idx, minlength=bins).tolist()


def tensor_stats(
    x: torch.Tensor, bins: int = 50, max_sample: int = 2048, module: nn.Module | None = None, histogram: bool = True
) -> dict:
    """Statistics of ``x``: mean and std over all finite elements (a stable reduction); 2nd/98th
    percentiles, fraction saturated (known activations) or dead (ReLU), and a histogram over at
    most ``max_sample`` evenly spaced finite elements (a subsample for these distribution
    summaries; exact when ``x`` is smaller), computed on the host.

    ``numel`` counts every element and ``nonfinite`` the NaN / inf ones (a diverging run): they
    are left out of the other statistics, which are NaN (and the histogram absent) when no finite
    element is left, e.g. for an empty batch."""
    flat = x.detach().reshape(-1)
    if flat.dtype != torch.float32 and flat.dtype != torch.float64:
        flat = flat.float()
    n = flat.numel()
    nonfinite = 0
    mean, std = _moments(flat) if n else (math.nan, math.nan)
    if n and not (math.isfinite(mean) and math.isfinite(std)):  # only then look for NaN / inf
        finite = torch.isfinite(flat)
        nonfinite = n - int(finite.sum())
        flat = flat[finite]
        mean, std = _moments(flat) if flat.numel() else (math.nan, math.nan)
    out: dict[str, Any] = {
        "mean": mean,
        "std": std,
        "p2": math.nan,
        "p98": math.nan,
        "numel": n,
        "nonfinite": nonfinite,
    }
    k = flat.numel()
    if k == 0:
        return out
    sample = flat[:: max(1, k // max_sample)].cpu().numpy()
    k = sample.size
    ranks = [0, round(0.02 * (k - 1)), round(0.98 * (k - 1)), k - 1]
    part = np.partition(sample, ranks)  # order statistics in O(k), no full sort
    lo, p2, p98, hi = (float(part[r]) for r in ranks)
    out.update(p2=p2, p98=p98)
    sat = _saturation(module, sample)
    if sat is not None:
        out["dead" if isinstance(module, (nn.ReLU, nn.ReLU6)) else "saturated"] = sat
    if histogram:
        out["hist"] = _histogram(sample, lo, hi, bins)
        out["hist_range"] = [lo, hi]
    return out


def _is_param_layer(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False)) and not isinstance(
        m, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    )


class LayerStats:
    """Hooks that record per-layer statistics at the steps where ``active`` is true.

    Args:
        model: any module.
        modules: names of modules to watch (default: every parameterised layer and every
            activation module).
        bins: histogram bins.
        histograms: record histograms (slightly more work per recorded step).
        kinds: which of ``"activation"``, ``"preactivation"``, ``"backprop_grad"``,
            ``"weight_grad"`` to record. Default: all but ``"preactivation"`` when the model has
            activation modules (their outputs carry the same information, and each kind costs
            time), all four when it has none (activations written as functions).

    Use ``with LayerStats(model) as ls:`` or call ``remove()``. After a forward/backward at an
    active step, ``collect(step)`` returns (and, while ``keep_records`` is true, appends to
    ``records``) one dict per (layer, kind).
    """

    KINDS = ("activation", "preactivation", "backprop_grad", "weight_grad")

    def __init__(
        self,
        model: nn.Module,
        modules: Iterable[str] | None = None,
        bins: int = 50,
        histograms: bool = True,
        max_sample: int = 2048,
        kinds: Iterable[str] | None = None,
    ) -> None:
        self.model = model
        if kinds is None:
            has_act = any(isinstance(m, ACTIVATION_TYPES) for m in model.modules())
            kinds = [k for k in self.KINDS if not (has_act and k == "preactivation")]
        bad = [k for k in kinds if k not in self.KINDS]
        if bad:
            raise ValueError(f"unknown kinds {bad}; accepted: {list(self.KINDS)}")
        self.kinds = set(kinds)
        self.bins, self.histograms, self.max_sample = bins, histograms, max_sample
        self.active = True
        self.records: list[dict] = []
        self.keep_records = True
        self._pending: list[dict] = []
        self._handles = []
        named = dict(model.named_modules())
        if modules is None:
            chosen = [(n, m) for n, m in named.items() if n and (isinstance(m, ACTIVATION_TYPES) or _is_param_layer(m))]
            if not chosen and _is_param_layer(model):
                chosen = [("", model)]
        else:
            missing = [n for n in modules if n not in named]
            if missing:
                raise ValueError(f"modules {missing} not found in the model; known: {[n for n in named if n]}")
            chosen = [(n, named[n]) for n in modules]
        if not chosen:
            raise ValueError(f"{type(model).__name__} has no layers or activation modules to watch")
        self.layer_names = [n for n, _ in chosen]
        for name, m in chosen:
            self._handles.append(m.register_forward_hook(self._forward_hook(name, m)))
            if _is_param_layer(m) and "weight_grad" in self.kinds:
                for pname, p in m.named_parameters(recurse=False):
                    if p.dim() >= 2:
                        self._handles.append(p.register_hook(self._weight_hook(f"{name}.{pname}" if name else pname)))

    def _forward_hook(self, name: str, module: nn.Module):
        is_act = isinstance(module, ACTIVATION_TYPES)

        def hook(_m, _inp, out):
            if not self.active:
                return
            if isinstance(out, tuple):  # RNN modules return (output, h_n)
                out = out[0]
            if not isinstance(out, torch.Tensor):
                return
            kind = "activation" if is_act else "preactivation"
            if kind in self.kinds:
                self._pending.append(
                    {
                        "layer": name,
                        "kind": kind,
                        **tensor_stats(out, self.bins, self.max_sample, module if is_act else None, self.histograms),
                    }
                )
            if not is_act and out.requires_grad and "backprop_grad" in self.kinds:
                out.register_hook(self._grad_hook(name))

        return hook

    def _grad_hook(self, name: str):
        def hook(grad):
            if self.active:
                self._pending.append(
                    {
                        "layer": name,
                        "kind": "backprop_grad",
                        **tensor_stats(grad, self.bins, self.max_sample, None, self.histograms),
                    }
                )
            return None

        return hook

    def _weight_hook(self, name: str):
        def hook(grad):
            if self.active:
                self._pending.append(
                    {
                        "layer": name,
                        "kind": "weight_grad",
                        **tensor_stats(grad, self.bins, self.max_sample, None, self.histograms),
                    }
                )
            return None

        return hook

    def collect(self, step: int) -> list[dict]:
        """Stamp what the hooks saw since the last call with ``step``; append to ``records``."""
        out = [dict(r, step=step) for r in self._pending]
        self._pending = []
        if self.keep_records:
            self.records.extend(out)
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def layer_stats(model: nn.Module, inputs: torch.Tensor, loss_fn=None, targets=None, **kwargs) -> list[dict]:
    """One forward (and, with ``loss_fn(outputs, targets)``, backward) pass with hooks; returns
    the records. Gradients the pass creates are left in ``.grad`` as after any backward."""
    with LayerStats(model, **kwargs) as ls:
        out = model(inputs)
        if loss_fn is not None:
            loss = loss_fn(out, targets) if targets is not None else loss_fn(out)
            loss.backward()
        return ls.collect(0)
