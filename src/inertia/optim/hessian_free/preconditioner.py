"""Martens' (2010, section 4.7) diagonal preconditioner for Hessian-Free's CG.

    M = (diag(F) + lambda + wd)^xi,    diag(F) = (1/n) sum_i grad l_i (.) grad l_i,    xi = 0.75,

with l_i the loss of case i of the gradient batch (Martens sums the per-case squares; the 1/n puts
the diagonal on the scale of G for an averaged loss, as his code does). CG needs M^{-1}:
``martens_preconditioner(diagonal, damping)``. The diagonal of the empirical Fisher F needs
per-case gradients; ``martens_preconditioner_diagonal`` gets them, cheapest first:

- ``"linear"`` (``per_example`` given and every parameter is the weight or bias of an
  ``nn.Linear`` applied once, to [n, in] inputs): as Martens' code does, from each layer's inputs a
  and back-propagated output gradients delta of one forward/backward, without forming per-case
  gradients: sum_i (delta_i a_i^T)^2 = (delta^2)^T (a^2), sum_i delta_i^2 for biases;
- ``"vmap"`` (``per_example`` given, other models): every case's gradient by
  ``torch.func.vmap(torch.func.grad(...))`` over ``functional_call``, in chunks;
- ``"graph"`` (``outputs``, ``loss`` given): the batch loss is L = sum_i L_i with L_i the terms
  of case i, so grad L_i = J^T (dL/dz masked to row i): a batched vector-Jacobian product
  (``is_grads_batched``) through the existing graph for ``max_examples`` evenly spaced
  cases, scaled to n * sum_i (grad L_i)^2 (equal to the above for an averaged loss);
- ``"graph_loop"``: the same, one ordinary backward per case, when the model's backward cannot be
  vmapped (e.g. it uses ``out=`` operations).

Examples:
    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> diag, method = martens_preconditioner_diagonal(
    ...     list(model.parameters()), per_example=PerExample(model, x, y, torch.nn.functional.mse_loss)
    ... )
    >>> method, [tuple(d.shape) for d in diag]
    ('linear', [(1, 3), (1,)])
    >>> martens_preconditioner(torch.tensor([0.0, 15.0]), damping=1.0)  # (d + 1)^-0.75
    tensor([1.0000, 0.1250])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ...diagnostics.products import as_tensor_list

__all__ = [
    "PER_EXAMPLE_BUDGET",
    "PerExample",
    "martens_preconditioner",
    "martens_preconditioner_diagonal",
]

PER_EXAMPLE_BUDGET = 1 << 25  # values of per-example gradients held at once (chunking)


class PerExample(NamedTuple):
    """What the Martens preconditioner needs for exact per-example gradients by
    ``torch.func.vmap(grad(...))``: ``loss_fn(model(inputs[i:i+1]), targets[i:i+1])`` is case i's
    loss, and the batch loss is their mean."""

    model: torch.nn.Module
    inputs: Tensor
    targets: Tensor
    loss_fn: Callable[[Tensor, Tensor], Tensor]


def martens_preconditioner(
    diagonal: Tensor, damping: float, *, weight_decay: float = 0.0, exponent: float = 0.75
) -> Tensor:
    """M^{-1} = (``diagonal`` + ``damping`` + ``weight_decay``)^(-``exponent``), elementwise: the
    inverse of Martens' preconditioner for the flat Fisher diagonal ``diagonal``."""
    return (diagonal + damping + weight_decay).pow_(-exponent)


