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

Cost: on steps that are not recorded each hook only checks a flag. On a recorded step each hook
computes its tensor's moments over every element (two float32 reductions on the CPU; see
``_measure``) and copies a sample of evenly spaced elements (every ``n // max_sample``-th: from
``max_sample`` to ``2 max_sample - 1`` of them, all when ``n < 2 max_sample``); ``collect``
then summarizes every sample at once (percentiles, saturation, histograms): on the CPU from one
numpy sort of all samples, elsewhere in a few batched ops on the tensors' device with one
transfer to the host (the same numbers). Every tensor is
detached immediately, so no graph is retained. NaN and inf (a diverging run) are counted in
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


_SATURATION = ((nn.Sigmoid, 1), (nn.Tanh, 2), (nn.Softsign, 3), ((nn.ReLU, nn.ReLU6), 4))


def _saturation_code(module: nn.Module | None) -> int:
    """0: no saturation measure; 1 sigmoid, 2 tanh, 3 softsign (fraction saturated); 4 ReLU (fraction dead)."""
    for types, code in _SATURATION:
        if isinstance(module, types):
            return code
    return 0


def _moments_exact(flat: torch.Tensor) -> torch.Tensor:
    """``[finite count, mean, variance]`` over the finite elements, in float64 (float32 on MPS,
    which has no float64): the slow, exact path for tensors with NaN / inf or values whose squares
    overflow float32."""
    acc = flat.float() if flat.device.type == "mps" else flat.double()
    finite = torch.isfinite(acc)
    k = finite.sum()
    acc = torch.where(finite, acc, 0.0)
    mean = acc.sum() / k.clamp(min=1)
    d = torch.where(finite, acc - mean, 0.0)
    var = d.square().sum() / (k - 1).clamp(min=1)
    nan = torch.tensor(math.nan, dtype=acc.dtype, device=acc.device)
    mean = torch.where(k > 0, mean, nan)
    var = torch.where(k > 0, var, nan)
    return torch.stack([k.to(acc.dtype), mean, var])


class _Scratch:
    """One reusable buffer per device and dtype for the shifted values (no allocation, and so no
    page faults, per recorded tensor)."""

    def __init__(self) -> None:
        self._bufs: dict[tuple, torch.Tensor] = {}

    def take(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.device, like.dtype)
        buf = self._bufs.get(key)
        if buf is None or buf.numel() < like.numel():
            buf = self._bufs[key] = torch.empty(like.numel(), dtype=like.dtype, device=like.device)
        return buf[: like.numel()]

    def clear(self) -> None:
        self._bufs.clear()


