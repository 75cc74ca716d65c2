"""Curvature of the loss, matrix-free: Hessian- and Gauss-Newton-vector products, top
eigenvalues (Lanczos or power iteration), trace and Frobenius norm (Hutchinson), and the
spectral density (stochastic Lanczos quadrature).

Every function takes ``loss_fn``, a zero-argument callable returning a scalar loss (a fixed
batch), and ``params``, an iterable of tensors or a dict ``name -> tensor``. The Hessian is
with respect to exactly those tensors: pass one layer's weight to get the diagonal block for
that layer (Temperoni et al. 2020's diagnostic).

Cost: the loss and its gradient graph are built **once** per call (``create_graph=True``); each
Hessian-vector product is then one double-backward pass through that graph (Pearlmutter 1994),
so k HVPs cost one forward, one backward and k double-backwards. ``num_hvps`` in every result
counts them.

References: Lanczos with full reorthogonalization (Golub & Van Loan 2013, 10.1); Hutchinson
(1989) trace estimator with Rademacher probes, and ||H||_F^2 = E||Hz||^2 for E[zz^T] = I;
stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Union

import torch
from torch import Tensor

Params = Union[Iterable[Tensor], Mapping[str, Tensor]]

__all__ = [
    "hvp",
    "ggn_vp",
    "HessianOperator",
    "hessian_eigenvalues",
    "hessian_trace",
    "hessian_frobenius_norm",
    "hessian_spectral_density",
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
    for n, t in zip(names, tensors, strict=False):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise ValueError(f"parameter {n!r} must be a tensor with requires_grad=True")
    return names, tensors


class HessianOperator:
    """v -> Hv for the Hessian of ``loss_fn`` w.r.t. ``params``, reusing one gradient graph.

    Vectors are flat float64 tensors of length ``dim`` (the parameters concatenated in order).
    """

    def __init__(self, loss_fn: Callable[[], Tensor], params: Params) -> None:
        self.names, self.params = _names_and_tensors(params)
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        self.device = self.params[0].device
        loss = loss_fn()
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(
                f"loss_fn must return a scalar tensor, got {type(loss).__name__}"
                f"{'' if not isinstance(loss, Tensor) else ' of shape ' + str(tuple(loss.shape))}"
            )
        self.loss = loss.detach()
        self.grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.grads = [
            g if g is not None else torch.zeros_like(p) for g, p in zip(self.grads, self.params, strict=False)
        ]
        self.num_hvps = 0

    def split(self, flat: Tensor) -> list[Tensor]:
        return [c.view_as(p).to(p.dtype) for c, p in zip(flat.split(self.sizes), self.params, strict=False)]

    def apply_blocks(self, vectors: Sequence[Tensor]) -> list[Tensor]:
        """H v for v given per parameter tensor (a list shaped like params)."""
        if not any(g.requires_grad for g in self.grads):  # loss is linear in params
            return [torch.zeros_like(p) for p in self.params]
        hv = torch.autograd.grad(
            self.grads, self.params, grad_outputs=list(vectors), retain_graph=True, allow_unused=True
        )
        self.num_hvps += 1
        return [h.detach() if h is not None else torch.zeros_like(p) for h, p in zip(hv, self.params, strict=False)]

    def __call__(self, flat: Tensor) -> Tensor:
        hv = self.apply_blocks(self.split(flat))
        return torch.cat([h.reshape(-1).to(torch.float64) for h in hv])


def hvp(loss_fn: Callable[[], Tensor], params: Params, vectors: Sequence[Tensor]) -> list[Tensor]:
    """Hessian-vector product H v (double backward). ``vectors`` are shaped like ``params``."""
    op = HessianOperator(loss_fn, params)
    vectors = list(vectors.values()) if isinstance(vectors, Mapping) else list(vectors)
    if len(vectors) != len(op.params) or any(v.shape != p.shape for v, p in zip(vectors, op.params, strict=False)):
        raise ValueError(
            "vectors must match params in number and shapes, got "
            f"{[tuple(v.shape) for v in vectors]} for {[tuple(p.shape) for p in op.params]}"
        )
    return op.apply_blocks(vectors)


def ggn_vp(
    outputs_fn: Callable[[], Tensor],
    loss_on_outputs: Callable[[Tensor], Tensor],
    params: Params,
    vectors: Sequence[Tensor],
) -> list[Tensor]:
    """Generalized Gauss-Newton product G v = J^T H_L J v (Schraudolph 2002; Martens 2010).

    J is the Jacobian of ``outputs_fn()`` w.r.t. ``params`` and H_L the Hessian of
    ``loss_on_outputs`` w.r.t. the outputs. J v is computed by the double-backward trick (a VJP
    with a dummy cotangent u, differentiated w.r.t. u), so no forward-mode support is needed.
    """
    names, ps = _names_and_tensors(params)
    vectors = list(vectors.values()) if isinstance(vectors, Mapping) else list(vectors)
    out = outputs_fn()
    u = torch.zeros_like(out, requires_grad=True)
    vjp = torch.autograd.grad(out, ps, grad_outputs=u, create_graph=True, allow_unused=True)
    pairs = [(g, v) for g, v in zip(vjp, vectors, strict=False) if g is not None]
    jv = torch.autograd.grad([g for g, _ in pairs], u, grad_outputs=[v for _, v in pairs], retain_graph=True)[0]
    o = out.detach().requires_grad_(True)
    loss = loss_on_outputs(o)
    (dl,) = torch.autograd.grad(loss, o, create_graph=True)
    (hjv,) = torch.autograd.grad(dl, o, grad_outputs=jv)
    jt = torch.autograd.grad(out, ps, grad_outputs=hjv, allow_unused=True)
    return [g.detach() if g is not None else torch.zeros_like(p) for g, p in zip(jt, ps, strict=False)]


@dataclass
class EigenResult:
    """``values`` (sorted as requested), ``vectors`` (flat, float64, one per row), ``num_hvps``."""

    values: Tensor
    vectors: Tensor | None
    num_hvps: int
    converged: bool


_WHICH = ("largest", "smallest", "largest_magnitude")
_METHODS = ("lanczos", "power")


def _rand_unit(dim: int, device, generator: torch.Generator | None) -> Tensor:
    v = torch.randn(dim, dtype=torch.float64, generator=generator).to(device)
    return v / v.norm()


def _select(theta: Tensor, k: int, which: str) -> Tensor:
    if which == "largest":
        return torch.argsort(theta, descending=True)[:k]
    if which == "smallest":
        return torch.argsort(theta)[:k]
    return torch.argsort(theta.abs(), descending=True)[:k]


def _lanczos(
    op: Callable[[Tensor], Tensor], dim: int, k: int, which: str, tol: float, max_iter: int, v0: Tensor
) -> tuple[Tensor, Tensor, bool]:
    """Lanczos with full reorthogonalization. Stops when every wanted Ritz value theta_i has an
    error bound min(r_i, r_i^2 / gap_i) <= tol * |theta_i|, with r_i = |beta_m s_{m,i}| the
    residual norm and gap_i the distance to the nearest other Ritz value (Parlett 1998, 11.7):
    |theta_i - lambda| <= r_i always, and <= r_i^2 / gap_i once the spectrum near theta_i is
    resolved."""
    m_max = min(max_iter, dim)
    q = torch.zeros(m_max + 1, dim, dtype=torch.float64, device=v0.device)
    q[0] = v0
    alpha = torch.zeros(m_max, dtype=torch.float64)
    beta = torch.zeros(m_max, dtype=torch.float64)
    converged = False
    m = 0
    theta = s = None
    for j in range(m_max):
        w = op(q[j])
        if not bool(torch.isfinite(w).all()):
            raise ValueError(
                f"a Hessian-vector product returned non-finite values (Lanczos step {j}); "
                "the loss or its curvature overflows at these parameters"
            )
        alpha[j] = torch.dot(w, q[j]).cpu()
        # full reorthogonalization against every previous vector, twice (Kahan: "twice is enough")
        for _ in range(2):
            w = w - q[: j + 1].T @ (q[: j + 1] @ w)
        b = w.norm()
        beta[j] = b.cpu()
        m = j + 1
        t = torch.diag(alpha[:m]) + torch.diag(beta[: m - 1], 1) + torch.diag(beta[: m - 1], -1)
        theta, s = torch.linalg.eigh(t)
        if m >= k:
            idx = _select(theta, k, which)
            resid = (beta[j] * s[m - 1, idx]).abs()
            others = (theta[idx, None] - theta[None, :]).abs()
            others[torch.arange(len(idx)), idx] = float("inf")
            gap = others.min(dim=1).values if m > 1 else torch.zeros_like(resid)  # no gap known yet
            bound = torch.minimum(resid, resid**2 / gap.clamp_min(torch.finfo(torch.float64).tiny))
            scale = theta[idx].abs().clamp_min(torch.finfo(torch.float64).tiny)
            if bool((bound <= tol * scale).all()) or b < 1e-12 * max(1.0, float(theta.abs().max())):
                converged = True
                break
        if b < 1e-300:
            converged = True
            break
        q[j + 1] = w / b
    idx = _select(theta, k, which)
    vecs = s[:, idx].T.to(q.device) @ q[:m]
    return theta[idx], vecs, converged


def _power(
    op: Callable[[Tensor], Tensor], dim: int, k: int, which: str, tol: float, max_iter: int, v0: Tensor, generator
) -> tuple[Tensor, Tensor, bool]:
    """Power iteration with deflation; converges to largest-magnitude eigenvalues. Stops when the
    relative change of the Rayleigh quotient is below tol (PyHessian's criterion)."""
    if which == "smallest":
        raise ValueError("method='power' finds largest-magnitude eigenvalues; use method='lanczos' for 'smallest'")
    values, vectors, all_conv = [], [], True
    for i in range(k):
        v = v0 if i == 0 else _rand_unit(dim, v0.device, generator)
        lam, conv = None, False
        for _ in range(max_iter):
            for u in vectors:  # deflate found directions
                v = v - torch.dot(u, v) * u
            v = v / v.norm()
            w = op(v)
            for u, mu in zip(vectors, values, strict=False):
                w = w - mu * torch.dot(u, v) * u
            new = float(torch.dot(w, v))
            if lam is not None and abs(new - lam) <= tol * max(abs(lam), 1e-300):
                lam, conv = new, True
                v = w / w.norm() if w.norm() > 0 else v
                break
            lam = new
            if w.norm() == 0:
                conv = True
                break
            v = w / w.norm()
        values.append(lam)
        vectors.append(v)
        all_conv &= conv
    vals = torch.tensor(values, dtype=torch.float64)
    order = _select(vals, k, "largest" if which == "largest" else "largest_magnitude")
    return vals[order], torch.stack(vectors)[order], all_conv


def hessian_eigenvalues(
    loss_fn: Callable[[], Tensor],
    params: Params,
    k: int = 1,
    which: str = "largest",
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
    return_vectors: bool = False,
) -> EigenResult:
    """The k extreme eigenvalues of the loss Hessian.

    Args:
        k: how many.
        which: ``"largest"`` (algebraic), ``"smallest"``, or ``"largest_magnitude"``.
        method: ``"lanczos"`` (full reorthogonalization; stops when the error bound of every
            wanted Ritz value, min(r, r^2 / gap), is at most tol * |value|) or
            ``"power"`` (stops when the value changes by less than tol, relative).
        tol: convergence tolerance (see method).
        max_iter: maximum HVPs (Lanczos) or iterations per eigenvalue (power).
        generator: for the random start vector.
        return_vectors: also return the eigenvectors (flat, float64).
    """
    if which not in _WHICH:
        raise ValueError(f"which must be one of {', '.join(_WHICH)}, got {which!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    op = HessianOperator(loss_fn, params)
    if k > op.dim:
        raise ValueError(f"k={k} exceeds the number of parameters {op.dim}")
    v0 = _rand_unit(op.dim, op.device, generator)
    if method == "lanczos":
        vals, vecs, conv = _lanczos(op, op.dim, k, which, tol, max(max_iter, k), v0)
    else:
        vals, vecs, conv = _power(op, op.dim, k, which, tol, max_iter, v0, generator)
    return EigenResult(vals, vecs if return_vectors else None, op.num_hvps, conv)


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
    return (torch.randint(0, 2, p.shape, generator=generator, dtype=torch.int8).to(p.dtype) * 2 - 1).to(p.device)


def _check_probes(probes) -> int:
    if not isinstance(probes, int) or probes < 2:
        raise ValueError(f"probes must be an integer >= 2 (the standard error needs two), got {probes!r}")
    return probes


def _mean_stderr(samples: Tensor) -> tuple[float, float]:
    n = samples.numel()
    return float(samples.mean()), float(samples.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")


def hessian_trace(
    loss_fn: Callable[[], Tensor],
    params: Params,
    probes: int = 100,
    per_param: bool = False,
    generator: torch.Generator | None = None,
) -> EstimateResult:
    """Hutchinson's estimate tr(H) = E[z^T H z], z Rademacher, with its standard error.

    ``per_param=True`` also returns tr(H_ii) for each parameter block i from the same probes:
    E[z_i^T (Hz)_i] = tr(H_ii), since the cross terms z_i^T H_ij z_j have mean 0.
    """
    probes = _check_probes(probes)
    op = HessianOperator(loss_fn, params)
    totals, blocks = [], [[] for _ in op.params]
    for _ in range(probes):
        z = [_rademacher(p, generator) for p in op.params]
        hz = op.apply_blocks(z)
        parts = [float((zi.double() * hi.double()).sum()) for zi, hi in zip(z, hz, strict=False)]
        totals.append(sum(parts))
        for b, v in zip(blocks, parts, strict=False):
            b.append(v)
    value, se = _mean_stderr(torch.tensor(totals, dtype=torch.float64))
    res = EstimateResult(value, se, op.num_hvps)
    if per_param:
        stats = [_mean_stderr(torch.tensor(b, dtype=torch.float64)) for b in blocks]
        res.per_param = {n: s[0] for n, s in zip(op.names, stats, strict=False)}
        res.per_param_stderr = {n: s[1] for n, s in zip(op.names, stats, strict=False)}
    return res


_EXACT_LIMIT = 20_000


def hessian_frobenius_norm(
    loss_fn: Callable[[], Tensor],
    params: Params,
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
    """
    op = HessianOperator(loss_fn, params)
    if exact:
        if op.dim > _EXACT_LIMIT:
            raise ValueError(
                f"exact=True needs one HVP per parameter; {op.dim} parameters exceed the limit "
                f"{_EXACT_LIMIT}: use the stochastic estimate (exact=False)"
            )
        sq_total, sq_blocks = 0.0, [0.0 for _ in op.params]
        eye = torch.zeros(op.dim, dtype=torch.float64, device=op.device)
        for j in range(op.dim):
            eye.zero_()
            eye[j] = 1.0
            hv = op.apply_blocks(op.split(eye))
            parts = [float((h.double() ** 2).sum()) for h in hv]
            sq_total += sum(parts)
            for i, v in enumerate(parts):
                sq_blocks[i] += v
        res = EstimateResult(math.sqrt(sq_total), 0.0, op.num_hvps)
        if per_param:
            res.per_param = {n: math.sqrt(v) for n, v in zip(op.names, sq_blocks, strict=False)}
            res.per_param_stderr = {n: 0.0 for n in op.names}
        return res
    probes = _check_probes(probes)
    totals, blocks = [], [[] for _ in op.params]
    for _ in range(probes):
        z = [_rademacher(p, generator) for p in op.params]
        hz = op.apply_blocks(z)
        parts = [float((h.double() ** 2).sum()) for h in hz]
        totals.append(sum(parts))
        for b, v in zip(blocks, parts, strict=False):
            b.append(v)

    def norm_and_se(samples):
        m2, se2 = _mean_stderr(torch.tensor(samples, dtype=torch.float64))
        norm = math.sqrt(max(m2, 0.0))
        return norm, (se2 / (2 * norm) if norm > 0 else 0.0)  # d sqrt(x) = dx / (2 sqrt(x))

    value, se = norm_and_se(totals)
    res = EstimateResult(value, se, op.num_hvps)
    if per_param:
        stats = [norm_and_se(b) for b in blocks]
        res.per_param = {n: s[0] for n, s in zip(op.names, stats, strict=False)}
        res.per_param_stderr = {n: s[1] for n, s in zip(op.names, stats, strict=False)}
    return res


@dataclass
class SpectralDensity:
    """Estimated eigenvalue density: ``grid`` and ``density`` (integrates to ~1), plus the
    Gaussian quadrature ``nodes`` and ``weights`` of each run."""

    grid: Tensor
    density: Tensor
    nodes: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    num_hvps: int = 0


def hessian_spectral_density(
    loss_fn: Callable[[], Tensor],
    params: Params,
    iterations: int = 80,
    runs: int = 1,
    grid_points: int = 1000,
    sigma: float | None = None,
    generator: torch.Generator | None = None,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature (Ghorbani et al. 2019): for each run, Lanczos from a random
    unit vector gives a tridiagonal T = U diag(theta) U^T; the density is approximated by
    sum_i U_{0i}^2 N(x; theta_i, sigma^2), averaged over runs. ``sigma`` defaults to 1% of the
    spectral range."""
    if not isinstance(iterations, int) or iterations < 2:
        raise ValueError(f"iterations must be an integer >= 2, got {iterations!r}")
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive integer, got {runs!r}")
    op = HessianOperator(loss_fn, params)
    m = min(iterations, op.dim)
    nodes, weights = [], []
    for _ in range(runs):
        v0 = _rand_unit(op.dim, op.device, generator)
        q = [v0]
        alpha, beta = [], []
        for j in range(m):
            w = op(q[j])
            a = float(torch.dot(w, q[j]))
            alpha.append(a)
            qs = torch.stack(q)
            for _ in range(2):
                w = w - qs.T @ (qs @ w)
            b = float(w.norm())
            if j == m - 1 or b < 1e-12:
                break
            beta.append(b)
            q.append(w / b)
        k = len(alpha)
        t = torch.diag(torch.tensor(alpha, dtype=torch.float64))
        if k > 1:
            bt = torch.tensor(beta[: k - 1], dtype=torch.float64)
            t = t + torch.diag(bt, 1) + torch.diag(bt, -1)
        theta, u = torch.linalg.eigh(t)
        nodes.append(theta)
        weights.append(u[0] ** 2)
    all_nodes = torch.cat(nodes)
    lo, hi = float(all_nodes.min()), float(all_nodes.max())
    span = max(hi - lo, 1e-12 * max(abs(lo), abs(hi), 1.0))
    s = sigma if sigma is not None else 0.01 * span
    grid = torch.linspace(lo - 0.1 * span, hi + 0.1 * span, grid_points, dtype=torch.float64)
    density = torch.zeros_like(grid)
    for th, w in zip(nodes, weights, strict=False):
        density += (w[None, :] * torch.exp(-0.5 * ((grid[:, None] - th[None, :]) / s) ** 2)).sum(1)
    density /= runs * s * math.sqrt(2 * math.pi)
    return SpectralDensity(grid, density, nodes, weights, op.num_hvps)