def martens_preconditioner_diagonal(
    params: Sequence[Tensor],
    *,
    per_example: PerExample | None = None,
    outputs: Tensor | Sequence[Tensor] | None = None,
    loss: Tensor | None = None,
    max_examples: int = 32,
    chunk_size: int | None = None,
) -> tuple[list[Tensor], str]:
    """diag(F) per parameter and the method that computed it (``"linear"``, ``"vmap"``, ``"graph"``
    or ``"graph_loop"``, see the module docstring), from ``per_example`` or else from the graph of
    ``outputs`` (first dimension: the case) and ``loss``. If ``per_example``'s model cannot be
    vmapped, the graph estimate is used (with a warning)."""
    params = list(params)
    if per_example is not None:
        linear = _per_example_linear(params, per_example)
        if linear is not None:
            return linear, "linear"
        try:
            return _per_example_vmap(params, per_example, chunk_size), "vmap"
        except (RuntimeError, NotImplementedError, TypeError) as e:
            warnings.warn(
                f"HessianFree: per-example gradients by vmap failed ({type(e).__name__}: {e}); "
                "using the batch-graph estimate instead",
                RuntimeWarning,
                stacklevel=3,
            )
            if outputs is None:
                with torch.enable_grad():
                    out = per_example.model(per_example.inputs)
                    outputs, loss = out, per_example.loss_fn(out, per_example.targets)
    if outputs is None or loss is None:
        raise ValueError("martens_preconditioner_diagonal needs per_example or (outputs, loss)")
    return _graph_diagonal(params, as_tensor_list(outputs, "outputs"), loss, max_examples)


def _graph_diagonal(
    params: list[Tensor], outs: list[Tensor], loss: Tensor, max_examples: int
) -> tuple[list[Tensor], str]:
    try:
        return _per_example_graph(params, outs, loss, max_examples, batched=True), "graph"
    except (RuntimeError, NotImplementedError) as e:  # a backward without batching rules
        warnings.warn(
            f"HessianFree: batched per-example backward failed ({type(e).__name__}: {e}); using one "
            "backward per case instead",
            RuntimeWarning,
            stacklevel=4,
        )
        return _per_example_graph(params, outs, loss, max_examples, batched=False), "graph_loop"


class _NotApplicable(Exception):
    pass


def _linear_owners(model: torch.nn.Module) -> dict[int, tuple[torch.nn.Linear, str]]:
    """id(parameter) -> (the nn.Linear it belongs to, "weight" or "bias")."""
    owner: dict[int, tuple[torch.nn.Linear, str]] = {}
    for mod in model.modules():
        if type(mod) is torch.nn.Linear:
            owner[id(mod.weight)] = (mod, "weight")
            if mod.bias is not None:
                owner[id(mod.bias)] = (mod, "bias")
    return owner


