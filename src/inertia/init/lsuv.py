"""Layer-sequential unit-variance (LSUV) initialization (Mishkin & Matas 2016, Algorithm 1).

1. Initialize every weight layer with a Haar orthogonal matrix and zero biases.
2. From the input up, for each layer L: run the data through the model, measure the standard
   deviation v_L of L's output, and rescale W_L <- W_L * target / v_L, repeating until
   |v_L - target| < tol or ``max_iter`` rescalings were made.

Because layers are processed in forward order and a layer's rescaling only changes layers above
it, each layer ends within ``tol`` of the target (up to nonlinearity-induced drift).

Beyond MLPs and convnets: ``nn.MultiheadAttention``'s ``out_proj`` is never called as a module
(its parent uses the weight directly), so its output is read from the parent's output; recurrent
layers (RNN/LSTM/GRU weights ``weight_ih``/``weight_hh``) and any layer whose output is never seen
are not rescaled, and a warning lists them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..validation import check_integer, check_number
from .apply import iter_weight_layers, weight_of
from .fans import is_recurrent
from .orthogonal import orthogonal_

__all__ = ["lsuv_"]


def lsuv_(
    model: nn.Module,
    inputs: torch.Tensor,
    target_std: float = 1.0,
    tol: float = 0.05,
    max_iter: int = 10,
    generator: torch.Generator | None = None,
) -> dict:
    """LSUV-initialize ``model`` in place using the batch ``inputs``.

    Returns ``{layer name: {"std": final output std, "iterations": rescalings}}``. Layers whose
    weight has no elements (``nn.Linear(4, 0)``) have nothing to rescale and are left out.

    Examples:

    >>> import inertia
    >>> g = torch.Generator().manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(20, 50), nn.Tanh(), nn.Linear(50, 10))
    >>> result = inertia.init.lsuv_(model, torch.randn(256, 20, generator=g), generator=g)
    >>> {name: round(r["std"], 1) for name, r in result.items()}
    {'0': 1.0, '2': 1.0}
    """
    target_std = check_number("target_std", target_std, lo=0, lo_open=True)
    tol = check_number("tol", tol, lo=0, lo_open=True)
    max_iter = check_integer("max_iter", max_iter, lo=1)
    layers = list(iter_weight_layers(model))
    if not layers:
        raise ValueError(f"{type(model).__name__} has no weight layers (Linear, Conv, ...) for LSUV")
    for _, m in layers:
        orthogonal_(weight_of(m).data, generator=generator)
        b = getattr(m, "bias", None)
        if isinstance(b, torch.Tensor):
            with torch.no_grad():
                b.zero_()
    modules = dict(model.named_modules())
    out: dict[str, dict] = {}
    skipped = [f"{n} ({type(m).__name__}: recurrent weights)" for n, m in modules.items() if is_recurrent(m)]
    for name, m in layers:
        if weight_of(m).numel() == 0:
            continue
        r = _rescale(model, inputs, name, *_watch(modules, name, m), weight_of(m), target_std, tol, max_iter)
        if r is None:
            skipped.append(f"{name} ({type(m).__name__}: its output is never seen by a forward hook)")
        else:
            out[name] = r
    if skipped:
        warnings.warn(f"LSUV left these layers as they were: {'; '.join(skipped)}", stacklevel=2)
    return out


def _watch(modules: dict[str, nn.Module], name: str, layer: nn.Module) -> tuple[nn.Module, Callable[[Any], Any]]:
    """The module whose forward output is the layer's output, and how to read it from that output:
    the layer itself, or for attention's ``out_proj`` the ``nn.MultiheadAttention`` that uses it."""
    parent = modules.get(name.rsplit(".", 1)[0] if "." in name else "")
    if name.split(".")[-1] == "out_proj" and isinstance(parent, nn.MultiheadAttention):
        return parent, lambda out: out[0]
    return layer, lambda out: out


def _rescale(
    model: nn.Module,
    inputs: torch.Tensor,
    name: str,
    watched: nn.Module,
    read: Callable[[Any], Any],
    weight: torch.Tensor,
    target_std: float,
    tol: float,
    max_iter: int,
) -> dict | None:
    """Step 2 for one layer: rescale its weight until its output std is within ``tol`` of the
    target; ``{"std": final std, "iterations": rescalings}``, or None when its output is never seen."""
    captured: dict[str, torch.Tensor] = {}
    handle = watched.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", read(out)))
    try:
        it = 0
        while True:
            with torch.no_grad():
                model(inputs)
            if "out" not in captured:
                return None
            std = float(captured["out"].float().std())
            if not math.isfinite(std) or std == 0.0:
                raise ValueError(f"layer {name!r} output std is {std}; LSUV cannot rescale it")
            if abs(std - target_std) < tol or it >= max_iter:
                return {"std": std, "iterations": it}
            with torch.no_grad():
                weight.mul_(target_std / std)
            it += 1
    finally:
        handle.remove()
