"""Curvature of the loss, matrix-free: Hessian- and Gauss-Newton-vector products, top
eigenvalues (Lanczos or power iteration), trace and Frobenius norm (Hutchinson), and the
spectral density (stochastic Lanczos quadrature).

Every function takes ``loss_fn``, a zero-argument callable returning a scalar loss (a fixed
batch), and ``params``, an iterable of tensors or a dict ``name -> tensor``. The Hessian is
with respect to exactly those tensors: pass one layer's weight to get the diagonal block for
that layer (Temperoni et al. 2020's diagnostic). Instead of ``(loss_fn, params)`` every
quantity also accepts a prebuilt operator: a :class:`HessianOperator`, or any
:class:`~inertia.diagnostics.products.FlatOperator` (e.g. over a ``GaussNewtonProduct``), so
several quantities at one step share one forward pass and one gradient graph.

Cost: the loss and its gradient graph are built **once** per operator (``create_graph=True``);
each Hessian-vector product is then one double-backward pass through that graph (Pearlmutter
1994), so k HVPs cost one forward, one backward and k double-backwards. ``num_hvps`` in every
result counts the products made by that call.

Memory: the eigen-solvers and the spectral density keep their Lanczos basis in the parameters'
dtype (float32 for a float32 model, every inner product accumulated in float64), grow it as
needed and never beyond ``memory_budget`` bytes (:mod:`.lanczos`); the result says which solver
ran. Products themselves hold the gradient graph and about three parameter-sized temporaries.

References: Lanczos with full reorthogonalization (Golub & Van Loan 2013, 10.1); thick restart
(Wu & Simon 2000); Hutchinson (1989) trace estimator with Rademacher probes, and
||H||_F^2 = E||Hz||^2 for E[zz^T] = I; stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017;
Ghorbani, Krishnan & Xiao 2019).

Examples:
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> op = HessianOperator(lambda: (w**3).sum(), [w])  # H = diag(6 w) = diag(6, 12)
    >>> round(float(hessian_eigenvalues(op, k=1).values[0]), 5)  # float32: about 7 digits
    12.0
    >>> hessian_trace(op, probes=2).value, op.num_hvps  # one graph: 2 Lanczos + 2 probe products
    (18.0, 4)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..validation import check_integer, check_number
from .lanczos import dot64, lanczos
from .products import FlatOperator, GaussNewtonProduct, HessianProduct, flatten, twice_differentiable

Params = Iterable[Tensor] | Mapping[str, Tensor]
LossOrOperator = Callable[[], Tensor] | FlatOperator

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
]


def _names_and_tensors(params: Params) -> tuple[list[str], list[Tensor]]:
    if isinstance(params, Mapping):
        names, tensors = list(params.keys()), list(params.values())
    else:
        tensors = list(params)
        names = [f"param{i}" for i in range(len(tensors))]
    if not tensors:
        raise ValueError("params is empty: pass the tensors to differentiate with respect to")
    for n, t in zip(names, tensors, strict=True):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"parameter {n!r} must be a tensor with requires_grad=True")
    return names, tensors


class HessianOperator(FlatOperator):
    """v -> Hv for the Hessian of ``loss_fn`` w.r.t. ``params``, reusing one gradient graph.

    A :class:`~inertia.diagnostics.products.FlatOperator` over a
    :class:`~inertia.diagnostics.products.HessianProduct`: ``loss_fn`` is called once, here.
    Calling it maps flat vectors of length ``dim`` (the parameters concatenated in order) in
    ``dtype`` (default float64); ``apply_blocks`` maps lists shaped like ``params``. Pass it to
    any quantity of this module in place of ``(loss_fn, params)`` to share the graph.
    """

    def __init__(self, loss_fn: Callable[[], Tensor], params: Params, dtype: torch.dtype = torch.float64) -> None:
        names, tensors = _names_and_tensors(params)
        with twice_differentiable():  # SDPA's CPU flash kernel and hardsigmoid have no double backward
            loss = loss_fn()
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            shape = f" of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else ""
            raise ValueError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}{shape}")
        product = HessianProduct(loss, tensors)
        super().__init__(product, tensors, dtype)
        self.names = names
        self.loss = loss.detach()
        self.grads = product.grads

    @property
    def num_hvps(self) -> int:
        return self.num_products

    def apply_blocks(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        """H v for v given per parameter tensor (a list shaped like params)."""
        return self.product(vectors)


def _vector_list(vectors: Sequence[Tensor] | Mapping[str, Tensor], like: Sequence[Tensor]) -> list[Tensor]:
    vs = list(vectors.values()) if isinstance(vectors, Mapping) else list(vectors)
    if len(vs) != len(like) or any(v.shape != p.shape for v, p in zip(vs, like, strict=False)):
        raise ValueError(
            "vectors must match params in number and shapes, got "
            f"{[tuple(v.shape) for v in vs]} for {[tuple(p.shape) for p in like]}"
        )
    return vs


def hvp(loss_fn: Callable[[], Tensor], params: Params, vectors: Sequence[Tensor]) -> list[Tensor]:
    """Hessian-vector product H v (double backward). ``vectors`` are shaped like ``params``.

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> hvp(lambda: (w**3).sum(), [w], [torch.ones(2)])[0]
        tensor([ 6., 12.])
    """
    op = HessianOperator(loss_fn, params)
    return op.apply_blocks(_vector_list(vectors, op.params))


def ggn_vp(
    outputs_fn: Callable[[], Tensor],
    loss_on_outputs: Callable[[Tensor], Tensor],
    params: Params,
    vectors: Sequence[Tensor],
) -> list[Tensor]:
    """Generalized Gauss-Newton product G v = J^T H_L J v (Schraudolph 2002; Martens 2010).

    J is the Jacobian of ``outputs_fn()`` w.r.t. ``params`` and H_L the Hessian of
    ``loss_on_outputs`` w.r.t. the outputs; computed by
    :class:`~inertia.diagnostics.products.GaussNewtonProduct` (J v by the double-backward trick,
    so no forward-mode support is needed).

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> ggn_vp(lambda: 3 * w, lambda z: (z**2).sum(), [w], [torch.ones(2)])[0]  # J = 3I, H_L = 2I
        tensor([18., 18.])
    """
    _, ps = _names_and_tensors(params)
    with twice_differentiable():
        out = outputs_fn()
    return GaussNewtonProduct(out, loss_on_outputs(out), ps)(_vector_list(vectors, ps))


def _operator(loss_fn: LossOrOperator, params: Params | None) -> FlatOperator:
    """The operator of a call: ``loss_fn`` itself when it is one, else a new ``HessianOperator``."""
    if isinstance(loss_fn, FlatOperator):
        if params is not None:
            raise ValueError("params must be None when an operator is passed: the operator carries its parameters")
        return loss_fn
    if params is None:
        raise ValueError("params is missing: pass (loss_fn, params) or a prebuilt HessianOperator")
    return HessianOperator(loss_fn, params)


def _names(op: FlatOperator) -> list[str]:
    return list(getattr(op, "names", [f"param{i}" for i in range(len(op.params))]))


def _basis_dtype(op: FlatOperator) -> torch.dtype:
    """The parameters' dtype (promoted over them), at least float32."""
    dtype = torch.float32
    for p in op.params:
        dtype = torch.promote_types(dtype, p.dtype)
    return dtype