def _per_example_linear(params: list[Tensor], pe: PerExample) -> list[Tensor] | None:
    """The Linear-layer shortcut, or None when the model is not made of such layers."""
    model, x, y, loss_fn = pe
    owner = _linear_owners(model)
    if not params or any(id(p) not in owner for p in params):
        return None
    inputs: dict[torch.nn.Module, Tensor] = {}
    outputs: dict[torch.nn.Module, Tensor] = {}

    def record(mod: torch.nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
        if mod in outputs or inp[0].dim() != 2:  # applied twice, or to sequences: per-case sums don't split
            raise _NotApplicable
        inputs[mod], outputs[mod] = inp[0].detach(), out

    mods = {owner[id(p)][0] for p in params}
    handles = [mod.register_forward_hook(record) for mod in mods]
    try:
        with torch.enable_grad():
            loss = loss_fn(model(x), y)
            used = [mod for mod in mods if mod in outputs]
            deltas = torch.autograd.grad(loss, [outputs[mod] for mod in used], allow_unused=True)
    except (_NotApplicable, RuntimeError):
        return None
    finally:
        for h in handles:
            h.remove()
    n = x.shape[0]
    squares = {}
    for mod, d in zip(used, deltas, strict=True):
        if d is None:
            continue
        d2 = d.detach().pow(2)  # [n, out]
        squares[(mod, "weight")] = d2.t() @ inputs[mod].pow(2)  # [out, in]
        squares[(mod, "bias")] = d2.sum(0)
    # n sum_i (grad L_i)^2 with L = sum_i L_i the batch loss, = (1/n) sum_i (grad l_i)^2 for a mean loss
    return [squares[owner[id(p)]].mul_(n) if owner[id(p)] in squares else torch.zeros_like(p) for p in params]


def _per_example_vmap(params: list[Tensor], pe: PerExample, chunk_size: int | None) -> list[Tensor]:
    from torch.func import functional_call, grad, vmap

    model, x, y, loss_fn = pe
    named = dict(model.named_parameters())
    by_id = {id(p): name for name, p in named.items()}
    missing = [tuple(p.shape) for p in params if id(p) not in by_id]
    if missing:
        raise ValueError(f"per_example.model does not own every optimized parameter (shapes {missing})")
    buffers = dict(model.named_buffers())
    detached = {name: p.detach() for name, p in named.items()}
    wanted = [by_id[id(p)] for p in params]

    def case_loss(ps: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        out = functional_call(model, (ps, buffers), (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0))

    per_case = vmap(grad(case_loss), in_dims=(None, 0, 0))
    n = x.shape[0]
    numel = sum(p.numel() for p in named.values())
    chunk = chunk_size or max(1, PER_EXAMPLE_BUDGET // max(numel, 1))
    sums = [torch.zeros_like(p) for p in params]
    for s in range(0, n, chunk):
        g = per_case(detached, x[s : s + chunk], y[s : s + chunk])
        for acc, name in zip(sums, wanted, strict=True):
            acc.add_(g[name].pow(2).sum(0))
    return [acc.div_(n) for acc in sums]


def _case_cotangents(dl: list[Tensor], idx: Tensor) -> list[Tensor]:
    """For each output, [m, n, ...] cotangents: slot k holds case idx[k]'s row of dL/dz, zeros elsewhere."""
    rows = torch.arange(idx.numel())
    cots = []
    for d in dl:
        c = d.new_zeros((idx.numel(), *d.shape))
        c[rows, idx] = d[idx]
        cots.append(c)
    return cots


def _squared_case_gradients(
    outs: list[Tensor], params: list[Tensor], cots: list[Tensor], batched: bool
) -> list[Tensor | None]:
    """sum_k (J^T cots[k])^2 per parameter (None for a parameter outside the graph)."""
    if batched:
        g = torch.autograd.grad(
            outs, params, grad_outputs=cots, retain_graph=True, allow_unused=True, is_grads_batched=True
        )
        return [None if gi is None else gi.detach().pow(2).sum(0) for gi in g]
    acc: list[Tensor | None] = [None] * len(params)
    for k in range(cots[0].shape[0]):
        gk = torch.autograd.grad(outs, params, grad_outputs=[c[k] for c in cots], retain_graph=True, allow_unused=True)
        acc = [
            a if b is None else (b.detach().pow(2) if a is None else a.add_(b.detach().pow(2)))
            for a, b in zip(acc, gk, strict=True)
        ]
    return acc


def _per_example_graph(
    params: list[Tensor], outs: list[Tensor], loss: Tensor, max_examples: int, batched: bool
) -> list[Tensor]:
    n = outs[0].shape[0]
    if any(z.dim() == 0 or z.shape[0] != n for z in outs):
        raise ValueError(
            f"every output must have the case as its first dimension, got shapes {[tuple(z.shape) for z in outs]}"
        )
    grads = torch.autograd.grad(loss, outs, retain_graph=True, allow_unused=True)
    dl = [torch.zeros_like(z) if d is None else d.detach() for d, z in zip(grads, outs, strict=True)]
    idx = torch.linspace(0, n - 1, min(n, max_examples)).round().long().unique()
    squares = _squared_case_gradients(outs, params, _case_cotangents(dl, idx), batched)
    scale = n * n / idx.numel()
    return [torch.zeros_like(p) if s is None else s.mul_(scale) for s, p in zip(squares, params, strict=True)]
