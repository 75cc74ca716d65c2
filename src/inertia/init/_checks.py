"""Argument checks shared by every initializer, so they all reject the same things the same way.

The contract (DESIGN.md, "Validate eagerly"): numbers are checked first, then the tensor's shape
(number of dims, odd kernels) and dtype (random initializers need a floating-point tensor:
filling an integer tensor with draws would round them to zeros); a tensor with no elements is
then left as it is (there is nothing to fill), before any size-dependent check such as "fan_in
at most the number of inputs".
"""

from __future__ import annotations

import torch

from .. import validation

__all__ = ["check_number", "nothing_to_fill", "work_dtype"]


def check_number(name: str, value: float, *, nonneg: bool = False) -> float:
    """``value`` as a float if it is a finite real number (not a bool), and >= 0 with ``nonneg``
    (:func:`inertia.validation.check_number`, so every initializer words it the same way)."""
    return validation.check_number(name, value, lo=0 if nonneg else None)


def nothing_to_fill(tensor: torch.Tensor, who: str) -> bool:
    """Raise ``TypeError`` unless ``tensor`` is a floating-point tensor; True when it has no
    elements (the initializer then returns it unchanged)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{who} needs a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(
            f"{who} needs a floating-point tensor (float16, bfloat16, float32 or float64), got dtype {tensor.dtype}"
        )
    return tensor.numel() == 0


def work_dtype(tensor: torch.Tensor) -> torch.dtype:
    """The dtype random numbers are drawn in for ``tensor``: float64 for float64, else float32."""
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32
