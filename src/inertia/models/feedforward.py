"""Feed-forward models: MLPs, deep autoencoders, deep linear networks."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "CURVES_SIZES",
    "FACES_SIZES",
    "LINEAR_NAMES",
    "MNIST_SIZES",
    "DeepLinear",
    "ScaledLinear",
    "activation_module",
    "deep_autoencoder",
    "deep_linear",
    "mlp",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softsign": nn.Softsign,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "hardtanh": nn.Hardtanh,
    "mish": nn.Mish,
}
LINEAR_NAMES = ("linear", "identity", "none")


def activation_module(name: str | None) -> nn.Module | None:
    """A new activation module by name (``ACTIVATIONS``); ``"linear"``, ``"identity"``,
    ``"none"`` or None give no module.

    Examples:

    >>> activation_module("tanh"), activation_module("linear")
    (Tanh(), None)
    """
    if name is None or name in LINEAR_NAMES:
        return None
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: linear, {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    try:
        sizes = list(sizes)
    except TypeError:
        raise ValueError(f"sizes must be a sequence of at least two positive integers, got {sizes!r}") from None
    if len(sizes) < 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
        raise ValueError(f"sizes must be at least two positive integers, got {sizes!r}")
    return sizes


def mlp(sizes: Sequence[int], activation: str = "tanh", out_activation: str | None = None) -> nn.Sequential:
    """A multilayer perceptron (as in Glorot & Bengio 2010): ``nn.Sequential`` of
    ``Linear(sizes[i], sizes[i+1])``, each hidden one followed by an ``activation`` module and the
    last by ``out_activation`` (default: none, i.e. logits or a linear output).

    Being a flat ``nn.Sequential`` of ``Linear`` and activation modules, every layer is visible
    to hooks (``inertia.diagnostics``). Parameter names: ``"<index>.weight"`` ``[out, in]`` and
    ``"<index>.bias"`` ``[out]``, at the ``Linear`` modules' indices. Parameters:
    sum_i (sizes[i] + 1) * sizes[i+1]. Input ``[n, sizes[0]]``, output ``[n, sizes[-1]]``.

    Examples:

    >>> import inertia
    >>> model = inertia.models.mlp([784, 500, 10], activation="tanh")
    >>> model
    Sequential(
      (0): Linear(in_features=784, out_features=500, bias=True)
      (1): Tanh()
      (2): Linear(in_features=500, out_features=10, bias=True)
    )
    >>> model(torch.zeros(2, 784)).shape
    torch.Size([2, 10])
    """
    sizes = _check_sizes(sizes)
    activation_module(activation)  # validate both names before building anything
    activation_module(out_activation)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(a, b))
        act = activation_module(activation if i < len(sizes) - 2 else out_activation)
        if act is not None:
            layers.append(act)
    return nn.Sequential(*layers)


def deep_autoencoder(
    sizes: Sequence[int], activation: str = "sigmoid", out_activation: str = "sigmoid"
) -> nn.Sequential:
    """Deep autoencoder (Hinton & Salakhutdinov 2006; trained by Sutskever et al. 2013): encoder
    ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` units and a **linear** code layer, then
    the mirrored decoder ``sizes[-1] -> ... -> sizes[0]`` with ``activation`` hidden units and
    ``out_activation`` output units. Untied weights, one flat ``nn.Sequential``.

    Output unit: logistic by default, as in the papers' CURVES and MNIST autoencoders, whose
    pixels are in [0, 1] (``.faces()`` defaults to linear outputs, see there).

    Parameters: 2 sum_i sizes[i] sizes[i+1] (weights) + sum_{i>0} sizes[i] (encoder biases) +
    sum_{i<last} sizes[i] (decoder biases). Input and output ``[n, sizes[0]]``.

    The papers' architectures: ``deep_autoencoder.curves()`` (784-400-200-100-50-25-6),
    ``.mnist()`` (784-1000-500-250-30), ``.faces()`` (625-2000-1000-500-30).

    Examples:

    >>> import inertia
    >>> model = inertia.models.deep_autoencoder([784, 400, 6])
    >>> [m.out_features for m in model if isinstance(m, nn.Linear)]  # encoder, then the mirror
    [400, 6, 400, 784]
    >>> model(torch.rand(2, 784)).shape
    torch.Size([2, 784])
    """
    sizes = _check_sizes(sizes)
    activation_module(activation)
    activation_module(out_activation)
    layers: list[nn.Module] = []
    pairs = list(zip(sizes[:-1], sizes[1:], strict=False))
    for i, (a, b) in enumerate(pairs):
        layers.append(nn.Linear(a, b))
        act = activation_module(activation) if i < len(pairs) - 1 else None  # the code layer is linear
        if act is not None:
            layers.append(act)
    mirrored = [(b, a) for a, b in reversed(pairs)]
    for i, (a, b) in enumerate(mirrored):
        layers.append(nn.Linear(a, b))
        act = activation_module(activation if i < len(mirrored) - 1 else out_activation)
        if act is not None:
            layers.append(act)
    return nn.Sequential(*layers)


CURVES_SIZES = (784, 400, 200, 100, 50, 25, 6)
MNIST_SIZES = (784, 1000, 500, 250, 30)
FACES_SIZES = (625, 2000, 1000, 500, 30)


def _curves_autoencoder(activation: str = "sigmoid", out_activation: str = "sigmoid") -> nn.Sequential:
    """The CURVES autoencoder of Hinton & Salakhutdinov (2006) and Sutskever et al. (2013):
    784-400-200-100-50-25-6 and its mirror, logistic units, linear code, logistic outputs."""
    return deep_autoencoder(CURVES_SIZES, activation, out_activation)


def _mnist_autoencoder(activation: str = "sigmoid", out_activation: str = "sigmoid") -> nn.Sequential:
    """The MNIST autoencoder of Hinton & Salakhutdinov (2006) and Sutskever et al. (2013):
    784-1000-500-250-30 and its mirror, logistic units, linear code, logistic outputs."""
    return deep_autoencoder(MNIST_SIZES, activation, out_activation)


def _faces_autoencoder(activation: str = "sigmoid", out_activation: str = "linear") -> nn.Sequential:
    """The FACES autoencoder of Hinton & Salakhutdinov (2006) and Sutskever et al. (2013):
    625-2000-1000-500-30 and its mirror, logistic hidden units, linear code. Outputs are linear
    by default: the FACES pixels are real values (Gaussian visible units in Hinton &
    Salakhutdinov 2006), not intensities in [0, 1]; pass ``out_activation="sigmoid"`` for
    logistic outputs."""
    return deep_autoencoder(FACES_SIZES, activation, out_activation)


deep_autoencoder.curves = _curves_autoencoder  # type: ignore[attr-defined]
deep_autoencoder.mnist = _mnist_autoencoder  # type: ignore[attr-defined]
deep_autoencoder.faces = _faces_autoencoder  # type: ignore[attr-defined]


class ScaledLinear(nn.Linear):
    """A bias-free ``nn.Linear`` whose output is multiplied by a constant: y = scale * x W^T.
    Hooks on it see the scaled output; the parameter is still ``weight`` [out, in].

    Examples:

    >>> layer = ScaledLinear(3, 2, scale=0.5)
    >>> x = torch.randn(4, 3)
    >>> torch.allclose(layer(x), 0.5 * x @ layer.weight.T)
    True
    """

    def __init__(self, in_features: int, out_features: int, scale: float) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight) * self.scale

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale:.4g}"


class DeepLinear(nn.Module):
    """Deep linear network of Hu, Xiao & Pennington (2020, eq. 2):

        f(x) = alpha W_L ... W_1 x,    alpha = 1 / sqrt(m^(L-1) d_y)

    with width m, depth L (the number of weight matrices) and output size d_y. W_1 is
    [m, d_in], W_2 .. W_{L-1} are [m, m], W_L is [d_y, m] (a single [d_y, d_in] matrix when
    L = 1). No biases. Parameter names ``layers.<i>.weight``; torch's default ``Linear`` init
    until an init scheme is applied (the paper: Haar-orthogonal scaled by sqrt(m), or N(0, 1)).

    alpha is applied one factor per layer: each layer is a :class:`ScaledLinear` computing
    W_i h / sqrt(fan_out_i), whose product is alpha W_L ... W_1 but which never overflows at large
    depth (the product of L N(0, 1) matrices grows like m^(L/2)); hooks see these scaled layer
    outputs. Input ``[n, d_in]`` (sample-major), output ``[n, d_out]``.
    """

    def __init__(self, d_in: int, width: int, depth: int, d_out: int) -> None:
        super().__init__()
        for name, v in (("d_in", d_in), ("width", width), ("depth", depth), ("d_out", d_out)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        dims = [d_in] + [width] * (depth - 1) + [d_out]
        self.layers = nn.ModuleList(
            ScaledLinear(a, b, 1.0 / math.sqrt(b)) for a, b in zip(dims[:-1], dims[1:], strict=False)
        )
        self.d_in, self.width, self.depth, self.d_out = d_in, width, depth, d_out
        # log first: width ** (depth - 1) overflows a float beyond about 2^1024
        self.log_alpha = -0.5 * ((depth - 1) * math.log(width) + math.log(d_out))
        self.alpha = math.exp(self.log_alpha)  # 0.0 once it underflows; the forward never uses it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)  # [n, width] ... [n, d_out]
        return x

    def end_to_end(self) -> torch.Tensor:
        """alpha W_L ... W_1, ``[d_out, d_in]``, so that f(x) = x @ end_to_end().T.

        Examples:

        >>> net = DeepLinear(d_in=8, width=16, depth=4, d_out=2)
        >>> x = torch.randn(5, 8)
        >>> torch.allclose(net(x), x @ net.end_to_end().T, atol=1e-6)
        True
        """
        layers = [cast(ScaledLinear, layer) for layer in self.layers]
        w = layers[0].weight * layers[0].scale
        for layer in layers[1:]:
            w = (layer.weight * layer.scale) @ w
        return w

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, width={self.width}, depth={self.depth}, d_out={self.d_out}, alpha={self.alpha:.3g}"


def deep_linear(d_in: int, width: int, depth: int, d_out: int) -> DeepLinear:
    """:class:`DeepLinear` (Hu, Xiao & Pennington 2020): f(x) = alpha W_L ... W_1 x with
    alpha = 1/sqrt(width^(depth-1) * d_out).

    Examples:

    >>> import inertia
    >>> net = inertia.models.deep_linear(d_in=1024, width=64, depth=10, d_out=10)
    >>> net(torch.zeros(16, 1024)).shape
    torch.Size([16, 10])
    >>> round(net.log_alpha, 4)  # -((depth - 1) log width + log d_out) / 2
    -19.8663
    """
    return DeepLinear(d_in, width, depth, d_out)


def replace_modules(model: nn.Module, old: type[nn.Module], new: Callable[[], nn.Module]) -> int:
    """Replace every submodule of type ``old`` in ``model`` by ``new()`` in place (e.g. each
    ``nn.Sigmoid`` by ``nn.Tanh``: Glorot & Bengio 2010's fix for deep sigmoid nets); returns how
    many were replaced.

    Examples:
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Sequential(nn.Linear(4, 4), nn.Sigmoid()))
        >>> replace_modules(net, nn.Sigmoid, nn.Tanh)
        2
        >>> [type(m).__name__ for m in net.modules() if not list(m.children())]
        ['Linear', 'Tanh', 'Linear', 'Tanh']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"replace_modules needs an nn.Module, got {type(model).__name__}")
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, old):
                setattr(parent, name, new())
                count += 1
    return count
