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

from .apply import iter_weight_layers
from .orthogonal import orthogonal_


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
    """
    if not isinstance(target_std, (int, float)) or not math.isfinite(target_std) or target_std <= 0:
        raise ValueError(f"target_std must be a positive number, got {target_std!r}")
    if not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    layers = list(iter_weight_layers(model))
    if not layers:
        raise ValueError(f"{type(model).__name__} has no weight layers (Linear, Conv, ...) for LSUV")
    for _, m in layers:
        orthogonal_(m.weight.data, generator=generator)
        b = getattr(m, "bias", None)
        if isinstance(b, torch.Tensor):
            with torch.no_grad():
                b.zero_()
    result = {}
    for name, m in layers:
        if m.weight.numel() == 0:
            continue
        captured = {}
        handle = m.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
        try:
            it = 0
            while True:
                with torch.no_grad():
                    model(inputs)
                std = float(captured["out"].float().std())
                if not math.isfinite(std) or std == 0.0:
                    raise ValueError(f"layer {name!r} output std is {std}; LSUV cannot rescale it")
                if abs(std - target_std) < tol or it >= max_iter:
                    break
                with torch.no_grad():
                    m.weight.mul_(target_std / std)
                it += 1
        finally:
            handle.remove()
        result[name] = {"std": std, "iterations": it}
    return result
