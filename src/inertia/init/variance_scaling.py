"""Variance scaling: the one primitive behind every fan-based initialization.

``variance_scaling_(W, scale, mode, distribution)`` draws W i.i.d. with mean 0 and

    Var(W) = scale / fan,   fan = fan_in | fan_out | (fan_in + fan_out) / 2   (``mode``),

from a normal, a normal truncated at two standard deviations, or a uniform distribution
(as JAX's ``variance_scaling``). The named schemes are one-line specializations:

=====================  ==========================  ===================================
name                   Var(W)                      reference
=====================  ==========================  ===================================
``standard_uniform_``  g^2 / (3 fan_in), uniform   Glorot & Bengio 2010, eq. 1
``glorot_uniform_``    2 g^2 / (fan_in + fan_out)  Glorot & Bengio 2010, eq. 16
``glorot_normal_``     2 g^2 / (fan_in + fan_out)  normal variant of the above
``he_uniform_``        g^2 / fan_in, g = sqrt(2)   He et al. 2015
``he_normal_``         g^2 / fan_in, g = sqrt(2)   He et al. 2015
``lecun_uniform_``     g^2 / fan_in, g = 1         LeCun et al. 1998
``lecun_normal_``      g^2 / fan_in, g = 1         LeCun et al. 1998
=====================  ==========================  ===================================

``standard_uniform_`` is U[-g/sqrt(fan_in), g/sqrt(fan_in)]; with g = 1 it is also PyTorch's
default for ``nn.Linear`` weights (kaiming_uniform with a = sqrt(5)).

Random numbers are drawn in float32 (float64 for float64 tensors) on the CPU from ``generator``
and copied into the tensor, so every floating dtype and every device works, and a seed gives the
same tensor on every device. float16, bfloat16 and float32 tensors get the same float32 draws
(rounded to their dtype); float64 tensors get different numbers (drawn in float64). Integer
tensors are rejected (``TypeError``); a tensor with no elements is returned unchanged.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_number, nothing_to_fill, work_dtype
from .fans import Fans, tensor_fans

__all__ = [
    "DISTRIBUTIONS",
    "MODES",
    "TRUNCATED_NORMAL_STD",
    "constant_",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "normal_",
    "standard_uniform_",
    "variance_scaling_",
]

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")

# Std of a standard normal truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))),
# with phi, Phi the standard normal pdf and cdf. Dividing by it restores unit variance.
TRUNCATED_NORMAL_STD = 0.87962566103423978


def _sample(
    tensor: torch.Tensor,
    distribution: str,
    std: float,
    generator: torch.Generator | None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draws with mean 0 and standard deviation ``std``, into ``out`` or a new CPU buffer shaped
    like ``tensor``."""
    buf = out if out is not None else torch.empty(tensor.shape, dtype=work_dtype(tensor))
    if distribution == "normal":
        buf.normal_(0.0, std, generator=generator)
    elif distribution == "uniform":
        a = math.sqrt(3.0) * std
        buf.uniform_(-a, a, generator=generator)
    else:  # truncated normal at +-2 sigma by inverse cdf, rescaled to the requested std
        lo, hi = 0.5 * (1 + math.erf(-2 / math.sqrt(2))), 0.5 * (1 + math.erf(2 / math.sqrt(2)))
        buf.uniform_(2 * lo - 1, 2 * hi - 1, generator=generator)
        buf.erfinv_().mul_(math.sqrt(2.0) * std / TRUNCATED_NORMAL_STD).clamp_(
            -2 * std / TRUNCATED_NORMAL_STD, 2 * std / TRUNCATED_NORMAL_STD
        )
    return buf


