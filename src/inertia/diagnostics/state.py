"""Measure without changing what is measured: the model's gradients, buffers (BatchNorm running
statistics, ``num_batches_tracked``), train/eval modes and the global RNG (dropout draws) as they
were, after a block that runs extra forward/backward passes.

    >>> import torch
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    >>> before = m[1].running_mean.clone(), torch.get_rng_state()
    >>> with preserved(m):
    ...     m(torch.randn(8, 3)).sum().backward()
    >>> torch.equal(m[1].running_mean, before[0]), torch.equal(torch.get_rng_state(), before[1]), m[0].weight.grad
    (True, True, None)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn

__all__ = ["preserved", "rng_state", "set_rng_state"]


def rng_state() -> tuple:
    """The global CPU RNG state, and every CUDA device's where CUDA is in use."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple) -> None:
    """Restore what :func:`rng_state` returned."""
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def preserved(model: nn.Module, params: Sequence[torch.Tensor] | None = None) -> Iterator[None]:
    """Inside the block anything may run on ``model``; afterwards the gradients of ``params``
    (default: every parameter; the same tensors, with the same values), every buffer, each
    module's train/eval mode and the global RNG are as they were. The parameters' values are not
    saved: the block must not step them."""
    params = list(model.parameters()) if params is None else list(params)
    grads = [p.grad for p in params]
    values = [None if g is None else g.detach().clone() for g in grads]  # a backward adds into them in place
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    modes = [(m, m.training) for m in model.modules()]
    rng = rng_state()
    try:
        yield
    finally:
        with torch.no_grad():
            for p, g, v in zip(params, grads, values, strict=True):
                if g is not None and v is not None:
                    g.copy_(v)
                p.grad = g
            for n, b in model.named_buffers():
                if n in buffers:
                    b.copy_(buffers[n])
        for m, training in modes:
            m.training = training
        set_rng_state(rng)