def _flat_apply(op: FlatOperator, dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
    return lambda v: flatten(op.product(op.split(v)), dtype)


_MIN_DEFAULT_BUDGET = 64 * 2**20


def default_memory_budget(dim: int, dtype: torch.dtype, vectors: int) -> int:
    """The default ``memory_budget``: room for ``vectors`` vectors of ``dim`` entries in ``dtype``, and at
    least 64 MiB (so small models never restart).

    Examples:
        >>> default_memory_budget(10_000_000, torch.float32, 4) // 2**20
        152
    """
    return max(vectors * dim * torch.empty((), dtype=dtype).element_size(), _MIN_DEFAULT_BUDGET)


def _vectors_in_budget(memory_budget: int | None, op: FlatOperator, dtype: torch.dtype, default: int) -> int:
    """How many vectors of the basis dtype ``memory_budget`` holds (the default holds ``default``)."""
    if memory_budget is None:
        memory_budget = default_memory_budget(op.dim, dtype, default)
    check_integer("memory_budget", memory_budget, lo=1)
    return memory_budget // (op.dim * torch.empty((), dtype=dtype).element_size())


def _too_small(memory_budget: int, need: int, op: FlatOperator, dtype: torch.dtype) -> ValueError:
    row = op.dim * torch.empty((), dtype=dtype).element_size()
    return ValueError(
        f"memory_budget={memory_budget} bytes holds {memory_budget // row} vectors of {op.dim} {dtype} "
        f"entries; this call needs at least {need} ({need * row} bytes)"
    )


@dataclass
class EigenResult:
    """``values`` (sorted as requested), ``vectors`` (flat, in the basis dtype, one per row),
    ``num_hvps``, ``converged``; ``solver``: ``"lanczos"`` (full reorthogonalization, the basis
    never filled the budget), ``"thick-restart lanczos"`` (it did: ``restarts`` restarts) or
    ``"power"``; ``basis_bytes``: the most memory the solver's vectors took (the basis and the
    product being orthogonalized), at most the ``memory_budget``."""

    values: Tensor
    vectors: Tensor | None
    num_hvps: int
    converged: bool
    solver: str = "lanczos"
    restarts: int = 0
    basis_bytes: int = 0


_WHICH = ("largest", "smallest", "largest_magnitude")
_METHODS = ("lanczos", "power")


def _rand_unit(dim: int, dtype: torch.dtype, device, generator: torch.Generator | None) -> Tensor:
    v = torch.randn(dim, dtype=dtype, generator=generator).to(device)
    return v / math.sqrt(dot64(v, v))


def _select(theta: Tensor, k: int, which: str) -> Tensor:
    if which == "largest":
        return torch.argsort(theta, descending=True)[:k]
    if which == "smallest":
        return torch.argsort(theta)[:k]
    return torch.argsort(theta.abs(), descending=True)[:k]


def _error_bounds_met(t: Tensor, beta: float, k: int, which: str, tol: float) -> bool:
    """Every wanted Ritz value theta_i has an error bound min(r_i, r_i^2 / gap_i) <= tol * |theta_i|,
    with r_i = |beta s_{m,i}| the residual norm and gap_i = min_j (|theta_i - theta_j| - r_j) a
    lower bound on the distance from theta_i to the rest of the spectrum (each interval
    [theta_j - r_j, theta_j + r_j] holds an eigenvalue): |theta_i - lambda| <= r_i always, and
    <= r_i^2 / gap_i when gap_i > 0 (Parlett 1998, 11.7)."""
    m = t.shape[0]
    if m < k:
        return False
    theta, s = torch.linalg.eigh(t)
    resid = (beta * s[m - 1]).abs()
    idx = _select(theta, k, which)
    others = (theta[idx, None] - theta[None, :]).abs() - resid[None, :]
    others[torch.arange(len(idx)), idx] = float("inf")
    gap = others.min(dim=1).values if m > 1 else torch.zeros(len(idx), dtype=theta.dtype)  # no gap known yet
    r = resid[idx]
    bound = torch.where(gap > 0, torch.minimum(r, r**2 / gap.clamp_min(torch.finfo(torch.float64).tiny)), r)
    return bool((bound <= tol * theta[idx].abs().clamp_min(torch.finfo(torch.float64).tiny)).all())


def _lanczos_eigen(
    op: FlatOperator, k: int, which: str, tol: float, steps: int, generator, capacity: int, vectors: bool
) -> EigenResult:
    """Lanczos with full reorthogonalization while the basis fits ``capacity`` vectors, thick restarts
    keeping the k wanted and about half the basis of the next Ritz vectors beyond it."""
    kept = min(capacity - 1, max(k, capacity // 2))
    dtype = _basis_dtype(op)
    run = lanczos(
        _flat_apply(op, dtype),
        _rand_unit(op.dim, dtype, op.device, generator),
        steps,
        capacity,
        keep=lambda theta: _select(theta, kept, which),
        done=lambda t, beta: _error_bounds_met(t, beta, k, which, tol),
    )
    theta, s = torch.linalg.eigh(run.t)
    idx = _select(theta, k, which)
    return EigenResult(
        theta[idx],
        run.basis.combine(s[:, idx]) if vectors else None,
        run.steps,
        run.stopped,
        "thick-restart lanczos" if run.restarts else "lanczos",
        run.restarts,
        run.basis.peak_bytes + run.basis.row_bytes,  # the basis and the product being orthogonalized
    )


def _power_one(
    apply: Callable[[Tensor], Tensor], v: Tensor, found: list[Tensor], values: list[float], tol: float, max_iter: int
) -> tuple[float, Tensor, bool]:
    """One eigenpair by power iteration on H deflated by the ``found`` pairs, in place on ``v`` and the
    products (so it holds the found vectors, v and one product)."""
    lam: float | None = None
    for _ in range(max_iter):
        for u in found:  # deflate found directions
            v.add_(u, alpha=-dot64(u, v))
        v.div_(math.sqrt(dot64(v, v)))
        w = apply(v)
        for u, mu in zip(found, values, strict=True):
            w.add_(u, alpha=-mu * dot64(u, v))
        new, norm = dot64(w, v), math.sqrt(dot64(w, w))
        if norm == 0:
            return new, v, True
        if lam is not None and abs(new - lam) <= tol * max(abs(lam), 1e-300):
            return new, w.div_(norm), True
        lam, v = new, w.div_(norm)
    return float(lam if lam is not None else 0.0), v, False


def _power(
    op: FlatOperator, k: int, which: str, tol: float, max_iter: int, dtype: torch.dtype, generator
) -> tuple[Tensor, Tensor, bool]:
    """Power iteration with deflation; converges to largest-magnitude eigenvalues. Stops when the
    relative change of the Rayleigh quotient is below tol (PyHessian's criterion)."""
    apply = _flat_apply(op, dtype)
    values: list[float] = []
    found: list[Tensor] = []
    all_conv = True
    for _ in range(k):
        lam, v, conv = _power_one(apply, _rand_unit(op.dim, dtype, op.device, generator), found, values, tol, max_iter)
        values.append(lam)
        found.append(v)
        all_conv &= conv
    vals = torch.tensor(values, dtype=torch.float64)
    order = _select(vals, k, "largest" if which == "largest" else "largest_magnitude")
    return vals[order], torch.stack(found)[order], all_conv


def _check_eigen_args(k, which, method, tol, max_iter) -> None:
    if which not in _WHICH:
        raise ValueError(f"which must be one of {', '.join(_WHICH)}, got {which!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    if method == "power" and which == "smallest":
        raise ValueError("method='power' finds largest-magnitude eigenvalues; use method='lanczos' for 'smallest'")
    check_integer("k", k, lo=1)
    check_number("tol", tol, lo=0, lo_open=True)
    check_integer("max_iter", max_iter, lo=1)


def hessian_eigenvalues(
    loss_fn: LossOrOperator,
    params: Params | None = None,
    k: int = 1,
    which: str = "largest",
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    return_vectors: bool = False,
    memory_budget: int | None = None,
) -> EigenResult:
    """The k extreme eigenvalues of the loss Hessian.

    Args:
        loss_fn: the loss on a fixed batch, or a prebuilt operator (then ``params`` is None).
        k: how many.
        which: ``"largest"`` (algebraic), ``"smallest"``, or ``"largest_magnitude"``.
        method: ``"lanczos"`` (stops when the error bound of every wanted Ritz value,
            min(r, r^2 / gap), is at most tol * |value|) or ``"power"`` (with deflation; stops when
            the value changes by less than tol, relative).
        tol: convergence tolerance (see method).
        max_iter: maximum HVPs (Lanczos) or iterations per eigenvalue (power).
        generator: for the random start vector.
        return_vectors: also return the eigenvectors (flat, in the basis dtype).
        memory_budget: bytes for the solver's vectors (the Lanczos basis and the product being
            orthogonalized, in the parameters' dtype, at least float32). Lanczos keeps its full
            basis, with full reorthogonalization, while it fits; when the next vector would not,
            it restarts thickly on the k wanted Ritz vectors and about as many more (Wu & Simon
            2000), so memory stays bounded and convergence stays Krylov-fast. Power iteration holds
            k + 2 vectors. Default (None): k + 3 parameter-sized vectors (4 for k = 1), and at
            least 64 MiB. A budget below k + 2 vectors raises ``ValueError``.

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, -3.0, 2.0], requires_grad=True)
        >>> res = hessian_eigenvalues(lambda: (w**4).sum() / 12, [w], k=2)  # H = diag(w^2)
        >>> [round(v, 5) for v in res.values.tolist()], res.solver
        ([9.0, 4.0], 'lanczos')
    """
    _check_eigen_args(k, which, method, tol, max_iter)
    op = _operator(loss_fn, params)
    if k > op.dim:
        raise ValueError(f"k={k} exceeds the number of parameters {op.dim}")
    dtype = _basis_dtype(op)
    room = _vectors_in_budget(memory_budget, op, dtype, k + 3)
    if room < k + 2:
        raise _too_small(memory_budget or 0, k + 2, op, dtype)
    start = op.num_products
    if method == "power":
        vals, vecs, conv = _power(op, k, which, tol, max_iter, dtype, generator)
        row = op.dim * vecs.element_size()
        return EigenResult(
            vals, vecs if return_vectors else None, op.num_products - start, conv, "power", 0, row * (k + 2)
        )
    steps = max(max_iter, k)
    if room - 1 >= op.dim:  # the whole space fits: the Krylov space is exhausted after dim products
        steps = min(steps, op.dim)
    res = _lanczos_eigen(op, k, which, tol, steps, generator, max(2, min(room - 1, steps)), return_vectors)
    res.num_hvps = op.num_products - start
    return res


@dataclass
class EstimateResult:
    """A stochastic estimate: ``value``, its standard error ``stderr``, ``num_hvps``, and
    ``per_param`` (name -> value) when asked for."""

    value: float
    stderr: float
    num_hvps: int
    per_param: dict | None = None
    per_param_stderr: dict | None = None

    def __float__(self) -> float:
        return float(self.value)


def _rademacher(p: Tensor, generator) -> Tensor:
    """+-1 with probability 1/2 each, shaped like ``p`` (drawn on the CPU from ``generator``)."""
    return torch.randint(0, 2, p.shape, generator=generator, dtype=p.dtype).mul_(2).sub_(1).to(p.device)


def _check_probes(probes) -> int:
    if not isinstance(probes, int) or probes < 2:
        raise ValueError(f"probes must be an integer >= 2 (the standard error needs two), got {probes!r}")
    return probes


def _mean_stderr(samples: Sequence[float]) -> tuple[float, float]:
    x = torch.tensor(samples, dtype=torch.float64)
    n = x.numel()
    return float(x.mean()), float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")


def _hutchinson(
    op: FlatOperator, probes: int, generator, sample: Callable[[Tensor, Tensor], float]
) -> tuple[list[float], list[list[float]]]:
    """``sample(z_i, (Hz)_i)`` for every parameter block i of ``probes`` Rademacher probes z: the totals
    over blocks per probe, and each block's samples."""
    totals: list[float] = []
    blocks: list[list[float]] = [[] for _ in op.params]
    for _ in range(probes):
        z = [_rademacher(p, generator) for p in op.params]
        parts = [sample(zi, hi) for zi, hi in zip(z, op.product(z), strict=True)]
        totals.append(sum(parts))
        for b, v in zip(blocks, parts, strict=True):
            b.append(v)
    return totals, blocks


def _estimate(
    op: FlatOperator,
    start: int,
    totals: list[float],
    blocks: list[list[float]],
    per_param: bool,
    stat: Callable[[Sequence[float]], tuple[float, float]],
) -> EstimateResult:
    value, se = stat(totals)
    res = EstimateResult(value, se, op.num_products - start)
    if per_param:
        stats = [stat(b) for b in blocks]
        res.per_param = {n: s[0] for n, s in zip(_names(op), stats, strict=True)}
        res.per_param_stderr = {n: s[1] for n, s in zip(_names(op), stats, strict=True)}
    return res


def hessian_trace(
    loss_fn: LossOrOperator,
    params: Params | None = None,
    probes: int = 100,
    per_param: bool = False,
    generator: torch.Generator | None = None,
) -> EstimateResult:
    """Hutchinson's estimate tr(H) = E[z^T H z], z Rademacher, with its standard error.

    ``per_param=True`` also returns tr(H_ii) for each parameter block i from the same probes:
    E[z_i^T (Hz)_i] = tr(H_ii), since the cross terms z_i^T H_ij z_j have mean 0. ``loss_fn`` may
    be a prebuilt operator (then ``params`` is None).

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> hessian_trace(lambda: (w**3).sum(), [w], probes=4).value  # a diagonal H: exact
        18.0
    """
    probes = _check_probes(probes)
    op = _operator(loss_fn, params)
    start = op.num_products
    totals, blocks = _hutchinson(op, probes, generator, dot64)
    return _estimate(op, start, totals, blocks, per_param, _mean_stderr)


_EXACT_LIMIT = 20_000


def _norm_and_stderr(samples: Sequence[float]) -> tuple[float, float]:
    """sqrt of the mean of squared-norm samples, with a delta-method standard error."""
    m2, se2 = _mean_stderr(samples)
    norm = math.sqrt(max(m2, 0.0))
    return norm, (se2 / (2 * norm) if norm > 0 else 0.0)  # d sqrt(x) = dx / (2 sqrt(x))


def _exact_frobenius(op: FlatOperator, start: int, per_param: bool) -> EstimateResult:
    """sum_j ||H e_j||^2 over every coordinate: one HVP each."""
    if op.dim > _EXACT_LIMIT:
        raise ValueError(
            f"exact=True needs one HVP per parameter; {op.dim} parameters exceed the limit "
            f"{_EXACT_LIMIT}: use the stochastic estimate (exact=False)"
        )
    sq_blocks = [0.0 for _ in op.params]
    eye = torch.zeros(op.dim, dtype=_basis_dtype(op), device=op.device)
    for j in range(op.dim):
        eye.zero_()
        eye[j] = 1.0
        for i, h in enumerate(op.product(op.split(eye))):
            sq_blocks[i] += dot64(h, h)
    res = EstimateResult(math.sqrt(sum(sq_blocks)), 0.0, op.num_products - start)
    if per_param:
        res.per_param = {n: math.sqrt(v) for n, v in zip(_names(op), sq_blocks, strict=True)}
        res.per_param_stderr = {n: 0.0 for n in _names(op)}
    return res


def hessian_frobenius_norm(
    loss_fn: LossOrOperator,
    params: Params | None = None,
    probes: int = 100,
    exact: bool = False,
    per_param: bool = False,
    generator: torch.Generator | None = None,
) -> EstimateResult:
    """||H||_F, from ||H||_F^2 = E||Hz||^2 (z Rademacher), with a delta-method standard error.

    ``exact=True`` sums ||H e_j||^2 over every coordinate (one HVP each; up to 20,000 parameters).
    ``per_param=True`` also returns, from the same pass, the norm of each parameter's row block
    ||H_{i,:}||_F (E||(Hz)_i||^2 = ||H_{i,:}||_F^2). For the Hessian w.r.t. one layer's weights alone
    (the diagonal block H_ii, Temperoni et al. 2020), pass only that tensor as ``params``.
    ``loss_fn`` may be a prebuilt operator (then ``params`` is None).

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> hessian_frobenius_norm(lambda: (w**3).sum(), [w], exact=True).value  # ||diag(6, 12)||_F
        13.416407864998739
    """
    op = _operator(loss_fn, params)
    start = op.num_products
    if exact:
        return _exact_frobenius(op, start, per_param)
    probes = _check_probes(probes)
    totals, blocks = _hutchinson(op, probes, generator, lambda z, h: dot64(h, h))
    return _estimate(op, start, totals, blocks, per_param, _norm_and_stderr)


@dataclass
class SpectralDensity:
    """Estimated eigenvalue density: ``grid`` and ``density`` (integrates to ~1), plus the
    Gaussian quadrature ``nodes`` and ``weights`` of each run; ``solver``: ``"lanczos"`` (full
    reorthogonalization) or ``"lanczos, local reorthogonalization"`` (against the last vectors
    the budget holds); ``basis_bytes``: the most memory the basis took."""

    grid: Tensor
    density: Tensor
    nodes: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    num_hvps: int = 0
    solver: str = "lanczos"
    basis_bytes: int = 0


def _smoothed(nodes: list[Tensor], weights: list[Tensor], grid_points: int, sigma: float | None):
    all_nodes = torch.cat(nodes)
    lo, hi = float(all_nodes.min()), float(all_nodes.max())
    span = max(hi - lo, 1e-12 * max(abs(lo), abs(hi), 1.0))
    s = sigma if sigma is not None else 0.01 * span
    grid = torch.linspace(lo - 0.1 * span, hi + 0.1 * span, grid_points, dtype=torch.float64)
    density = torch.zeros_like(grid)
    for th, w in zip(nodes, weights, strict=True):
        density += (w[None, :] * torch.exp(-0.5 * ((grid[:, None] - th[None, :]) / s) ** 2)).sum(1)
    density /= len(nodes) * s * math.sqrt(2 * math.pi)
    return grid, density


def hessian_spectral_density(
    loss_fn: LossOrOperator,
    params: Params | None = None,
    iterations: int = 80,
    runs: int = 1,
    grid_points: int = 1000,
    sigma: float | None = None,
    generator: torch.Generator | None = None,
    memory_budget: int | None = None,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature (Ghorbani et al. 2019): for each run, Lanczos from a random
    unit vector gives a tridiagonal T = U diag(theta) U^T; the density is approximated by
    sum_i U_{0i}^2 N(x; theta_i, sigma^2), averaged over runs. ``sigma`` defaults to 1% of the
    spectral range.

    ``memory_budget`` (bytes) bounds the Lanczos basis (in the parameters' dtype, at least
    float32): while all ``iterations`` vectors fit, each is orthogonalized against all the
    previous ones (full reorthogonalization, as Ghorbani et al.); otherwise against the last ones
    the budget holds (local reorthogonalization), which leaves the quadrature of smooth functions
    accurate (Knizhnerman 1996; Ubaru et al. 2017 use none). Default: 4 parameter-sized vectors,
    and at least 64 MiB. ``loss_fn`` may be a prebuilt operator (then ``params`` is None).

    Examples:
        >>> import torch
        >>> w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> sd = hessian_spectral_density(lambda: (w**3).sum(), [w], iterations=3)  # H = diag(6, 12, 18)
        >>> [round(x) for x in sd.nodes[0].tolist()], sd.solver
        ([6, 12, 18], 'lanczos')
    """
    check_integer("iterations", iterations, lo=2)
    check_integer("runs", runs, lo=1)
    op = _operator(loss_fn, params)
    dtype = _basis_dtype(op)
    room = _vectors_in_budget(memory_budget, op, dtype, 4)
    if room < 3:
        raise _too_small(memory_budget or 0, 3, op, dtype)
    start = op.num_products
    m = min(iterations, op.dim)
    capacity = max(2, min(room - 1, m))
    nodes, weights, peak = [], [], 0
    for _ in range(runs):
        run = lanczos(_flat_apply(op, dtype), _rand_unit(op.dim, dtype, op.device, generator), m, capacity)
        theta, u = torch.linalg.eigh(run.t)
        nodes.append(theta)
        weights.append(u[0] ** 2)
        peak = max(peak, run.basis.peak_bytes + run.basis.row_bytes)
    grid, density = _smoothed(nodes, weights, grid_points, sigma)
    solver = "lanczos" if capacity >= m else "lanczos, local reorthogonalization"
    return SpectralDensity(grid, density, nodes, weights, op.num_products - start, solver, peak)
