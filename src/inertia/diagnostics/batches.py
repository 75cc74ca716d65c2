"""Batches as models take them: a tensor (``model(x)``), a tuple or list of tensors
(``model(*batch)``) or a dict (``model(**batch)``, Hugging Face style). Shared by the Jacobians
and the doctor."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["call", "head"]


def call(model: nn.Module, inputs: Any) -> Any:
    """``model(inputs)``, ``model(*inputs)`` for a tuple or list, ``model(**inputs)`` for a dict."""
    if isinstance(inputs, dict):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def head(inputs: Any, n: int) -> Any:
    """The first ``n`` examples of every tensor of the batch (other values as they are)."""
    if isinstance(inputs, dict):
        return {k: head(v, n) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(head(v, n) for v in inputs)
    return inputs[:n] if isinstance(inputs, torch.Tensor) else inputs
