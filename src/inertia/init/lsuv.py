"""Layer-sequential unit-variance (LSUV) initialization (Mishkin & Matas 2016, Algorithm 1).

1. Initialize every weight layer with a Haar orthogonal matrix and zero biases.
2. From the input up, for each layer L: run the data through the model, measure the standard
   deviation v_L of L's output, and rescale W_L <- W_L * target / v_L, repeating until
   |v_L - target| < tol or ``max_iter`` rescalings were made.

Because layers are processed in forward order and a layer's rescaling only changes layers above
it, each layer ends within ``tol`` of the target (up to nonlinearity-induced drift).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_integer, check_number
from .apply import iter_weight_layers, weight_of
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
    return {
        name: _rescale(model, inputs, name, m, target_std, tol, max_iter)
        for name, m in layers
        if weight_of(m).numel() > 0
    }


def _rescale(
    model: nn.Module, inputs: torch.Tensor, name: str, layer: nn.Module, target_std: float, tol: float, max_iter: int
) -> dict:
    """Step 2 for one layer: rescale its weight until its output std is within ``tol`` of the
    target; ``{"std": final std, "iterations": rescalings}``."""
    weight = weight_of(layer)
    captured: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
    try:
        it = 0
        while True:
            with torch.no_grad():
                model(inputs)
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