def variance_scaling_(
    tensor: torch.Tensor,
    scale: float = 1.0,
    mode: str = "fan_in",
    distribution: str = "truncated_normal",
    generator: torch.Generator | None = None,
    *,
    fans: Fans | None = None,
) -> torch.Tensor:
    """Fill ``tensor`` in place with Var(W) = scale / fan; return it.

    Args:
        tensor: weight of shape ``[out, in, *kernel]`` (at least 2-D).
        scale: variance numerator (``gain**2`` for the named schemes); must be >= 0.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"`` (mean of the two).
        distribution: ``"truncated_normal"`` (at 2 std, variance corrected), ``"normal"``,
            ``"uniform"``.
        generator: source of randomness; the same seed gives the same tensor.
        fans: ``(fan_in, fan_out)`` to use instead of reading them off the shape; pass
            :func:`inertia.init.fans` of the module for grouped/transposed convolutions and
            recurrent gates (``inertia.init.apply`` does this for you).

    Examples:

    >>> import inertia
    >>> w = torch.empty(256, 512)
    >>> inertia.init.variance_scaling_(w, 2.0, "fan_in", "normal", generator=torch.Generator().manual_seed(0)).shape
    torch.Size([256, 512])
    >>> round(w.var().item() * 512 / 2.0, 2)  # Var(W) = scale / fan_in
    1.0
    """
    scale = check_number("scale", scale, nonneg=True)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
    fan_in, fan_out = fans if fans is not None else tensor_fans(tensor)  # rejects < 2 dims
    if nothing_to_fill(tensor, "variance_scaling_"):
        return tensor
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    if fan <= 0:
        raise ValueError(f"{mode} must be positive, got {fan} for shape {tuple(tensor.shape)}")
    std = math.sqrt(scale / fan)
    with torch.no_grad():
        _fill(tensor, distribution, std, generator)
    return tensor


def _fill(tensor: torch.Tensor, distribution: str, std: float, generator: torch.Generator | None) -> None:
    # float32/float64 CPU tensors are drawn into directly; others via a float buffer (same numbers).
    if tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64) and tensor.is_contiguous():
        _sample(tensor, distribution, std, generator, out=tensor)
    else:
        tensor.copy_(_sample(tensor, distribution, std, generator))


def _gain(g: float) -> float:
    return check_number("gain", g, nonneg=True)


def glorot_uniform_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *, fans: Fans | None = None
) -> torch.Tensor:
    """Glorot & Bengio's normalized init (2010, eq. 16): U[-a, a] with a = g sqrt(6 / (fan_in + fan_out)).

    Examples:

    >>> import inertia
    >>> w = torch.empty(3, 5)
    >>> inertia.init.glorot_uniform_(w).shape
    torch.Size([3, 5])
    >>> bool(w.abs().max() <= (6 / (5 + 3)) ** 0.5)
    True
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_avg", "uniform", generator, fans=fans)


def glorot_normal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *, fans: Fans | None = None
) -> torch.Tensor:
    """Normal with Var = 2 g^2 / (fan_in + fan_out) (Glorot & Bengio 2010's variance, normal law).

    Examples:

    >>> import inertia
    >>> w = torch.empty(300, 500)
    >>> _ = inertia.init.glorot_normal_(w, generator=torch.Generator().manual_seed(0))
    >>> round(w.var().item() * (300 + 500) / 2, 1)
    1.0
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_avg", "normal", generator, fans=fans)


def standard_uniform_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *, fans: Fans | None = None
) -> torch.Tensor:
    """Glorot & Bengio's "standard" init (2010, eq. 1): U[-g/sqrt(fan_in), g/sqrt(fan_in)], Var = g^2 / (3 fan_in).

    Examples:

    >>> import inertia
    >>> w = torch.empty(3, 5)
    >>> inertia.init.standard_uniform_(w).shape
    torch.Size([3, 5])
    >>> bool(w.abs().max() <= 1 / 5**0.5)
    True
    """
    return variance_scaling_(tensor, _gain(gain) ** 2 / 3, "fan_in", "uniform", generator, fans=fans)


