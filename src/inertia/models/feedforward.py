"""Feed-forward models: MLPs, deep autoencoders, deep linear networks."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "sigmoid": nn.Sigmoid, "logistic": nn.Sigmoid, "tanh": nn.Tanh, "softsign": nn.Softsign, "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU, "silu": nn.SiLU,
    "softplus": nn.Softplus, "hardtanh": nn.Hardtanh, "mish": nn.Mish,
}


def activation_module(name: str) -> Optional[nn.Module]:
    """An activation module by name; ``"linear"``/``None`` gives no module."""
    if name is None or name in ("linear", "identity", "none"):
        return None
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: linear, {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def _check_sizes(sizes: Sequence[int]) -> list:
    sizes = list(sizes)
    if len(sizes) < 2 or not all(isinstance(s, int) and s > 0 for s in sizes):
        raise ValueError(f"sizes must be at least two positive integers, got {sizes!r}")
    return sizes


def mlp(sizes: Sequence[int], activation: str = "tanh", out_activation: Optional[str] = None) -> nn.Sequential:
    """``nn.Sequential`` of ``Linear(sizes[i], sizes[i+1])`` with ``activation`` after every
    hidden layer and ``out_activation`` (default none) after the last. Parameter names are
    ``"<index>.weight"`` / ``"<index>.bias"``. Parameters: sum_i (sizes[i] + 1) * sizes[i+1]."""
    sizes = _check_sizes(sizes)
    activation_module(activation)  # validate early
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        act = activation_module(activation if i < len(sizes) - 2 else out_activation)
        if act is not None:
            layers.append(act)
    return nn.Sequential(*layers)


def deep_autoencoder(sizes: Sequence[int], activation: str = "sigmoid", out_activation: str = "sigmoid") -> nn.Sequential:
    """Encoder ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` units and a **linear** code
    layer, then the mirrored decoder ``sizes[-1] -> ... -> sizes[0]`` with ``activation`` hidden
    units and ``out_activation`` outputs (logistic, as in Hinton & Salakhutdinov 2006 and
    Sutskever et al. 2013, whose pixels are in [0, 1]). Untied weights.
    Parameters: 2 * sum_i sizes[i] * sizes[i+1] + 2 * sum_{i>0} sizes[i] - sizes[-1] + sizes[0]."""
    sizes = _check_sizes(sizes)
    activation_module(activation)
    activation_module(out_activation)
    layers: list[nn.Module] = []
    pairs = list(zip(sizes[:-1], sizes[1:]))
    for i, (a, b) in enumerate(pairs):
        layers.append(nn.Linear(a, b))
        if i < len(pairs) - 1:  # the code layer is linear
            layers.append(activation_module(activation))
    dec = [(b, a) for a, b in reversed(pairs)]
    for i, (a, b) in enumerate(dec):
        layers.append(nn.Linear(a, b))
        act = activation_module(activation if i < len(dec) - 1 else out_activation)
        if act is not None:
            layers.append(act)
    return nn.Sequential(*layers)


deep_autoencoder.curves = lambda **kw: deep_autoencoder([784, 400, 200, 100, 50, 25, 6], **kw)  # type: ignore[attr-defined]
deep_autoencoder.mnist = lambda **kw: deep_autoencoder([784, 1000, 500, 250, 30], **kw)  # type: ignore[attr-defined]
deep_autoencoder.faces = lambda **kw: deep_autoencoder([625, 2000, 1000, 500, 30], **kw)  # type: ignore[attr-defined]


class DeepLinear(nn.Module):
    """f(x) = alpha * W_L ... W_1 x with alpha = 1 / sqrt(width^(depth-1) * d_out) (Hu, Xiao &
    Pennington 2020, eq. 2). ``depth`` = L weight matrices: W_1 [width, d_in], W_2..W_{L-1}
    [width, width], W_L [d_out, width] (a single [d_out, d_in] matrix when L = 1). No biases.
    Parameters are ``layers.<i>.weight``; inputs are sample-major ``[n, d_in]``."""

    def __init__(self, d_in: int, width: int, depth: int, d_out: int) -> None:
        super().__init__()
        for name, v in (("d_in", d_in), ("width", width), ("depth", depth), ("d_out", d_out)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        dims = [d_in] + [width] * (depth - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))
        self.width, self.depth, self.d_out = width, depth, d_out
        self.alpha = 1.0 / math.sqrt(width ** (depth - 1) * d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.alpha * x


def deep_linear(d_in: int, width: int, depth: int, d_out: int) -> DeepLinear:
    """:class:`DeepLinear` (Hu et al. 2020)."""
    return DeepLinear(d_in, width, depth, d_out)
