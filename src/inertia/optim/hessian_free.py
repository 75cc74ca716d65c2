"""``HessianFree``: Martens (2010), "Deep learning via Hessian-free optimization", for PyTorch 2.

One HF iteration at parameters theta, with f the loss on the gradient batch, g = grad f(theta),
G the generalized Gauss-Newton matrix (Schraudolph 2002) on the curvature batch and lambda the
damping, minimizes the damped quadratic model

    q(p) = f(theta) + g^T p + 1/2 p^T G p,      phi(p) = g^T p + 1/2 p^T (G + lambda I) p

by preconditioned conjugate gradient (CG), and then moves theta by the step it found:

1. CG on B = G + lambda I (+ structural damping, Martens & Sutskever 2011), started from
   ``cg_init_decay * p_prev`` (Martens 2010 section 4.5: zeta = 0.95; the "momentum-like"
   carrying of the previous solution that Sutskever et al. 2013 analyse), preconditioned by
   M = (diag(sum_i grad f_i (.) grad f_i) + lambda)^0.75 (section 4.7), stopped by the relative
   progress rule (section 4.4): stop at iteration i when i > k, phi(x_i) < 0 and
   (phi(x_i) - phi(x_{i-k})) / phi(x_i) < k eps, with k = max(10, 0.1 i) and eps = 5e-4.
2. CG-iteration backtracking (section 4.6): CG keeps the iterates x_j at j = ceil(1.3^m); going
   back from the last one, take the earliest whose successors only made f worse.
3. Levenberg-Marquardt damping (section 4.1): rho = (f(theta + p) - f(theta)) / (q(p) - q(0));
   lambda <- 3/2 lambda if rho < 1/4, lambda <- 2/3 lambda if rho > 3/4.
4. A backtracking (Armijo) line search on f along p, as in Martens' released code: alpha = lr,
   shrunk by 0.8 until f(theta + alpha p) <= f(theta) + 0.01 alpha g^T p (at most 60 times; after
   that the step is rejected, alpha = 0).

The generalized Gauss-Newton product is G v = J^T H_L J v, J the Jacobian of the model outputs
z w.r.t. theta and H_L the Hessian of the loss w.r.t. z. J v is computed by the double-backward
trick (a vector-Jacobian product u -> J^T u built with ``create_graph=True``, differentiated
w.r.t. u), H_L w by double backward of the loss w.r.t. z (so any twice-differentiable loss of the
outputs works: squared error summed or averaged, softmax or sigmoid cross-entropy, ...; G is
positive semi-definite when the loss is convex in z) and J^T by an ordinary backward. The graph
is built once per HF iteration; each product is then three backward passes, no forward.

Closure contract (``step(closure, curvature_closure=None, per_example=None)``): ``closure()``
runs the model on the gradient batch **with autograd enabled** and returns ``(outputs, loss)``:
``outputs`` a tensor (or a list of tensors) whose first dimension is the case, ``loss`` the
scalar loss computed from ``outputs`` only (add an L2 penalty with ``weight_decay=``, not in the
loss). HF calls it once with gradients, then again under ``torch.no_grad()`` for backtracking
and the line search. ``curvature_closure``, same contract, gives the curvature batch (Martens
2010 section 4.3: smaller than the gradient batch); without it the gradient batch's graph is
reused. For structural damping, the curvature closure returns ``(outputs, loss, hidden)`` with
``hidden`` the hidden-unit activities (a tensor or list) whose changes are penalized.

See docs/optim.md ("Hessian-Free") for what is faithful to Martens (2010) and what differs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.optim import Optimizer

from .momentum import with_missing_group_keys

__all__ = [
    "HessianFree",
    "PerExample",
    "CGResult",
    "conjugate_gradient",
    "adapt_damping",
    "GaussNewtonOperator",
    "HessianOperator",
    "martens_preconditioner_diagonal",
    "PRECONDITIONERS",
    "CURVATURES",
]

PRECONDITIONERS = ("martens", "none")
CURVATURES = ("ggn", "hessian")

# Constants of Martens (2010) and of his released code.
DAMPING_BOOST = 3.0 / 2.0  # lambda <- 3/2 lambda when rho < 1/4 (section 4.1)
DAMPING_DROP = 2.0 / 3.0  # lambda <- 2/3 lambda when rho > 3/4
RHO_LOW, RHO_HIGH = 0.25, 0.75
BACKTRACK_GAP = 1.3  # CG iterates kept at ceil(1.3^m) (section 4.6)
ARMIJO_C = 1e-2  # sufficient decrease in the line search
LINE_SEARCH_SHRINK = 0.8
LINE_SEARCH_MAX = 60
PER_EXAMPLE_BUDGET = 1 << 25  # values of per-example gradients held at once (chunking)


class PerExample(NamedTuple):
    """What the Martens preconditioner needs for exact per-example gradients by
    ``torch.func.vmap(grad(...))``: ``loss_fn(model(inputs[i:i+1]), targets[i:i+1])`` is case i's
    loss, and the batch loss is their mean."""

    model: torch.nn.Module
    inputs: Tensor
    targets: Tensor
    loss_fn: Callable[[Tensor, Tensor], Tensor]


# -- flat vectors ------------------------------------------------------------------------------
def _flat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _split(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    return [c.view_as(p) for c, p in zip(flat.split([p.numel() for p in like]), like, strict=False)]


def _as_list(x: Tensor | Sequence[Tensor], what: str) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (list, tuple)) and x and all(isinstance(t, Tensor) for t in x):
        return list(x)
    raise ValueError(f"{what} must be a tensor or a non-empty list of tensors, got {type(x).__name__}")


# -- curvature-vector products -----------------------------------------------------------------
class GaussNewtonOperator:
    """v -> G v = J^T H_L J v (+ ``hidden_weight`` J_h^T J_h v) on one batch's graph.

    Schraudolph (2002); Martens (2010) section 4.2. ``outputs`` z (tensor or list) and ``loss``
    L(z) must come from one forward pass with autograd enabled; ``params`` are the tensors
    theta. ``hidden`` (optional) are hidden activities h whose squared change, weighted by
    ``hidden_weight``, is added to the curvature: Martens & Sutskever (2011)'s structural damping
    with the squared-distance penalty, mu lambda J_h^T J_h.

    Vectors are lists shaped like ``params``; ``num_products`` counts the products.
    """

    def __init__(
        self, outputs, loss: Tensor, params: Sequence[Tensor], hidden=None, hidden_weight: float = 0.0
    ) -> None:
        self.params = list(params)
        self.outputs = _as_list(outputs, "outputs")
        self.hidden = _as_list(hidden, "hidden") if hidden is not None else []
        self.hidden_weight = float(hidden_weight)
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(
                f"loss must be a scalar tensor, got {type(loss).__name__}"
                f"{' of shape ' + str(tuple(loss.shape)) if isinstance(loss, Tensor) else ''}"
            )
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

    def __call__(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        self.num_products += 1
        ends = self.outputs + self.hidden
        if not self._jt_u:
            return [torch.zeros_like(p) for p in self.params]
        jv = torch.autograd.grad(
            [g for _, g in self._jt_u],
            self._u,
            grad_outputs=[vectors[i] for i, _ in self._jt_u],
            retain_graph=True,
            allow_unused=True,
        )
        jv = [torch.zeros_like(z) if j is None else j for j, z in zip(jv, ends, strict=False)]
        n_out = len(self.outputs)
        cot = [torch.zeros_like(z) for z in self.outputs]
        if self._dl:
            hjv = torch.autograd.grad(
                [d for _, d in self._dl],
                self.outputs,
                grad_outputs=[jv[i] for i, _ in self._dl],
                retain_graph=True,
                allow_unused=True,
            )
            cot = [c if h is None else h for c, h in zip(cot, hjv, strict=False)]
        cot += [self.hidden_weight * j for j in jv[n_out:]]
        gv = torch.autograd.grad(ends, self.params, grad_outputs=cot, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g.detach() for g, p in zip(gv, self.params, strict=False)]


class HessianOperator:
    """v -> H v for the Hessian of ``loss`` w.r.t. ``params`` (Pearlmutter 1994, double backward).

    ``grads`` may be given when already computed with ``create_graph=True``."""

    def __init__(self, loss: Tensor, params: Sequence[Tensor], grads: Sequence[Tensor] | None = None) -> None:
        self.params = list(params)
        if grads is None:
            grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self._grads = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]
        self.num_products = 0

    def __call__(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        self.num_products += 1
        if not self._grads:
            return [torch.zeros_like(p) for p in self.params]
        hv = torch.autograd.grad(
            [g for _, g in self._grads],
            self.params,
            grad_outputs=[vectors[i] for i, _ in self._grads],
            retain_graph=True,
            allow_unused=True,
        )
        return [torch.zeros_like(p) if h is None else h.detach() for h, p in zip(hv, self.params, strict=False)]


# -- the preconditioner --------------------------------------------------------------------------
def martens_preconditioner_diagonal(
    params: Sequence[Tensor],
    *,
    per_example: PerExample | None = None,
    outputs=None,
    loss: Tensor | None = None,
    max_examples: int = 32,
    chunk_size: int | None = None,
) -> tuple[list[Tensor], str]:
    """diag(F) = (1/n) sum_i grad l_i (.) grad l_i, the diagonal of the empirical Fisher of a loss
    that averages per-case losses l_i (Martens 2010 section 4.7 sums the per-case squares; the
    1/n puts the diagonal on the scale of G for an averaged loss, as his code does).

    Returns ``(diagonal per parameter, method)``, method one of:

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

    If ``per_example``'s model cannot be vmapped, the graph estimate is used (with a warning).
    """
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
    outs = _as_list(outputs, "outputs")
    try:
        return _per_example_graph(params, outs, loss, max_examples, batched=True), "graph"
    except (RuntimeError, NotImplementedError) as e:  # a backward without batching rules
        warnings.warn(
            f"HessianFree: batched per-example backward failed ({type(e).__name__}: {e}); using one "
            "backward per case instead",
            RuntimeWarning,
            stacklevel=3,
        )
        return _per_example_graph(params, outs, loss, max_examples, batched=False), "graph_loop"


class _NotApplicable(Exception):
    pass


def _per_example_linear(params: list[Tensor], pe: PerExample) -> list[Tensor] | None:
    """The Linear-layer shortcut, or None when the model is not made of such layers."""
    model, x, y, loss_fn = pe
    owner = {}
    for mod in model.modules():
        if type(mod) is torch.nn.Linear:
            owner[id(mod.weight)] = (mod, "weight")
            if mod.bias is not None:
                owner[id(mod.bias)] = (mod, "bias")
    if not params or any(id(p) not in owner for p in params):
        return None
    inputs, outputs = {}, {}

    def record(mod, inp, out):
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
    for mod, d in zip(used, deltas, strict=False):
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

    def case_loss(ps, xi, yi):
        out = functional_call(model, (ps, buffers), (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0))

    per_case = vmap(grad(case_loss), in_dims=(None, 0, 0))
    n = x.shape[0]
    numel = sum(p.numel() for p in named.values())
    chunk = chunk_size or max(1, PER_EXAMPLE_BUDGET // max(numel, 1))
    sums = [torch.zeros_like(p) for p in params]
    for s in range(0, n, chunk):
        g = per_case(detached, x[s : s + chunk], y[s : s + chunk])
        for acc, name in zip(sums, wanted, strict=False):
            acc.add_(g[name].pow(2).sum(0))
    return [acc.div_(n) for acc in sums]


def _per_example_graph(
    params: list[Tensor], outs: list[Tensor], loss: Tensor, max_examples: int, batched: bool
) -> list[Tensor]:
    n = outs[0].shape[0]
    if any(z.dim() == 0 or z.shape[0] != n for z in outs):
        raise ValueError(
            f"every output must have the case as its first dimension, got shapes {[tuple(z.shape) for z in outs]}"
        )
    dl = torch.autograd.grad(loss, outs, retain_graph=True, allow_unused=True)
    dl = [torch.zeros_like(z) if d is None else d.detach() for d, z in zip(dl, outs, strict=False)]
    m = min(n, max_examples)
    idx = torch.linspace(0, n - 1, m).round().long().unique()
    m = idx.numel()
    rows = torch.arange(m)
    cots = []
    for d in dl:
        c = d.new_zeros((m, *d.shape))  # [m, n, ...]: case idx[k]'s row of dL/dz in slot k
        c[rows, idx] = d[idx]
        cots.append(c)
    if batched:
        g = torch.autograd.grad(
            outs, params, grad_outputs=cots, retain_graph=True, allow_unused=True, is_grads_batched=True
        )
        g = [None if gi is None else gi.detach().pow(2).sum(0) for gi in g]
    else:
        g = [None] * len(params)
        for k in range(m):
            gk = torch.autograd.grad(
                outs, params, grad_outputs=[c[k] for c in cots], retain_graph=True, allow_unused=True
            )
            g = [
                a if b is None else (b.detach().pow(2) if a is None else a.add_(b.detach().pow(2)))
                for a, b in zip(g, gk, strict=False)
            ]
    scale = n * n / m
    return [torch.zeros_like(p) if gi is None else gi.mul_(scale) for gi, p in zip(g, params, strict=False)]


# -- conjugate gradient ----------------------------------------------------------------------------
@dataclass
class CGResult:
    """``x``: the last iterate; ``iterates``: (iteration, x_i, phi(x_i)) kept for backtracking (the
    last one included); ``values``: phi(x_i) for i = 0..iterations; ``iterations``: CG iterations
    (= products with A after the first); ``products``: products with A in all; ``reason``: why it
    stopped: ``progress`` (Martens' rule), ``max_iter``, ``converged`` (residual 0 to rounding) or
    ``negative_curvature``."""

    x: Tensor
    iterates: list
    values: list
    iterations: int
    products: int
    reason: str


def conjugate_gradient(
    apply_a: Callable[[Tensor], Tensor],
    b: Tensor,
    x0: Tensor | None = None,
    *,
    precond_inv: Tensor | None = None,
    max_iter: int = 250,
    min_iter: int = 1,
    tol: float = 5e-4,
    gap: float = BACKTRACK_GAP,
) -> CGResult:
    """Preconditioned CG on phi(x) = 1/2 x^T A x - b^T x with Martens' (2010, section 4.4) stopping
    rule: stop at iteration i >= ``min_iter`` when i > k, phi(x_i) < 0 and
    (phi(x_i) - phi(x_{i-k})) / phi(x_i) < k ``tol``, k = max(10, ceil(0.1 i)).

    ``apply_a`` maps a flat vector to A times it; ``precond_inv`` is the diagonal of M^{-1}
    (Hestenes & Stiefel 1952; Shewchuk 1994, "CG without the agonizing pain", B3). The value
    phi(x_i) = 1/2 x_i^T (r_i - b), with r_i = A x_i - b the residual, costs a dot product. Iterates
    at ceil(gap^m) are kept for CG-iteration backtracking (section 4.6).
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    products = 0
    if x0 is not None and bool(x0.any()):
        r = apply_a(x) - b
        products += 1
    else:
        r = -b
    y = r if precond_inv is None else r * precond_inv
    p = -y
    ry = torch.dot(r, y)
    values = [float(0.5 * torch.dot(x, r - b))]
    iterates, next_keep, i, reason = [], 1, 0, "max_iter"
    tiny = float(torch.finfo(b.dtype).eps) ** 2 * max(float(torch.dot(b, b)), float(torch.finfo(b.dtype).tiny))
    while i < max_iter:
        if float(torch.dot(r, r)) <= tiny or not float(ry) > 0:
            reason = "converged"
            break
        ap = apply_a(p)
        products += 1
        pap = torch.dot(p, ap)
        if not float(pap) > 0:
            reason = "negative_curvature"
            break
        alpha = ry / pap
        x = x + alpha * p
        r = r + alpha * ap
        y = r if precond_inv is None else r * precond_inv
        ry_new = torch.dot(r, y)
        p = -y + (ry_new / ry) * p
        ry = ry_new
        i += 1
        values.append(float(0.5 * torch.dot(x, r - b)))
        if i >= next_keep:
            iterates.append((i, x, values[-1]))
            next_keep = max(math.ceil(next_keep * gap), next_keep + 1)
        k = max(10, math.ceil(0.1 * i))
        if i >= min_iter and i > k and values[i] < 0 and (values[i] - values[i - k]) / values[i] < k * tol:
            reason = "progress"
            break
    if not iterates or iterates[-1][0] != i:
        iterates.append((i, x, values[-1]))
    return CGResult(x=x, iterates=iterates, values=values, iterations=i, products=products, reason=reason)


def adapt_damping(damping: float, rho: float, bounds: tuple[float, float] = (0.0, math.inf)) -> float:
    """Levenberg-Marquardt (Martens 2010, section 4.1): x 3/2 when rho < 1/4 (or rho is not a
    number: the step made things worse or the loss is not finite), x 2/3 when rho > 3/4, else
    unchanged; then clamped to ``bounds``."""
    if not rho >= RHO_LOW:  # catches NaN
        damping *= DAMPING_BOOST
    elif rho > RHO_HIGH:
        damping *= DAMPING_DROP
    return min(max(damping, bounds[0]), bounds[1])


# -- validation ------------------------------------------------------------------------------------
def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(o: dict) -> None:
    def number(name, lo=None, hi=None, lo_open=False, hi_open=False):
        v = o[name]
        bad = (
            not _is_number(v)
            or (lo is not None and (v <= lo if lo_open else v < lo))
            or (hi is not None and (v >= hi if hi_open else v > hi))
        )
        if bad:
            rng = (
                f"{'(' if lo_open else '['}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}"
                f"{')' if hi_open or hi is None else ']'}"
            )
            raise ValueError(f"{name} must be a finite number in {rng}, got {v!r}")

    def integer(name, lo):
        if not _is_int(o[name]) or o[name] < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {o[name]!r}")

    def boolean(name):
        if not isinstance(o[name], bool):
            raise ValueError(f"{name} must be True or False, got {o[name]!r}")

    number("lr", lo=0, lo_open=True)
    number("damping", lo=0)
    integer("cg_max_iter", 1)
    integer("cg_min_iter", 1)
    if o["cg_min_iter"] > o["cg_max_iter"]:
        raise ValueError(f"cg_min_iter must be <= cg_max_iter, got {o['cg_min_iter']} > {o['cg_max_iter']}")
    number("cg_init_decay", lo=0, hi=1)
    number("structural_damping", lo=0)
    if o["preconditioner"] not in PRECONDITIONERS and o["preconditioner"] is not None:
        raise ValueError(f"preconditioner must be one of {list(PRECONDITIONERS)} or None, got {o['preconditioner']!r}")
    number("preconditioner_exponent", lo=0, hi=1)
    number("cg_tol", lo=0)
    boolean("backtracking")
    boolean("line_search")
    boolean("adapt_damping")
    b = o["damping_bounds"]
    if (
        not isinstance(b, (tuple, list))
        or len(b) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)
        or not 0 <= b[0] <= b[1]
        or math.isnan(b[0])
        or math.isnan(b[1])
    ):
        raise ValueError(f"damping_bounds must be a pair (low, high) with 0 <= low <= high, got {b!r}")
    if o["curvature"] not in CURVATURES:
        raise ValueError(f"curvature must be one of {list(CURVATURES)}, got {o['curvature']!r}")
    if o["curvature"] == "hessian" and o["structural_damping"] > 0:
        raise ValueError(
            "structural_damping needs curvature='ggn' (it is a Gauss-Newton term), got curvature='hessian'"
        )
    number("weight_decay", lo=0)
    integer("preconditioner_examples", 1)


