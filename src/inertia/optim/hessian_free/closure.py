"""The closures ``HessianFree.step`` accepts, and how it calls them.

Two contracts, told apart by what the closure returns:

- **torch's** (as ``torch.optim.LBFGS``): ``closure()`` re-evaluates the model and returns the
  scalar ``loss``. It need not call ``loss.backward()`` (HF differentiates the loss itself); if it
  does (the ``optimizer.zero_grad(); loss.backward()`` idiom), that backward runs as written but
  keeps the graph (``retain_graph=True``, see ``call_with_graph``) so that HF can take
  curvature products through it, and HF then calls the closure with autograd enabled everywhere,
  as LBFGS does. This is enough for ``curvature="hessian"``.
- **the outputs extension**: ``closure()`` returns ``(outputs, loss)``, or
  ``(outputs, loss, hidden)`` for structural damping, with ``outputs`` (a tensor or a list of
  tensors whose first dimension is the case) the model outputs the loss is computed from. The
  Gauss-Newton matrix J^T H_L J needs them (J is their Jacobian), and so does the graph estimate
  of the Martens preconditioner. Such a closure must not call ``backward()``.

Examples:
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    >>> def closure():
    ...     loss = (w**2).sum()
    ...     loss.backward()
    ...     return loss
    >>> ev, calls_backward = call_with_graph(closure)
    >>> ev.outputs is None, calls_backward, torch.autograd.grad(ev.loss, [w])[0]  # the graph survived
    (True, True, tensor([2., 4.]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from ...diagnostics.products import as_tensor_list, check_scalar_loss, twice_differentiable

__all__ = ["Evaluation", "call_for_value", "call_with_graph", "parse_result"]

_ACCEPTED = "the loss (a scalar tensor), or (outputs, loss) or (outputs, loss, hidden) for the Gauss-Newton matrix"


class Evaluation(NamedTuple):
    """What one call of a closure gave: the ``loss``, and the ``outputs`` and ``hidden`` activities
    as lists of tensors (None when the closure returned only the loss, or no hidden)."""

    loss: Tensor
    outputs: list[Tensor] | None = None
    hidden: list[Tensor] | None = None


def parse_result(result: Any, what: str = "closure") -> Evaluation:
    """The ``Evaluation`` of what a closure returned (see the module docstring); ``ValueError``
    for anything else."""
    if isinstance(result, Tensor):
        return Evaluation(check_scalar_loss(result, f"the {what}'s loss"))
    if not isinstance(result, (tuple, list)) or len(result) not in (2, 3):
        length = f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
        raise ValueError(f"the {what} must return {_ACCEPTED}, got {type(result).__name__}{length}")
    loss = check_scalar_loss(result[1], f"the {what}'s loss")
    hidden = as_tensor_list(result[2], f"the {what}'s hidden") if len(result) == 3 else None
    return Evaluation(loss, as_tensor_list(result[0], f"the {what}'s outputs"), hidden)


class _RetainGraph(TorchFunctionMode):
    """Runs every ``Tensor.backward`` and ``torch.autograd.backward`` with ``retain_graph=True``
    and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.backward_calls = 0

    def __torch_function__(
        self, func: Callable, types: Any, args: tuple = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func is Tensor.backward or func is torch.autograd.backward:
            self.backward_calls += 1
            if len(args) > 2:  # retain_graph is the third argument of both (after self, gradient)
                args = (*args[:2], True, *args[3:])
            else:
                kwargs["retain_graph"] = True
        return func(*args, **kwargs)


def call_with_graph(closure: Callable[[], Any], what: str = "closure") -> tuple[Evaluation, bool]:
    """``closure()`` with autograd enabled, its graph kept for curvature products: a
    ``loss.backward()`` inside it runs with ``retain_graph=True`` (through a ``TorchFunctionMode``,
    PyTorch's public hook for intercepting tensor methods). Returns the ``Evaluation`` and whether
    the closure called ``backward``. The loss must depend on the parameters (``ValueError``)."""
    mode = _RetainGraph()
    with torch.enable_grad(), mode, twice_differentiable():  # curvature products differentiate it twice
        result = closure()
    evaluation = parse_result(result, what)
    if not evaluation.loss.requires_grad:
        raise ValueError(f"the {what}'s loss does not require grad: compute it with autograd enabled")
    return evaluation, mode.backward_calls > 0


def call_for_value(closure: Callable[[], Any], what: str = "closure", *, calls_backward: bool = False) -> float:
    """The closure's loss as a float: under ``torch.no_grad()``, or with autograd enabled when
    the closure calls ``backward`` (it could not otherwise)."""
    with torch.enable_grad() if calls_backward else torch.no_grad():
        result = closure()
    return float(parse_result(result, what).loss.detach())
