"""Quantities measured on any ``torch.nn.Module``: per-layer activation and gradient statistics,
Jacobian singular values, and curvature of the loss (Hessian-vector products, top eigenvalues,
trace, Frobenius norm, spectral density), a Monitor that records them during training, and plots.

What is measured (functions here), when (:class:`Monitor`), and how it is shown (:mod:`.plots`)
are separate.
"""

from . import plots, state
from .curvature import (
    EigenResult,
    EstimateResult,
    HessianOperator,
    SpectralDensity,
    default_memory_budget,
    ggn_vp,
    hessian_eigenvalues,
    hessian_frobenius_norm,
    hessian_spectral_density,
    hessian_trace,
    hvp,
)
from .jacobians import JacobianSpectrum, blocks_of, input_output_jacobian_spectrum, layer_jacobian_singular_values
from .layers import LayerStats, layer_stats, tensor_stats
from .monitor import QUANTITIES, Monitor

__all__ = [
    "hvp",
    "ggn_vp",
    "HessianOperator",
    "hessian_eigenvalues",
    "hessian_trace",
    "hessian_frobenius_norm",
    "hessian_spectral_density",
    "default_memory_budget",
    "EigenResult",
    "EstimateResult",
    "SpectralDensity",
    "layer_jacobian_singular_values",
    "input_output_jacobian_spectrum",
    "JacobianSpectrum",
    "blocks_of",
    "LayerStats",
    "layer_stats",
    "tensor_stats",
    "Monitor",
    "QUANTITIES",
    "plots",
    "state",
]
