"""How weights start: one variance-scaling primitive and the named schemes built on it,
activation gains, Haar-orthogonal and delta-orthogonal, Martens' sparse and echo-state inits,
LSUV, Hessian-norm calibration, and ``apply`` to initialize a whole model by rules.

All initializers work in place, return the tensor, and take ``generator``; the same generator
seed, shape and dtype give the same tensor (float64 tensors get other numbers than float32 ones).
They need floating-point tensors and leave tensors with no elements unchanged. Schemes are
registered by name (``get``, ``available``) so configs and sweeps can name them.

Examples:

>>> import torch, inertia
>>> w = torch.empty(3, 5)
>>> inertia.init.glorot_uniform_(w, generator=torch.Generator().manual_seed(0)).shape
torch.Size([3, 5])
>>> report = inertia.init.apply(torch.nn.Linear(5, 3), "glorot_uniform", bias=0.0)
>>> [row["scheme"] for row in report]
['glorot_uniform', 'constant(0)']
"""

from collections.abc import Callable
from typing import Any

from .apply import InitReport, apply
from .fans import fans
from .gain import activation_fn, gain, known_activations
from .lsuv import lsuv_
from .orthogonal import delta_orthogonal_, haar_orthogonal, orthogonal_
from .registry import REGISTRY, available, get, register
from .sparse import echo_state_, sparse_, spectral_radius
from .variance_scaling import (
    constant_,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    he_uniform_,
    lecun_normal_,
    lecun_uniform_,
    normal_,
    standard_uniform_,
    variance_scaling_,
)

_SCHEMES: dict[str, Callable[..., Any]] = {
    "variance_scaling": variance_scaling_,
    "glorot_uniform": glorot_uniform_,
    "glorot_normal": glorot_normal_,
    "xavier_uniform": glorot_uniform_,
    "xavier_normal": glorot_normal_,
    "standard_uniform": standard_uniform_,
    "he_uniform": he_uniform_,
    "he_normal": he_normal_,
    "kaiming_uniform": he_uniform_,
    "kaiming_normal": he_normal_,
    "lecun_uniform": lecun_uniform_,
    "lecun_normal": lecun_normal_,
    "normal": normal_,
    "constant": constant_,
    "orthogonal": orthogonal_,
    "delta_orthogonal": delta_orthogonal_,
    "sparse": sparse_,
    "echo_state": echo_state_,
}
for _name, _fn in _SCHEMES.items():
    register(_name, _fn)
del _name, _fn, _SCHEMES

try:  # Hessian-norm calibration (Temperoni et al. 2020) lives beside the diagnostics it uses
    from .hessian import hessian_calibrated_  # noqa: F401
except ImportError:  # pragma: no cover - written by the diagnostics part
    pass

__all__ = [
    "InitReport",
    "apply",
    "fans",
    "gain",
    "activation_fn",
    "known_activations",
    "lsuv_",
    "orthogonal_",
    "delta_orthogonal_",
    "haar_orthogonal",
    "sparse_",
    "echo_state_",
    "spectral_radius",
    "variance_scaling_",
    "glorot_uniform_",
    "glorot_normal_",
    "standard_uniform_",
    "he_uniform_",
    "he_normal_",
    "lecun_uniform_",
    "lecun_normal_",
    "normal_",
    "constant_",
    "get",
    "available",
    "register",
    "REGISTRY",
]