def _measure(
    x: torch.Tensor, max_sample: int, scratch: _Scratch | None = None, exact: bool | None = None
) -> tuple[int, torch.Tensor | list[float], torch.Tensor]:
    """What a recorded tensor leaves behind, computed where it lives (no host sync on an
    accelerator): its element count, ``[finite count, mean, variance]`` and a sample of evenly
    spaced elements, every ``n // max_sample``-th (a copy, so that later in-place ops cannot change it).

    Moments on the CPU: float32 sums by torch's cascade summation (relative error about 1e-8,
    against float64 var_mean; 5-10x faster), in one of two forms chosen from the sample's sum and
    sum of squares: when its mean is small next to its spread (``c^2 <= var / 4``), the plain sums of ``x``
    and ``x^2`` (no cancellation to fear); otherwise the sums of ``x - c`` and ``(x - c)^2``, which
    keep the digits of a spread 1e-4 around 0.5 (the uncentred ``E[x^2] - E[x]^2`` in float32
    reports std 0 there). A non-finite sum (NaN, inf, or a square beyond float32) takes the exact
    float64 path over the finite elements. On other devices the exact path is taken always, since
    checking the sums would synchronize with the host (``exact`` forces either path)."""
    flat = x.detach().reshape(-1)
    if flat.dtype != torch.float32 and flat.dtype != torch.float64:
        flat = flat.float()
    n = flat.numel()
    if n == 0:
        return 0, [0.0, math.nan, math.nan], flat[:0].clone()
    sample = flat[:: max(1, n // max_sample)].clone()
    if exact if exact is not None else flat.device.type != "cpu":
        return n, _moments_exact(flat), sample
    s_sum, s_sq = torch.stack([sample.sum(), torch.dot(sample, sample)]).tolist()
    if not math.isfinite(s_sum + s_sq):  # NaN / inf in the sample, or squares beyond its dtype
        return n, _moments_exact(flat), sample
    buf = scratch.take(flat) if scratch is not None else torch.empty_like(flat)
    c = s_sum / sample.numel()
    if 5.0 * c * c <= s_sq / sample.numel():  # c^2 <= var / 4: the mean is small next to the spread
        cf, sums = 0.0, torch.stack([flat.sum(), torch.mul(flat, flat, out=buf).sum()])
    else:  # shift by the sample mean, rounded to the tensor's dtype (the value actually subtracted)
        cf = float(np.float32(c)) if flat.dtype == torch.float32 else c
        d = torch.sub(flat, cf, out=buf)
        sums = torch.stack([d.sum(), d.square_().sum()])
    s1, s2 = sums.tolist()
    if not math.isfinite(s1 + s2):
        return n, _moments_exact(flat), sample
    shift = s1 / n
    return n, [float(n), cf + shift, max(s2 - n * shift * shift, 0.0) / max(n - 1, 1)], sample


def _summaries(
    moments: list[torch.Tensor | list[float]], samples: list[torch.Tensor], codes: list[int], bins: int, histogram: bool
) -> list[list[float]]:
    """Every recorded tensor's summary: per tensor ``[finite count, mean, variance, lo, p2, p98,
    hi, saturation, sample size, histogram...]``. On the CPU by :func:`_summaries_host` (numpy's
    vectorized sort), elsewhere by :func:`_summaries_device` (no host sync until the one transfer
    of the results); both give the same numbers."""
    if samples[0].device.type == "cpu":
        return _summaries_host(moments, samples, codes, bins, histogram)
    return _summaries_device(moments, samples, codes, bins, histogram)


_SATURATION_BOUNDS = {1: (0.01, 0.99), 2: (-0.99, 0.99), 3: (-0.9, 0.9)}  # saturated: x < lo or x > hi


def _summaries_host(
    moments: list[torch.Tensor | list[float]], samples: list[torch.Tensor], codes: list[int], bins: int, histogram: bool
) -> list[list[float]]:
    """:func:`_summaries_device`'s numbers from one sort per sample on the host: the samples,
    padded with +inf (NaN and -inf made +inf, so that the finite elements are each row's sorted
    prefix), are sorted by numpy's vectorized sort (on the CPU faster than torch's ``topk`` of the few
    smallest, and than ``torch.sort``); the order statistics are
    read at their ranks, the saturated and dead fractions counted by binary search, and the
    histogram's bin of each element computed by the same float64 arithmetic."""
    L = len(moments)
    m = max(1, max(s.numel() for s in samples))
    dtype = np.float64 if any(s.dtype == torch.float64 for s in samples) else np.float32
    pad = np.full((L, m), np.inf, dtype=dtype)
    for row, s in zip(pad, samples, strict=True):
        row[: s.numel()] = s.numpy()
    pad[~np.isfinite(pad)] = np.inf
    srt = np.sort(pad, axis=1)
    k = np.count_nonzero(srt < np.inf, axis=1)
    km1 = np.maximum(k - 1, 0).astype(np.float64)
    rows = np.arange(L)
    q = np.stack(
        [
            srt[:, 0],
            srt[rows, np.round(0.02 * km1).astype(np.int64)],
            srt[rows, np.round(0.98 * km1).astype(np.int64)],
            srt[rows, km1.astype(np.int64)],
        ],
        1,
    ).astype(np.float64)
    q[k == 0] = math.nan
    x = srt.astype(np.float64)
    sat = np.zeros(L)
    for i, c in enumerate(codes):
        if c and k[i]:
            xi = x[i, : k[i]]
            if c == 4:
                hits = np.searchsorted(xi, 0.0, "right") - np.searchsorted(xi, 0.0, "left")
            else:
                lo, hi = _SATURATION_BOUNDS[c]
                hits = np.searchsorted(xi, lo, "left") + k[i] - np.searchsorted(xi, hi, "right")
            sat[i] = hits / k[i]
    if all(isinstance(r, list) for r in moments):
        mom = np.asarray(moments, dtype=np.float64)
    else:
        mom = np.stack([torch.as_tensor(r, dtype=torch.float64).numpy() for r in moments])
    parts = [mom.reshape(L, 3), q, sat[:, None], k[:, None].astype(np.float64)]
    if histogram:
        counts = np.zeros((L, bins))
        for i in range(L):
            if not k[i]:
                continue
            lo, hi = q[i, 0], q[i, 3]
            if hi > lo:
                with np.errstate(over="ignore", invalid="ignore"):
                    idx = np.clip(np.floor((x[i, : k[i]] - lo) * (bins / (hi - lo))), 0, bins - 1).astype(np.int64)
                counts[i] = np.bincount(idx, minlength=bins)
            else:
                counts[i, 0] = k[i]
        parts.append(counts)
    return np.concatenate(parts, 1).tolist()


def _summaries_device(
    moments: list[torch.Tensor | list[float]], samples: list[torch.Tensor], codes: list[int], bins: int, histogram: bool
) -> list[list[float]]:
    """Every recorded tensor's summary in a few batched ops and one transfer to the host (the
    row of :func:`_summaries`).

    The samples are padded into one ``[L, m]`` matrix; NaN and inf are left out (the ranks
    count the finite elements of each row). The order statistics come from one ``topk`` of the
    few smallest elements of the matrix and of its negation (a full sort of the samples cost
    several times more); the histogram has ``bins`` equal-width bins over ``[lo, hi]`` (every
    element in the first bin when ``hi == lo``) and is counted by ``scatter_add_`` (no
    data-dependent output size, so no sync)."""
    device = samples[0].device
    L = len(moments)
    m = max(1, max(s.numel() for s in samples))
    inf = math.inf
    dtype = torch.float64 if any(s.dtype == torch.float64 for s in samples) else torch.float32
    pad = torch.full((L, m), inf, dtype=dtype, device=device)
    for row, s in zip(pad, samples, strict=True):
        row[: s.numel()].copy_(s)
    valid = torch.isfinite(pad)
    k = valid.sum(1)
    km1 = (k - 1).clamp(min=0).to(torch.float64)
    r2 = torch.round(0.02 * km1).long()
    r98 = km1.long() - torch.round(0.98 * km1).long()  # the 98th percentile's rank from the top
    j = min(m, round(0.02 * (m - 1)) + 2)
    ends = torch.topk(torch.cat([torch.where(valid, pad, inf), torch.where(valid, -pad, inf)]), j, 1, largest=False)[0]
    low, high = ends[:L], -ends[L:]
    q = torch.stack([low[:, 0], low.gather(1, r2[:, None])[:, 0], high.gather(1, r98[:, None])[:, 0], high[:, 0]], 1)
    q = torch.where((k > 0)[:, None], q, math.nan).double()
    kf = k.clamp(min=1).to(torch.float64)
    x = torch.where(valid, pad, 0.0).double()  # the histogram's arithmetic cannot overflow in float64
    sat = torch.zeros(L, dtype=torch.float64, device=device)
    for c in set(codes) - {0}:
        rows = torch.tensor([i for i, ci in enumerate(codes) if ci == c], device=device)
        xs = x[rows]
        hit = {1: (xs < 0.01) | (xs > 0.99), 2: xs.abs() > 0.99, 3: xs.abs() > 0.9, 4: xs == 0}[c]
        sat[rows] = (hit & valid[rows]).sum(1) / kf[rows]
    if all(isinstance(r, list) for r in moments):
        mom = torch.tensor(moments, dtype=torch.float64, device=device)
    else:
        mom = torch.stack([torch.as_tensor(r, dtype=torch.float64, device=device) for r in moments])
    parts = [mom, q, sat[:, None], k[:, None].to(torch.float64)]
    if histogram:
        lo, hi = q[:, :1], q[:, 3:]
        width = torch.where(hi > lo, hi - lo, 1.0)
        idx = ((x - lo) * (bins / width)).floor().clamp(0, bins - 1).long()
        idx = torch.where(valid & (hi > lo), idx, 0)
        counts = torch.zeros(L, bins, dtype=torch.float64, device=device)
        counts.scatter_add_(1, idx, valid.to(torch.float64))
        parts.append(counts)
    return torch.cat(parts, 1).cpu().tolist()


def _record(numel: int, row: list[float], code: int, histogram: bool) -> dict:
    k, mean, var, lo, p2, p98, hi, sat, sample_size = row[:9]
    out: dict[str, Any] = {
        "mean": mean,
        "std": math.sqrt(var) if var == var else math.nan,
        "p2": p2,
        "p98": p98,
        "numel": numel,
        "nonfinite": numel - int(k),
    }
    if sample_size == 0:
        return out
    if code:
        out["dead" if code == 4 else "saturated"] = sat
    if histogram:
        out["hist"] = [int(c) for c in row[9:]]
        out["hist_range"] = [lo, hi]
    return out


def tensor_stats(
    x: torch.Tensor, bins: int = 50, max_sample: int = 2048, module: nn.Module | None = None, histogram: bool = True
) -> dict:
    """Statistics of ``x``: mean and std over all finite elements (shifted sums, exact to about
    1e-8 relative; see :func:`_measure`); 2nd/98th percentiles, fraction saturated (known
    activations) or dead (ReLU), and a histogram over the finite elements of a sample of evenly
    spaced elements, every ``n // max_sample``-th (exact when ``x`` has fewer than ``2 max_sample``).

    ``numel`` counts every element and ``nonfinite`` the NaN / inf ones (a diverging run): they
    are left out of the other statistics, which are NaN (and the histogram absent) when no finite
    element is left, e.g. for an empty batch."""
    n, mom, sample = _measure(x, max_sample)
    code = _saturation_code(module)
    return _record(n, _summaries([mom], [sample], [code], bins, histogram)[0], code, histogram)


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
        distributed: records of the global batch under ``torch.distributed`` (every process
            must call ``collect`` at the same steps; :mod:`.distributed`). The Monitor sets it
            under a process group; the doctor and ``layer_stats`` never do (they may run on one rank).

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
        distributed: bool = False,
    ) -> None:
        self.model = model
        # under torch.distributed: records of the global batch (diagnostics.distributed); weight
        # gradients read from .grad at collect, after DDP has averaged them
        self.distributed = bool(distributed)
        self._weights: list[tuple[str, torch.Tensor]] = []
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
        self._pending: list[tuple] = []
        self._calls: dict[str, int] = {}  # forward calls of each watched module since the last collect
        self._scratch = _Scratch()
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
                    if p.dim() >= 2 and self.distributed:
                        self._weights.append((f"{name}.{pname}" if name else pname, p))
                    elif p.dim() >= 2:
                        self._handles.append(
                            p.register_hook(self._grad_hook(f"{name}.{pname}" if name else pname, "weight_grad"))
                        )

    def _add(self, name: str, kind: str, x: torch.Tensor, code: int = 0) -> None:
        n, moments, sample = _measure(x, self.max_sample, self._scratch)
        self._pending.append((name, kind, code, n, moments, sample))

    def _forward_hook(self, name: str, module: nn.Module):
        is_act = isinstance(module, ACTIVATION_TYPES)
        code = _saturation_code(module) if is_act else 0

        def hook(_m, _inp, out):
            if not self.active:
                return
            if isinstance(out, tuple):  # RNN modules return (output, h_n)
                out = out[0]
            if not isinstance(out, torch.Tensor):
                return
            k = self._calls[name] = self._calls.get(name, 0) + 1
            label = name if k == 1 else f"{name}#{k}"  # a module used twice in a pass (ResNet's one relu)
            kind = "activation" if is_act else "preactivation"
            if kind in self.kinds:
                self._add(label, kind, out, code)
            if not is_act and out.requires_grad and "backprop_grad" in self.kinds:
                out.register_hook(self._grad_hook(label, "backprop_grad"))

        return hook

    def _grad_hook(self, name: str, kind: str):
        def hook(grad):
            if self.active:
                self._add(name, kind, grad)
            return None

        return hook

    def collect(self, step: int) -> list[dict]:
        """Summarize what the hooks saw since the last call (a few batched ops, one transfer to the
        host), stamp it with ``step``, and append it to ``records``."""
        pending, self._pending = self._pending, []
        self._calls = {}
        out: list[dict] = []
        if self.distributed:
            from .distributed import combine_pending

            for wname, w in self._weights:  # DDP's averaged gradient: the global one, the same everywhere
                if w.grad is not None:
                    pending.append((wname, "weight_grad", 0, *_measure(w.grad, self.max_sample, self._scratch)))
            pending = combine_pending(pending, self.max_sample)  # a collective: every process calls collect
        if pending:
            rows = _summaries(
                [p[4] for p in pending], [p[5] for p in pending], [p[2] for p in pending], self.bins, self.histograms
            )
            for (name, kind, code, n, _, _), row in zip(pending, rows, strict=True):
                out.append({"layer": name, "kind": kind, **_record(n, row, code, self.histograms), "step": step})
        if self.keep_records:
            self.records.extend(out)
        return out

    def discard(self) -> None:
        """Forget what the hooks saw since the last :meth:`collect` (a step that is not recorded)."""
        self._pending = []
        self._calls = {}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._scratch.clear()

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