_DEFAULTS = dict(
    lr=1.0,
    damping=1.0,
    cg_max_iter=250,
    cg_init_decay=0.95,
    structural_damping=0.0,
    preconditioner="martens",
    preconditioner_exponent=0.75,
    cg_min_iter=1,
    cg_tol=5e-4,
    backtracking=True,
    line_search=True,
    adapt_damping=True,
    damping_bounds=(1e-8, 1e8),
    curvature="ggn",
    weight_decay=0.0,
    preconditioner_examples=32,
)


# -- the optimizer ----------------------------------------------------------------------------------
class HessianFree(Optimizer):
    """Hessian-free optimization (Martens 2010) with the generalized Gauss-Newton matrix.

    Args:
        params: the parameters (one group: an HF step couples all of them, as in ``LBFGS``).
        lr: the step multiplier; the line search starts from it (Martens: 1).
        damping: the initial Levenberg-Marquardt lambda (adapted unless ``adapt_damping=False``).
        cg_max_iter: CG iterations per HF iteration at most (Martens: 250).
        cg_init_decay: zeta, CG starts from zeta times the previous HF iteration's last CG iterate
            (Martens: 0.95; 0 starts from zero).
        structural_damping: mu of Martens & Sutskever (2011): adds mu lambda J_h^T J_h to the
            curvature, with h the ``hidden`` the curvature closure returns.
        preconditioner: ``"martens"``: M = (diag(F) + lambda + weight_decay)^exponent, F the
            empirical Fisher (:func:`martens_preconditioner_diagonal`); ``"none"``/None.
        preconditioner_exponent: xi, Martens: 0.75.
        cg_min_iter: CG iterations at least before the progress rule may stop it.
        cg_tol: eps of the progress rule (Martens: 5e-4).
        backtracking: CG-iteration backtracking on the gradient batch's loss.
        line_search: the Armijo line search on the gradient batch's loss (else alpha = lr).
        adapt_damping: adapt lambda by the reduction ratio rho.
        damping_bounds: lambda is kept in [low, high].
        curvature: ``"ggn"`` (default, positive semi-definite) or ``"hessian"`` (the true
            Hessian of the loss, by double backward; CG stops at negative curvature).
        weight_decay: wd, the objective is loss + wd/2 ||theta||^2 (exact in gradient and curvature).
        preconditioner_examples: cases used by the graph estimate of the preconditioner when
            ``step`` gets no ``per_example``.

    After each step, ``last_info`` holds: ``loss`` (before), ``loss_after``, ``rho``,
    ``damping`` (the lambda used) and ``next_damping``, ``alpha`` (line search), ``cg_iters``,
    ``cg_reason``, ``chosen_iter`` (after backtracking), ``curvature_products``,
    ``function_evals``, ``preconditioner`` (the method used).

    Example::

        opt = HessianFree(model.parameters(), damping=45.0)
        def closure():
            out = model(x); return out, loss_fn(out, y)
        def curvature_closure():
            out = model(x[:256]); return out, loss_fn(out, y[:256])
        for _ in range(100):
            opt.step(closure, curvature_closure, per_example=PerExample(model, x, y, loss_fn))
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        damping: float = 1.0,
        cg_max_iter: int = 250,
        cg_init_decay: float = 0.95,
        structural_damping: float = 0.0,
        preconditioner: str | None = "martens",
        *,
        preconditioner_exponent: float = 0.75,
        cg_min_iter: int = 1,
        cg_tol: float = 5e-4,
        backtracking: bool = True,
        line_search: bool = True,
        adapt_damping: bool = True,
        damping_bounds: tuple = (1e-8, 1e8),
        curvature: str = "ggn",
        weight_decay: float = 0.0,
        preconditioner_examples: int = 32,
    ) -> None:
        defaults = dict(
            lr=lr,
            damping=damping,
            cg_max_iter=cg_max_iter,
            cg_init_decay=cg_init_decay,
            structural_damping=structural_damping,
            preconditioner=preconditioner,
            preconditioner_exponent=preconditioner_exponent,
            cg_min_iter=cg_min_iter,
            cg_tol=cg_tol,
            backtracking=backtracking,
            line_search=line_search,
            adapt_damping=adapt_damping,
            damping_bounds=tuple(damping_bounds) if isinstance(damping_bounds, list) else damping_bounds,
            curvature=curvature,
            weight_decay=weight_decay,
            preconditioner_examples=preconditioner_examples,
        )
        _validate(defaults)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(
                "HessianFree doesn't support per-parameter options (parameter groups): "
                f"got {len(self.param_groups)} groups; pass one list of parameters"
            )
        self._params = self.param_groups[0]["params"]
        self.last_info: dict = {}

    @staticmethod
    def check_options(**options: Any) -> None:
        """Validate constructor keyword options without building anything (ValueError)."""
        unknown = sorted(set(options) - set(_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown HessianFree option(s) {unknown}; accepted: {sorted(_DEFAULTS)}")
        _validate({**_DEFAULTS, **options})

    def add_param_group(self, param_group: dict) -> None:
        if getattr(self, "param_groups", None):
            raise ValueError(
                "HessianFree doesn't support per-parameter options (parameter groups); pass one list of parameters"
            )
        super().add_param_group(param_group)

    def load_state_dict(self, state_dict: dict) -> None:
        """Like torch's; options a saved state lacks (an older version's) keep this optimizer's values."""
        super().load_state_dict(with_missing_group_keys(state_dict, self.param_groups))

    def __setstate__(self, state: dict) -> None:
        # unpickling (and deepcopy) restore only defaults, state and param_groups (torch's
        # __getstate__): rebuild the rest, and fill options an older pickle lacks
        super().__setstate__(state)
        for key, default in _DEFAULTS.items():
            self.param_groups[0].setdefault(key, self.defaults.get(key, default))
        self._params = self.param_groups[0]["params"]
        self.__dict__.setdefault("last_info", {})

    # -- global state (kept in the first parameter's state, as torch's LBFGS does) -------------------
    @property
    def _global(self) -> dict:
        st = self.state[self._params[0]]
        for k in ("step", "cg_iters_total", "curvature_products", "function_evals"):
            st.setdefault(k, 0)
        st.setdefault("rho", float("nan"))
        return st

    @property
    def counters(self) -> dict:
        """HF iterations (``step``), CG iterations and curvature-vector products in all, closure
        calls (``function_evals``) and the last reduction ratio ``rho``."""
        st = self._global
        return {k: st[k] for k in ("step", "cg_iters_total", "curvature_products", "function_evals", "rho")}

    @property
    def damping(self) -> float:
        """The current Levenberg-Marquardt lambda."""
        return float(self.param_groups[0]["damping"])

    # -- helpers -----------------------------------------------------------------------------------
    def _theta(self) -> Tensor:
        return _flat([p.detach() for p in self._params])

    def _set(self, flat: Tensor) -> None:
        with torch.no_grad():
            for p, v in zip(self._params, _split(flat, self._params), strict=False):
                p.copy_(v)

    def _objective(self, closure: Callable, theta: Tensor) -> float:
        """f at theta (parameters set to it), with the L2 term; +inf when not finite."""
        self._set(theta)
        with torch.no_grad():
            out = closure()
        self._global["function_evals"] += 1
        loss = _unpack(out, "closure")[1]
        value = float(loss)
        wd = self.param_groups[0]["weight_decay"]
        if wd:
            value += 0.5 * wd * float(torch.dot(theta, theta))
        return value if math.isfinite(value) else math.inf

    # -- the step ----------------------------------------------------------------------------------
    def step(
        self, closure: Callable, curvature_closure: Callable | None = None, per_example: PerExample | None = None
    ) -> Tensor:
        """One HF iteration. ``closure()`` -> ``(outputs, loss)`` on the gradient batch (autograd
        enabled); ``curvature_closure()`` -> ``(outputs, loss[, hidden])`` on the curvature batch
        (default: the gradient batch's graph); ``per_example``: exact per-case gradients for the
        preconditioner (else it is estimated from the graph). Returns the loss before the step
        (detached). Leaves the batch gradient in ``p.grad``. When that loss is not finite, the
        parameters are left unchanged."""
        if not callable(closure):
            raise ValueError(
                f"HessianFree.step needs a closure returning (outputs, loss); got {type(closure).__name__}"
            )
        if per_example is not None and not isinstance(per_example, PerExample):
            if not (isinstance(per_example, tuple) and len(per_example) == 4):
                raise ValueError(
                    f"per_example must be PerExample(model, inputs, targets, loss_fn), got {type(per_example).__name__}"
                )
            per_example = PerExample(*per_example)
        group = self.param_groups[0]
        params = self._params
        st = self._global
        lam = float(group["damping"])
        wd = float(group["weight_decay"])
        curvature = group["curvature"]
        info: dict = {"damping": lam}
        self.last_info = info
        evals0 = st["function_evals"]

        with torch.enable_grad():
            first = _unpack(closure(), "closure")
            outputs, loss = first[:2]
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                raise ValueError(f"the closure's loss must be a scalar tensor, got {loss!r}")
            if not loss.requires_grad:
                raise ValueError("the closure's loss does not require grad: compute it with autograd enabled")
            st["function_evals"] += 1
            reuse_hessian = curvature == "hessian" and curvature_closure is None
            grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True, create_graph=reuse_hessian)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=False)]
        f0_loss = loss.detach()
        info["loss"] = float(f0_loss)
        if not math.isfinite(info["loss"]):
            info.update(loss_after=info["loss"], rho=float("nan"), alpha=0.0, cg_iters=0)
            return f0_loss
        theta0 = self._theta()
        g = _flat([gr.detach() for gr in grads])
        if wd:
            g = g + wd * theta0
        for p, gr in zip(params, _split(g, params), strict=False):
            p.grad = gr.detach().clone()
        f0 = info["loss"] + (0.5 * wd * float(torch.dot(theta0, theta0)) if wd else 0.0)

        # the curvature operator on the curvature batch
        mu = float(group["structural_damping"])
        with torch.enable_grad():
            if curvature_closure is not None:
                op = self._curvature_operator(curvature_closure, mu * lam)
            elif curvature == "hessian":
                op = HessianOperator(loss, params, grads)
            else:
                op = self._operator_from(first, mu * lam)

        def apply_a(v: Tensor) -> Tensor:
            return _flat(op(_split(v, params))) + (lam + wd) * v

        # the preconditioner
        precond_inv = None
        if group["preconditioner"] == "martens":
            with torch.enable_grad():
                diag, method = martens_preconditioner_diagonal(
                    params,
                    per_example=per_example,
                    outputs=outputs,
                    loss=loss,
                    max_examples=group["preconditioner_examples"],
                )
            info["preconditioner"] = method
            precond_inv = (_flat(diag) + lam + wd).pow_(-group["preconditioner_exponent"])
        else:
            info["preconditioner"] = "none"

        # CG from the decayed previous solution
        x0 = None
        if group["cg_init_decay"] > 0 and all("cg_solution" in self.state[p] for p in params):
            x0 = group["cg_init_decay"] * _flat([self.state[p]["cg_solution"] for p in params])
        res = conjugate_gradient(
            apply_a,
            -g,
            x0,
            precond_inv=precond_inv,
            max_iter=group["cg_max_iter"],
            min_iter=group["cg_min_iter"],
            tol=group["cg_tol"],
        )
        products = op.num_products
        del op, first, outputs, loss, grads  # free the graphs: the parameters change from here on
        for p, v in zip(params, _split(res.x, params), strict=False):
            self.state[p]["cg_solution"] = v.detach().clone()
        info.update(cg_iters=res.iterations, cg_reason=res.reason)

        # CG-iteration backtracking on the true objective
        chosen_i, chosen_p, _ = res.iterates[-1]
        f_chosen = self._objective(closure, theta0 + chosen_p)
        if group["backtracking"]:
            for j in range(len(res.iterates) - 2, -1, -1):
                i_j, p_j, _ = res.iterates[j]
                f_j = self._objective(closure, theta0 + p_j)
                if f_j >= f_chosen:
                    break
                chosen_i, chosen_p, f_chosen = i_j, p_j, f_j
        info["chosen_iter"] = chosen_i
        gp = float(torch.dot(g, chosen_p))

        # the step: a backtracking (Armijo) line search along the chosen p
        alpha = float(group["lr"])
        f_new = f_chosen if alpha == 1.0 else self._objective(closure, theta0 + alpha * chosen_p)
        if group["line_search"]:
            tries = 0
            while not f_new <= f0 + ARMIJO_C * alpha * gp:
                if tries == LINE_SEARCH_MAX:  # reject the step
                    alpha, f_new = 0.0, f0
                    break
                alpha *= LINE_SEARCH_SHRINK
                tries += 1
                f_new = self._objective(closure, theta0 + alpha * chosen_p)

        # the reduction ratio against the undamped model, q(p) - q(0) = g^T p + 1/2 p^T (G + wd I) p,
        # with G at theta0: the graph is rebuilt there (one forward of the curvature batch)
        self._set(theta0)
        with torch.enable_grad():
            op = self._curvature_operator(curvature_closure or closure, 0.0)
        model_change = gp + 0.5 * float(torch.dot(chosen_p, _flat(op(_split(chosen_p, params))) + wd * chosen_p))
        products += op.num_products
        del op
        if f_chosen > f0:
            rho = -math.inf  # as Martens' code: a step that raises the loss counts as a failure
        elif model_change < 0:
            rho = (f_chosen - f0) / model_change
        else:
            rho = float("nan")
        if group["adapt_damping"]:
            group["damping"] = adapt_damping(lam, rho, group["damping_bounds"])
        info.update(rho=rho, next_damping=float(group["damping"]))

        theta_new = theta0 + alpha * chosen_p
        self._set(theta_new)
        st["step"] += 1
        st["cg_iters_total"] += res.iterations
        st["curvature_products"] += products
        st["rho"] = rho
        loss_after = f_new - (0.5 * wd * float(torch.dot(theta_new, theta_new)) if wd else 0.0)
        info.update(
            alpha=alpha,
            loss_after=loss_after,
            curvature_products=products,
            function_evals=st["function_evals"] - evals0,
        )
        return f0_loss

    def _curvature_operator(self, curvature_closure: Callable, hidden_weight: float):
        """The curvature operator on a fresh graph of ``curvature_closure()`` at the current parameters."""
        c = _unpack(curvature_closure(), "curvature_closure")
        self._global["function_evals"] += 1
        if self.param_groups[0]["curvature"] == "hessian":
            return HessianOperator(c[1], self._params)
        return self._operator_from(c, hidden_weight)

    def _operator_from(self, c: tuple, hidden_weight: float) -> GaussNewtonOperator:
        structural = self.param_groups[0]["structural_damping"] > 0
        if structural and len(c) < 3:
            raise ValueError(
                "structural_damping > 0 needs the hidden activities: let the curvature closure (or "
                "the closure) return (outputs, loss, hidden)"
            )
        return GaussNewtonOperator(
            c[0], c[1], self._params, hidden=c[2] if structural else None, hidden_weight=hidden_weight
        )


def _unpack(out: Any, name: str) -> tuple:
    if not isinstance(out, (tuple, list)) or len(out) not in (2, 3):
        raise ValueError(
            f"the {name} must return (outputs, loss) (or (outputs, loss, hidden) for structural "
            f"damping), got {type(out).__name__}"
            f"{' of length ' + str(len(out)) if isinstance(out, (tuple, list)) else ''}"
        )
    return tuple(out)
