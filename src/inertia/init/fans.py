"""Fan-in and fan-out: exact for every common layer type, torch's convention for bare tensors.

``fan_in`` is the number of terms summed to form one output unit's pre-activation; ``fan_out``
is the number of output units one input unit feeds (the terms summed in the backward pass).
Glorot & Bengio (2010, eq. 12) and He et al. (2015) scale weight variance by these.

``torch.nn.init._calculate_fan_in_and_fan_out`` reads them off the weight's shape as if it were
``[out, in, *k]``, which is wrong for

- grouped and depthwise convolutions (weight ``[out, in/groups, *k]``): each input channel feeds
  only ``out/groups`` output channels, so fan_out is ``out/groups * prod(k)``, not ``out * prod(k)``;
- transposed convolutions (weight ``[in, out/groups, *k]``): torch swaps fan_in and fan_out;
- recurrent layers, whose weights stack several gate matrices (``[4*hidden, in]`` for an LSTM):
  each gate is its own ``[hidden, in]`` map;
- embeddings, whose one-hot input makes every output a single weight (fan_in 1).

Strides: an output of a transposed convolution with stride ``s`` sums on average
``(in/groups) * prod(k) / prod(s)`` terms, and an input of a strided convolution feeds on average
``(out/groups) * prod(k) / prod(s)`` outputs; :func:`fans` counts these averages (exact when the
kernel size is a multiple of the stride), so fans can be non-integer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Fans", "fans", "is_recurrent", "param_fans", "rnn_gates", "tensor_fans"]

Fans = tuple  # (fan_in, fan_out)

_RNN_GATES: dict[type[nn.Module], int] = {
    nn.RNN: 1,
    nn.LSTM: 4,
    nn.GRU: 3,
    nn.RNNCell: 1,
    nn.LSTMCell: 4,
    nn.GRUCell: 3,
}


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def tensor_fans(tensor: torch.Tensor) -> Fans:
    """Torch's convention for a bare weight: shape ``[out, in, *receptive]``.

    fan_in = in * prod(receptive), fan_out = out * prod(receptive).
    Raises ``ValueError`` for tensors with fewer than 2 dimensions.
    """
    if tensor.dim() < 2:
        raise ValueError(
            f"fans need a tensor with at least 2 dimensions ([out, in, *kernel]), got shape {tuple(tensor.shape)}"
        )
    receptive = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def is_recurrent(module: nn.Module) -> bool:
    """True for the recurrent modules whose weights stack gate matrices (RNN, LSTM, GRU, cells).

    Examples:

    >>> is_recurrent(nn.GRU(4, 8)), is_recurrent(nn.Linear(4, 8))
    (True, False)
    """
    return isinstance(module, tuple(_RNN_GATES))


def rnn_gates(module: nn.Module) -> int:
    """Number of stacked gate matrices in a recurrent module's weights (1 for RNN, 4 LSTM, 3 GRU)."""
    for cls, g in _RNN_GATES.items():
        if isinstance(module, cls):
            return g
    raise ValueError(f"{type(module).__name__} is not a recurrent module (RNN, LSTM, GRU or their cells)")


def param_fans(module: nn.Module, name: str) -> Fans:
    """Exact fans of parameter ``name`` (a direct parameter of ``module``, e.g. ``"weight"``,
    ``"weight_hh_l0"``). For recurrent weights these are the fans of one gate block."""
    p = getattr(module, name, None)
    if not isinstance(p, torch.Tensor):
        raise ValueError(f"{type(module).__name__} has no parameter {name!r}")
    if isinstance(module, nn.modules.conv._ConvNd):
        k = math.prod(module.kernel_size)
        s = math.prod(module.stride)
        g = module.groups
        if module.transposed:  # weight [in, out/g, *k]
            return _num(module.in_channels / g * k / s), _num(module.out_channels / g * k)
        return _num(module.in_channels / g * k), _num(module.out_channels / g * k / s)
    if isinstance(module, nn.Embedding) and name == "weight":
        return 1, module.embedding_dim
    if isinstance(module, nn.MultiheadAttention) and name == "in_proj_weight":  # q, k, v stacked: [3E, E]
        return p.shape[1], p.shape[0] // 3
    if type(module).__name__ == "Conv1D" and hasattr(module, "nf") and name == "weight" and p.dim() == 2:
        return p.shape[0], p.shape[1]  # Hugging Face's GPT-2 Conv1D stores its weight as [in, out] (nf outputs)
    if is_recurrent(module) and p.dim() == 2:
        gates = rnn_gates(module)
        rows = p.shape[0]
        if name.startswith("weight_hr"):  # LSTM projection [proj, hidden]: not gated
            return p.shape[1], rows
        return p.shape[1], rows // gates
    return tensor_fans(p)


def fans(tensor_or_module: torch.Tensor | nn.Module, name: str | None = None) -> Fans:
    """``(fan_in, fan_out)`` of a tensor (torch's convention) or of a module's weight (exact).

    Args:
        tensor_or_module: a weight tensor ``[out, in, *k]``, or a module (Linear, ConvNd,
            ConvTransposeNd, RNN/LSTM/GRU and cells, Embedding, or any module with a ``weight``).
        name: for a module, which parameter (default ``"weight"``, or ``"weight_ih_l0"`` for
            recurrent layers). Recurrent weights report the fans of one gate block.

    Examples (see the module docstring for the rules):

    >>> fans(nn.Conv2d(8, 16, 3, groups=8))        # weight [16, 1, 3, 3]
    (9, 18)
    >>> fans(nn.ConvTranspose2d(8, 4, 4, stride=2))  # weight [8, 4, 4, 4]
    (32, 64)
    >>> fans(nn.LSTM(10, 20), "weight_ih_l0")        # weight [80, 10], 4 gates
    (10, 20)
    """
    if isinstance(tensor_or_module, torch.Tensor):
        if name is not None:
            raise ValueError("name is only meaningful for a module")
        return tensor_fans(tensor_or_module)
    if isinstance(tensor_or_module, nn.Module):
        if name is None:
            name = (
                "weight_ih_l0"
                if isinstance(tensor_or_module, (nn.RNN, nn.LSTM, nn.GRU))
                else (
                    "weight_ih"
                    if any(isinstance(tensor_or_module, c) for c in (nn.RNNCell, nn.LSTMCell, nn.GRUCell))
                    else "weight"
                )
            )
        return param_fans(tensor_or_module, name)
    raise ValueError(f"fans take a tensor or an nn.Module, got {type(tensor_or_module).__name__}")