def he_uniform_(
    tensor: torch.Tensor,
    gain: float = math.sqrt(2.0),
    generator: torch.Generator | None = None,
    *,
    fans: Fans | None = None,
) -> torch.Tensor:
    """He et al. 2015: uniform with Var = g^2 / fan_in, g = sqrt(2) for ReLU.

    Examples:

    >>> import inertia
    >>> w = torch.empty(3, 5)
    >>> inertia.init.he_uniform_(w).shape
    torch.Size([3, 5])
    >>> bool(w.abs().max() <= (6 / 5) ** 0.5)  # a = g sqrt(3 / fan_in)
    True
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_in", "uniform", generator, fans=fans)


def he_normal_(
    tensor: torch.Tensor,
    gain: float = math.sqrt(2.0),
    generator: torch.Generator | None = None,
    *,
    fans: Fans | None = None,
) -> torch.Tensor:
    """He et al. 2015: normal with Var = g^2 / fan_in, g = sqrt(2) for ReLU.

    Examples:

    >>> import inertia
    >>> w = torch.empty(400, 500)
    >>> _ = inertia.init.he_normal_(w, generator=torch.Generator().manual_seed(0))
    >>> round(w.var().item() * 500 / 2, 1)
    1.0
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_in", "normal", generator, fans=fans)


def lecun_uniform_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *, fans: Fans | None = None
) -> torch.Tensor:
    """LeCun et al. 1998: uniform with Var = g^2 / fan_in.

    Examples:

    >>> import inertia
    >>> w = torch.empty(3, 5)
    >>> inertia.init.lecun_uniform_(w).shape
    torch.Size([3, 5])
    >>> bool(w.abs().max() <= (3 / 5) ** 0.5)
    True
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_in", "uniform", generator, fans=fans)


def lecun_normal_(
    tensor: torch.Tensor, gain: float = 1.0, generator: torch.Generator | None = None, *, fans: Fans | None = None
) -> torch.Tensor:
    """LeCun et al. 1998: normal with Var = g^2 / fan_in (truncated at 2 std, as in JAX/Keras).

    Examples:

    >>> import inertia
    >>> w = torch.empty(3, 5)
    >>> inertia.init.lecun_normal_(w).shape
    torch.Size([3, 5])
    >>> bool(w.abs().max() <= 2 / 5**0.5 / inertia.init.variance_scaling.TRUNCATED_NORMAL_STD)
    True
    """
    return variance_scaling_(tensor, _gain(gain) ** 2, "fan_in", "truncated_normal", generator, fans=fans)


def normal_(tensor: torch.Tensor, std: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """N(0, std^2) i.i.d. (the paper's fixed-std inits, e.g. Temperoni et al.'s std in {1e-5, 0.01, 1}).

    Examples:

    >>> import inertia
    >>> w = torch.empty(200, 500)
    >>> _ = inertia.init.normal_(w, std=0.01, generator=torch.Generator().manual_seed(0))
    >>> round(w.std().item(), 3)
    0.01
    """
    std = check_number("std", std, nonneg=True)
    if nothing_to_fill(tensor, "normal_"):
        return tensor
    with torch.no_grad():
        _fill(tensor, "normal", std, generator)
    return tensor


def constant_(tensor: torch.Tensor, value: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill with ``value`` (used for biases; ``generator`` is accepted and ignored).

    Any dtype works, integer tensors included, as long as the dtype holds ``value`` exactly.

    Examples:

    >>> import inertia
    >>> inertia.init.constant_(torch.empty(3), 0.5)
    tensor([0.5000, 0.5000, 0.5000])
    """
    value = check_number("value", value)
    if not (tensor.is_floating_point() or tensor.is_complex()) and not value.is_integer():
        raise ValueError(
            f"value {value!r} is not a whole number, so a {tensor.dtype} tensor cannot hold it; "
            f"use a floating-point tensor or a whole value"
        )
    with torch.no_grad():
        tensor.fill_(value)
    return tensor
