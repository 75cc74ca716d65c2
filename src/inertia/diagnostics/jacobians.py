"""Singular values of layer-to-layer and input-output Jacobians (Glorot & Bengio 2010, section 4.2;
Pennington et al. 2017's dynamical isometry).

A *block* is one parameterised module followed by the parameter-free modules after it (its
activation), so for an MLP h_i = phi(W_i h_{i-1} + b_i) and the block Jacobian is
J_i = dh_i / dh_{i-1} = diag(phi'(a_i)) W_i. Jacobians are computed exactly, per example, with
``torch.func.jacrev`` vectorised over the examples by ``vmap``. Glorot & Bengio report the mean
singular value: about 0.8 with the normalized init, about 0.5 with the standard init (5 tanh
layers of 1000 units).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import jacrev, vmap

__all__ = [
    "JacobianSpectrum",
    "blocks_of",
    "input_output_jacobian_spectrum",
    "jacobian_singular_values",
    "layer_jacobian_singular_values",
]


@dataclass
class JacobianSpectrum:
    """Singular values of one Jacobian, per example: ``singular_values`` [examples, k]."""

    name: str
    singular_values: torch.Tensor

    @property
    def mean(self) -> float:
        return float(self.singular_values.mean())

    @property
    def std(self) -> float:
        return float(self.singular_values.std())

    @property
    def condition_number(self) -> float:
        """The median over examples of s_max / s_min."""
        s = self.singular_values
        return float((s.max(dim=1).values / s.min(dim=1).values.clamp_min(1e-300)).median())


def blocks_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Split an ``nn.Sequential`` into blocks (a parameterised module and the parameter-free
    modules after it). Leading parameter-free modules (e.g. ``Flatten``) join the first block."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"layer Jacobians need an nn.Sequential (or pass blocks=[...]), got {type(model).__name__}")
    blocks: list[list[tuple[str, nn.Module]]] = []
    lead: list[tuple[str, nn.Module]] = []
    for name, m in model.named_children():
        has_params = any(True for _ in m.parameters())
        if has_params:
            blocks.append(lead + [(name, m)])
            lead = []
        elif blocks:
            blocks[-1].append((name, m))
        else:
            lead.append((name, m))
    if not blocks:
        raise ValueError("the model has no parameterised layers")
    out: list[tuple[str, nn.Module]] = []
    for b in blocks:
        name = next(n for n, m in b if any(True for _ in m.parameters()))
        out.append((name, nn.Sequential(*[m for _, m in b])))
    return out


def jacobian_singular_values(fn, x: torch.Tensor, gram: bool = False) -> torch.Tensor:
    """Singular values [n, min(out, in)] of the per-example Jacobians of ``fn`` at ``x``.

    ``gram=True`` takes square roots of the eigenvalues of the smaller Gram matrix J J^T or
    J^T J in float64 (several times faster than an SVD for large layers; singular values below
    about sqrt(eps) * s_max lose relative accuracy)."""
    jac = vmap(jacrev(lambda xi: fn(xi.unsqueeze(0)).squeeze(0)))(x)  # [n, out..., in...]
    n = x.shape[0]
    jac = jac.reshape(n, -1, x[0].numel()).double()
    if not gram:
        return torch.linalg.svdvals(jac)
    g = jac @ jac.mT if jac.shape[1] <= jac.shape[2] else jac.mT @ jac
    return torch.linalg.eigvalsh(g).clamp_min(0).sqrt().flip(-1)


def layer_jacobian_singular_values(
    model: nn.Module, inputs: torch.Tensor, examples: int = 8, blocks: Sequence[tuple[str, nn.Module]] | None = None
) -> list[JacobianSpectrum]:
    """Singular values of each block Jacobian dh_i/dh_{i-1} at ``examples`` inputs.

    Args:
        model: an ``nn.Sequential`` (or any model, with ``blocks`` given as (name, module) pairs
            whose composition is the forward pass).
        inputs: a batch; the first ``examples`` rows are used.
    """
    if not isinstance(examples, int) or examples < 1:
        raise ValueError(f"examples must be a positive integer, got {examples!r}")
    blocks = list(blocks) if blocks is not None else blocks_of(model)
    h = inputs[:examples].detach()
    out = []
    for name, block in blocks:
        out.append(JacobianSpectrum(name, jacobian_singular_values(block, h).detach()))
        with torch.no_grad():
            h = block(h)
    return out


def input_output_jacobian_spectrum(model: nn.Module, inputs: torch.Tensor, examples: int = 8) -> JacobianSpectrum:
    """Singular values of the whole network's Jacobian df(x)/dx at ``examples`` inputs."""
    if not isinstance(examples, int) or examples < 1:
        raise ValueError(f"examples must be a positive integer, got {examples!r}")
    return JacobianSpectrum("input_output", jacobian_singular_values(model, inputs[:examples].detach()).detach())
