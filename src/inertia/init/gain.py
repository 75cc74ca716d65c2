"""Activation gains: the factor that keeps the second moment of activations constant with depth.

Default convention (``"second_moment"``): for z ~ N(0, 1), the gain g of an activation phi solves

    g^2 * E[phi(z)^2] = 1,   i.e.  g = 1 / sqrt(E[phi(z)^2]),

so that a layer ``h = phi(W x)`` with ``Var(W) = g^2 / fan_in`` and unit-variance pre-activations
passes on ``E[h^2] * g^2 = 1`` to the next layer (He et al. 2015 for ReLU: g = sqrt(2); linear: 1).
The expectation is computed by adaptive quadrature on each half-line separately (so kinks at 0,
as in ReLU, leaky ReLU, softsign, do not cost accuracy), to better than 1e-8 relative.

``convention="torch"`` returns ``torch.nn.init.calculate_gain``'s table (tanh 5/3, selu 3/4, ...),
which is a mix of conventions; it exists for comparison and for reproducing torch code.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

import torch
import torch.nn.functional as F

from ._checks import check_number

__all__ = ["activation_fn", "gain", "known_activations", "second_moment"]

_NAMED: dict[str, Callable[..., Callable[[torch.Tensor], torch.Tensor]]] = {
    "linear": lambda: lambda x: x,
    "identity": lambda: lambda x: x,
    "sigmoid": lambda: torch.sigmoid,
    "tanh": lambda: torch.tanh,
    "relu": lambda: torch.relu,
    "leaky_relu": lambda negative_slope=0.01: lambda x: F.leaky_relu(x, negative_slope),
    "elu": lambda alpha=1.0: lambda x: F.elu(x, alpha),
    "selu": lambda: F.selu,
    "celu": lambda alpha=1.0: lambda x: F.celu(x, alpha),
    "gelu": lambda: F.gelu,
    "silu": lambda: F.silu,
    "swish": lambda: F.silu,
    "mish": lambda: F.mish,
    "softsign": lambda: F.softsign,
    "softplus": lambda beta=1.0: lambda x: F.softplus(x, beta),
    "hardtanh": lambda: F.hardtanh,
    "relu6": lambda: F.relu6,
    "sin": lambda: torch.sin,
}
# torch.nn.init.calculate_gain's linear-like names: a convolution (transposed or not) is linear.
_ALIASES = {
    "logistic": "sigmoid",
    "none": "linear",
    "conv1d": "linear",
    "conv2d": "linear",
    "conv3d": "linear",
    "conv_transpose1d": "linear",
    "conv_transpose2d": "linear",
    "conv_transpose3d": "linear",
}
_TORCH_NAMES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)


def known_activations() -> list[str]:
    """Activation names :func:`gain` and :func:`activation_fn` accept.

    Examples:

    >>> import inertia
    >>> {"tanh", "relu", "logistic"} <= set(inertia.init.known_activations())
    True
    """
    return sorted(set(_NAMED) | set(_ALIASES))


def activation_fn(name: str, **params: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise function for an activation name (``leaky_relu`` takes ``negative_slope``,
    ``elu`` and ``celu`` ``alpha``, ``softplus`` ``beta``; each a finite number).

    Examples:

    >>> import inertia
    >>> inertia.init.activation_fn("leaky_relu", negative_slope=0.1)(torch.tensor([-1.0, 2.0]))
    tensor([-0.1000,  2.0000])
    """
    key = _ALIASES.get(name, name) if isinstance(name, str) else None
    if key not in _NAMED:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(known_activations())}")
    accepted = list(inspect.signature(_NAMED[key]).parameters)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"activation {name!r} does not take parameters {unknown}; accepted: {accepted}")
    return _NAMED[key](**{k: check_number(k, v) for k, v in params.items()})


def second_moment(fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """E[fn(z)^2] for z ~ N(0, 1), by adaptive quadrature split at 0.

    Examples:

    >>> round(second_moment(torch.relu), 10)  # half of E[z^2]
    0.5
    """
    from scipy import integrate

    def integrand(z: float) -> float:
        with torch.no_grad():
            v = float(fn(torch.tensor([z], dtype=torch.float64))[0])
        return v * v * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)

    lo, _ = integrate.quad(integrand, -math.inf, 0.0, epsabs=1e-12, epsrel=1e-10, limit=200)
    hi, _ = integrate.quad(integrand, 0.0, math.inf, epsabs=1e-12, epsrel=1e-10, limit=200)
    return lo + hi


@lru_cache(maxsize=256)
def _named_gain(name: str, params: tuple) -> float:
    m2 = second_moment(activation_fn(name, **dict(params)))
    if not m2 > 0:
        raise ValueError(f"activation {name!r} has E[phi(z)^2] = {m2}; no gain can normalise it")
    return 1.0 / math.sqrt(m2)


def gain(
    activation: str | Callable[[torch.Tensor], torch.Tensor] = "linear",
    convention: str = "second_moment",
    **params: float,
) -> float:
    """The gain g for ``activation`` (a name or any callable on tensors).

    ``convention="second_moment"`` (default): g = 1 / sqrt(E[phi(z)^2]), z ~ N(0, 1); e.g.
    linear (and the convolutions, transposed or not) 1, relu sqrt(2), leaky_relu(a)
    sqrt(2 / (1 + a^2)), tanh 1.59254, selu 1.0 (SELU is built to keep the second moment; torch's
    table says 3/4).

    ``convention="torch"``: ``torch.nn.init.calculate_gain`` for the names torch knows.

    ``params``: activation parameters (finite numbers), e.g. ``negative_slope`` for
    ``leaky_relu``, ``alpha`` for ``elu``, ``beta`` for ``softplus``; only for named activations.

    Examples:

    >>> round(gain("tanh"), 5)
    1.59254
    >>> round(gain("relu") ** 2, 10), gain("conv_transpose2d")
    (2.0, 1.0)
    >>> round(gain("leaky_relu", negative_slope=0.2), 5)
    1.38675
    >>> round(gain("tanh", convention="torch"), 5)
    1.66667
    """
    if convention not in ("second_moment", "torch"):
        raise ValueError(f"convention must be 'second_moment' or 'torch', got {convention!r}")
    if convention == "torch":
        if not isinstance(activation, str) or activation not in _TORCH_NAMES:
            raise ValueError(f"convention='torch' knows only {', '.join(_TORCH_NAMES)}; got {activation!r}")
        accepted = ["negative_slope"] if activation == "leaky_relu" else []
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ValueError(
                f"activation {activation!r} (convention='torch') does not take parameters "
                f"{unknown}; accepted: {accepted}"
            )
        param = params.get("negative_slope")
        slope = None if param is None else check_number("negative_slope", param)
        return float(torch.nn.init.calculate_gain(cast(Any, activation), slope))  # a name checked above
    if callable(activation) and not isinstance(activation, str):
        if params:
            raise ValueError(
                f"parameters {sorted(params)} apply only to named activations; bind them into the callable instead"
            )
        m2 = second_moment(activation)
        if not m2 > 0:
            raise ValueError(f"activation {activation!r} has E[phi(z)^2] = {m2}; no gain can normalise it")
        return 1.0 / math.sqrt(m2)
    if not isinstance(activation, str):
        raise ValueError(f"activation must be a name or a callable, got {activation!r}")
    key = _ALIASES.get(activation, activation)
    activation_fn(key, **params)  # validates the name and parameters
    return _named_gain(key, tuple(sorted((k, float(v)) for k, v in params.items())))
