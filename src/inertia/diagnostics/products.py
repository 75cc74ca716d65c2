"""Curvature-vector products on one batch's graph: the one place they are computed.

Used by the curvature diagnostics (``diagnostics.curvature``: eigenvalues, trace, Frobenius norm,
spectral density), by Hessian-Free (``optim.hessian_free``) and by the Hessian-norm calibration
(``init.hessian``), so every user of a product gets the same arithmetic (BackPACK's layout: one
small module per curvature product).

- ``HessianProduct``: v -> H v, the Hessian of a scalar loss w.r.t. ``params`` by double backward
  (Pearlmutter 1994). The gradient graph is built once (``create_graph=True``); each product is
  then one backward pass through it.
- ``GaussNewtonProduct``: v -> G v = J^T H_L J v, the generalized Gauss-Newton matrix
  (Schraudolph 2002; Martens 2010 section 4.2), J the Jacobian of the outputs z w.r.t. the
  parameters and H_L the Hessian of the loss w.r.t. z; optionally + w J_h^T J_h v for hidden
  activities h (Martens & Sutskever 2011's structural damping). J v comes from the
  double-backward trick (a vector-Jacobian product u -> J^T u built with ``create_graph=True`` and
  differentiated w.r.t. u), so no forward-mode support is needed; each product is three backward
  passes and no forward.
- ``FlatOperator``: either product as a map on flat vectors (the parameters concatenated in
  order), the form Lanczos, CG and Hutchinson work with.

Vectors are lists of tensors shaped like ``params``; ``num_products`` counts the products.

Examples:
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> H = HessianProduct((w**3).sum(), [w])  # H = diag(6 w)
    >>> H([torch.tensor([1.0, 1.0])])[0]
    tensor([ 6., 12.])
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

__all__ = [
    "FlatOperator",
    "GaussNewtonProduct",
    "HessianProduct",
    "as_tensor_list",
    "check_scalar_loss",
    "flatten",
    "math_attention",
    "twice_differentiable",
    "unflatten",
]


def math_attention() -> contextlib.AbstractContextManager:
    """Scaled-dot-product attention through its math kernel inside the block: a graph recorded
    there has a double backward (the CPU flash kernel, which eval-mode transformers pick, has none)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # older torch
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def _hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``F.hardsigmoid`` as relu6(x + 3) / 6 from clamp, which has a second derivative (torch's
    ``hardsigmoid_backward`` has none); the same values (the kernel computes the same operations)."""
    out = torch.clamp(input + 3.0, 0.0, 6.0) / 6.0
    return input.copy_(out) if inplace else out


@contextlib.contextmanager
def twice_differentiable() -> Iterator[None]:
    """Inside the block, a graph recorded has a double backward where torch's default kernels
    have none: scaled-dot-product attention through its math kernel (the CPU flash kernel, which
    eval-mode transformers pick, has no double backward) and ``F.hardsigmoid`` (``nn.Hardsigmoid``,
    MobileNet's squeeze-excite gate) through clamp. ``torch.nn.functional.hardsigmoid`` is swapped
    for the block's duration (not thread-safe: do not run models in other threads meanwhile)."""
    import torch.nn.functional as F

    original = F.hardsigmoid
    F.hardsigmoid = _hardsigmoid
    try:
        with math_attention():
            yield
    finally:
        F.hardsigmoid = original


def _no_second_derivative(e: RuntimeError) -> ValueError | None:
    """A clear error for an op that torch cannot differentiate twice, or None for other errors."""
    text = str(e)
    if "derivative for" not in text or "is not implemented" not in text:
        return None
    op = text.split("derivative for", 1)[1].split("is not implemented", 1)[0].strip()
    hint = {
        "'_cdist_backward'": " (torch.cdist: write the distances with matmul, e.g. torch.cdist(..., "
        "compute_mode='use_mm_for_euclid_dist'))"
    }.get(op, "")
    return ValueError(
        f"Hessian-vector products need second derivatives, and torch has none for {op}{hint}: replace that "
        "module for the curvature measurement (e.g. nn.Sigmoid), or use the Gauss-Newton product "
        "(inertia.diagnostics.ggn_vp), which needs first derivatives of the model only"
    )


def flatten(tensors: Sequence[Tensor], dtype: torch.dtype | None = None) -> Tensor:
    """The tensors concatenated into one flat vector, in ``dtype`` (default: their promoted dtype).

    One copy per tensor, whatever its strides (a channels-last gradient is not copied twice).
    """
    if dtype is None:
        dtype = tensors[0].dtype
        for t in tensors[1:]:
            dtype = torch.promote_types(dtype, t.dtype)
    out = torch.empty(sum(t.numel() for t in tensors), dtype=dtype, device=tensors[0].device)
    for o, t in zip(unflatten(out, tensors), tensors, strict=True):
        o.copy_(t)
    return out


def unflatten(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Views of ``flat`` shaped like ``like`` (the inverse of ``flatten``)."""
    return [c.view_as(p) for c, p in zip(flat.split([p.numel() for p in like]), like, strict=True)]


def as_tensor_list(x: Tensor | Sequence[Tensor], what: str) -> list[Tensor]:
    """``[x]`` for a tensor, ``list(x)`` for a non-empty list or tuple of tensors, else ``ValueError``."""
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)) and x and all(isinstance(t, Tensor) for t in x):
        return list(x)
    raise ValueError(f"{what} must be a tensor or a non-empty list of tensors, got {type(x).__name__}")


def check_scalar_loss(loss: object, what: str = "loss") -> Tensor:
    """``loss`` if it is a tensor with one element, else ``ValueError`` naming what it was."""
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        shape = f" of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else ""
        raise ValueError(f"{what} must be a scalar tensor, got {type(loss).__name__}{shape}")
    return loss


def _zeros_where_none(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(p) if g is None else g.detach() for g, p in zip(grads, like, strict=True)]


class HessianProduct:
    """v -> H v for the Hessian of ``loss`` w.r.t. ``params`` (Pearlmutter 1994, double backward).

    ``loss`` must come from a forward pass with autograd enabled; ``grads`` may be given when
    already computed from it with ``create_graph=True`` (they are reused, not recomputed). A loss
    that is linear in ``params`` has H = 0 and every product is zero.
    """

    def __init__(self, loss: Tensor, params: Sequence[Tensor], grads: Sequence[Tensor | None] | None = None) -> None:
        self.params = list(params)
        self.loss = check_scalar_loss(loss)
        if grads is None:
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params, strict=True)]
        self._live = [(i, g) for i, g in enumerate(self.grads) if g.requires_grad]
        self.num_products = 0

    def __call__(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        self.num_products += 1
        if not self._live:  # the loss is linear in params
            return [torch.zeros_like(p) for p in self.params]
        try:
            hv = torch.autograd.grad(
                [g for _, g in self._live],
                self.params,
                grad_outputs=[vectors[i] for i, _ in self._live],
                retain_graph=True,
                allow_unused=True,
            )
        except RuntimeError as e:
            clear = _no_second_derivative(e)
            if clear is None:
                raise
            raise clear from e
        return _zeros_where_none(hv, self.params)


class GaussNewtonProduct:
    """v -> G v = J^T H_L J v (+ ``hidden_weight`` J_h^T J_h v) on one batch's graph.

    Schraudolph (2002); Martens (2010) section 4.2. ``outputs`` z (tensor or list) and ``loss``
    L(z) must come from one forward pass with autograd enabled; ``params`` are the tensors
    theta. ``hidden`` (optional) are hidden activities h whose squared change, weighted by
    ``hidden_weight``, is added to the curvature: Martens & Sutskever (2011)'s structural damping
    with the squared-distance penalty, mu lambda J_h^T J_h. G is positive semi-definite when the
    loss is convex in z.
    """

    def __init__(
        self,
        outputs: Tensor | Sequence[Tensor],
        loss: Tensor,
        params: Sequence[Tensor],
        hidden: Tensor | Sequence[Tensor] | None = None,
        hidden_weight: float = 0.0,
    ) -> None:
        self.params = list(params)
        self.outputs = as_tensor_list(outputs, "outputs")
        self.hidden = as_tensor_list(hidden, "hidden") if hidden is not None else []
        self.hidden_weight = float(hidden_weight)
        check_scalar_loss(loss)
        for z in self.outputs + self.hidden:
            if not z.requires_grad:
                raise ValueError(
                    "outputs (and hidden) must depend on the parameters with autograd enabled: "
                    "compute them inside the closure without torch.no_grad()"
                )
        ends = self.outputs + self.hidden
        # u -> J^T u, linear in the dummy cotangents u; its derivative w.r.t. u along v is J v.
        self._u = [torch.zeros_like(z, requires_grad=True) for z in ends]
        jt_u = torch.autograd.grad(ends, self.params, grad_outputs=self._u, create_graph=True, allow_unused=True)
        self._jt_u = [(i, g) for i, g in enumerate(jt_u) if g is not None and g.requires_grad]
        # dL/dz with its graph, for H_L w by a second backward.
        dl = torch.autograd.grad(loss, self.outputs, create_graph=True, allow_unused=True)
        self._dl = [(i, d) for i, d in enumerate(dl) if d is not None and d.requires_grad]
        self.num_products = 0

    def _jacobian_vector(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        ends = self.outputs + self.hidden
        jv = torch.autograd.grad(
            [g for _, g in self._jt_u],
            self._u,
            grad_outputs=[vectors[i] for i, _ in self._jt_u],
            retain_graph=True,
            allow_unused=True,
        )
        return [torch.zeros_like(z) if j is None else j for j, z in zip(jv, ends, strict=True)]

    def _loss_hessian_vector(self, jv: Sequence[Tensor]) -> list[Tensor]:
        cot = [torch.zeros_like(z) for z in self.outputs]
        if self._dl:
            hjv = torch.autograd.grad(
                [d for _, d in self._dl],
                self.outputs,
                grad_outputs=[jv[i] for i, _ in self._dl],
                retain_graph=True,
                allow_unused=True,
            )
            cot = [c if h is None else h for c, h in zip(cot, hjv, strict=True)]
        return cot

    def __call__(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        self.num_products += 1
        if not self._jt_u:
            return [torch.zeros_like(p) for p in self.params]
        jv = self._jacobian_vector(vectors)
        n_out = len(self.outputs)
        cot = self._loss_hessian_vector(jv[:n_out]) + [self.hidden_weight * j for j in jv[n_out:]]
        ends = self.outputs + self.hidden
        gv = torch.autograd.grad(ends, self.params, grad_outputs=cot, retain_graph=True, allow_unused=True)
        return _zeros_where_none(gv, self.params)


class FlatOperator:
    """A product over ``params`` as a map on flat vectors of length ``dim``.

    ``product`` is a ``HessianProduct``, a ``GaussNewtonProduct`` or any callable mapping a list
    shaped like ``params`` to such a list. The flat vectors are in ``dtype`` (default: float64,
    the accuracy the eigen-solvers keep); each product casts to the parameters' dtype and back.
    """

    def __init__(
        self,
        product: Callable[[Sequence[Tensor]], list[Tensor]],
        params: Sequence[Tensor],
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.product = product
        self.params = list(params)
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        self.device = self.params[0].device
        self.dtype = dtype

    @property
    def num_products(self) -> int:
        return int(getattr(self.product, "num_products", 0))

    def split(self, flat: Tensor) -> list[Tensor]:
        """``flat`` as tensors shaped like ``params``, in their dtype."""
        return [c.view_as(p).to(p.dtype) for c, p in zip(flat.split(self.sizes), self.params, strict=True)]

    def __call__(self, flat: Tensor) -> Tensor:
        return flatten(self.product(self.split(flat)), self.dtype)
