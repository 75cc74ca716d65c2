"""Lanczos on a symmetric operator with a bounded basis: the one Lanczos of the curvature diagnostics.

``lanczos(apply, v0, steps, capacity, ...)`` builds an orthonormal basis Q of the Krylov space of
``apply`` from ``v0`` and the projected matrix T = Q^T A Q (tridiagonal for plain Lanczos). Every
new vector is orthogonalized against every vector held, twice (Kahan's "twice is enough"; Golub &
Van Loan 2013, 10.1 and 10.3). At most ``capacity`` vectors are held; when the basis is full the
run continues in one of two ways:

- ``keep`` given (eigenvalues): thick restart (Wu & Simon 2000; Stewart 2001's Krylov-Schur in
  the symmetric case). The Ritz vectors chosen by ``keep`` replace the basis and the last Lanczos
  vector is appended, so T becomes an arrowhead matrix and A Q = Q T + beta q e^T still holds:
  the residual of a Ritz pair (theta, Q s) is |beta s_last| as in plain Lanczos.
- ``keep`` None (quadrature): the oldest vector is dropped, so each new vector is orthogonalized
  against the last ``capacity`` ones only (local reorthogonalization). T stays the tridiagonal
  of the whole run; its Gauss quadrature stays accurate for smooth functions without full
  reorthogonalization (Knizhnerman 1996; Ubaru, Chen & Saad 2017 run SLQ without any).

Vectors are kept in the dtype they come in (float32 for a float32 model: half the memory of
float64); every inner product is accumulated in float64 (``dots``): float32 partial sums over
chunks of 4096 entries, added in float64, so a 10M-entry dot keeps about 1e-7 relative accuracy
where one float32 BLAS dot loses about 1e-5.

Examples:
    >>> import torch
    >>> a = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
    >>> v0 = torch.ones(10, dtype=torch.float64) / 10**0.5
    >>> run = lanczos(lambda v: a @ v, v0, steps=10, capacity=10)
    >>> round(float(torch.linalg.eigvalsh(run.t)[-1]), 10)
    10.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Basis", "LanczosRun", "dot64", "dots", "lanczos"]

CHUNK = 4096  # entries per float32 partial sum in ``dots``


def dots(rows: Tensor, w: Tensor) -> Tensor:
    """``rows @ w`` in float64 for rows [r, n] and w [n], accumulated in float64 (see the module)."""
    r, n = rows.shape
    if rows.dtype == torch.float64 or n <= CHUNK:
        return rows.to(torch.float64) @ w.to(torch.float64)
    k = n // CHUNK
    m = k * CHUNK
    part = torch.bmm(w[:m].view(k, 1, CHUNK), rows[:, :m].view(r, k, CHUNK).permute(1, 2, 0))  # [k, 1, r]
    out = part.sum((0, 1), dtype=torch.float64)
    if m < n:
        out += rows[:, m:].to(torch.float64) @ w[m:].to(torch.float64)
    return out


def dot64(a: Tensor, b: Tensor) -> float:
    """The inner product of two tensors of one shape, accumulated in float64."""
    return float(dots(a.reshape(1, -1), b.reshape(-1))[0])


class Basis:
    """Orthonormal vectors of length ``dim`` in ``dtype``: rows of blocks allocated as the basis grows
    (doubling, never beyond ``capacity`` rows). ``labels[i]`` is the index in T of row i.
    ``peak_bytes`` is the most memory its blocks ever took."""

    def __init__(self, dim: int, dtype: torch.dtype, device: torch.device, capacity: int) -> None:
        self.dim, self.dtype, self.device, self.capacity = dim, dtype, device, capacity
        self.blocks: list[Tensor] = []
        self.labels: list[int] = []
        self.peak_bytes = 0

    @property
    def row_bytes(self) -> int:
        return self.dim * torch.empty((), dtype=self.dtype).element_size()

    @property
    def allocated(self) -> int:
        return sum(b.shape[0] for b in self.blocks)

    def _used(self) -> list[Tensor]:
        """The blocks cut to the rows in use, in row order."""
        out, left = [], len(self.labels)
        for b in self.blocks:
            if left <= 0:
                break
            out.append(b[: min(left, b.shape[0])])
            left -= b.shape[0]
        return out

    def row(self, i: int) -> Tensor:
        for b in self.blocks:
            if i < b.shape[0]:
                return b[i]
            i -= b.shape[0]
        raise IndexError(i)

    def append(self, v: Tensor, label: int) -> None:
        """Copy ``v`` into a new row (allocating a block if every row is in use)."""
        n = len(self.labels)
        if n >= self.capacity:
            raise RuntimeError("the basis is full")
        if n == self.allocated:
            rows = min(max(1, self.allocated), self.capacity - self.allocated)
            self.blocks.append(torch.empty(rows, self.dim, dtype=self.dtype, device=self.device))
            self.peak_bytes = max(self.peak_bytes, self.allocated * self.row_bytes)
        self.row(n).copy_(v)
        self.labels.append(label)

    def overwrite_oldest(self, v: Tensor, label: int) -> int:
        """Replace the row with the smallest label by ``v`` (the sliding window of local reorthogonalization);
        returns its row."""
        i = min(range(len(self.labels)), key=self.labels.__getitem__)
        self.row(i).copy_(v)
        self.labels[i] = label
        return i

    def dots(self, w: Tensor) -> Tensor:
        """Q w in float64, one entry per row in use."""
        return torch.cat([dots(b, w) for b in self._used()])

    def subtract(self, w: Tensor, c: Tensor) -> None:
        """w <- w - Q^T c, in place."""
        start = 0
        for b in self._used():
            w.addmv_(b.T, c[start : start + b.shape[0]].to(b.dtype), alpha=-1)
            start += b.shape[0]

    def _products(self, s: Tensor, width: int = 1 << 20):
        """(start, end, (Q^T s)[:, start:end]) chunk by chunk over the entries, for s [rows, k] in
        float64: one matrix product per block, in the basis dtype (converting chunks to float64
        costs more than the products; the sums have only ``rows`` terms). The chunks (k x 2^20
        entries) are the only temporary."""
        st = s.T.to(self.dtype)
        used = self._used()
        buf = torch.empty(s.shape[1], min(width, self.dim), dtype=self.dtype, device=self.device)
        for a in range(0, self.dim, width):
            e = min(a + width, self.dim)
            y, i = buf[:, : e - a], 0
            for b in used:
                part = st[:, i : i + b.shape[0]]
                if i == 0:
                    torch.mm(part, b[:, a:e], out=y)
                else:
                    y.addmm_(part, b[:, a:e])
                i += b.shape[0]
            yield a, e, y

    def combine(self, s: Tensor) -> Tensor:
        """Q^T s for s [rows, k] (float64): k new vectors, one per row of the result."""
        out = torch.empty(s.shape[1], self.dim, dtype=self.dtype, device=self.device)
        for a, e, y in self._products(s):
            out[:, a:e] = y
        return out

    def rotate(self, s: Tensor) -> None:
        """Replace the basis by Q^T s in place (chunk by chunk over the entries), labels 0..k-1."""
        k = s.shape[1]
        used = self._used()
        for a, e, y in self._products(s):
            i = 0
            for b in used:
                take = min(b.shape[0], k - i)
                if take <= 0:
                    break
                b[:take, a:e] = y[i : i + take]
                i += take
        self.labels = list(range(k))


@dataclass
class LanczosRun:
    """The state a run ends in. ``t``: the projected matrix Q^T A Q of the expanded vectors (float64,
    on the CPU); ``beta``: the norm of the last residual (A Q = Q T + beta q e_last^T); ``basis``: Q
    (after a restart, its rows are Ritz vectors); ``steps``: products made; ``restarts``: thick
    restarts made; ``invariant``: the Krylov space became invariant (T's eigenvalues are exact);
    ``stopped``: ``done`` said stop, or the space became invariant."""

    t: Tensor
    beta: float
    basis: Basis
    steps: int
    restarts: int
    invariant: bool
    stopped: bool


def _orthogonalize(basis: Basis, w: Tensor) -> Tensor:
    """w <- w minus its components along the basis, twice; returns the coefficients Q^T (A q)."""
    c = basis.dots(w)
    basis.subtract(w, c)
    c2 = basis.dots(w)
    basis.subtract(w, c2)
    return c + c2


def _grow(t: Tensor, size: int) -> Tensor:
    if t.shape[0] >= size:
        return t
    out = torch.zeros(size, size, dtype=torch.float64)
    out[: t.shape[0], : t.shape[0]] = t
    return out


def _restart(basis: Basis, t: Tensor, beta: float, keep: Callable[[Tensor], Tensor]) -> Tensor:
    """Thick restart: the Ritz vectors ``keep`` picks become the basis; returns the new T (arrowhead
    rows of the kept Ritz values; the coupling beta s to the next vector is recomputed when it is
    expanded)."""
    theta, s = torch.linalg.eigh(t)
    idx = keep(theta)
    basis.rotate(s[:, idx])
    out = torch.zeros(len(idx) + 1, len(idx) + 1, dtype=torch.float64)
    out[: len(idx), : len(idx)] = torch.diag(theta[idx])
    out[: len(idx), len(idx)] = out[len(idx), : len(idx)] = beta * s[-1, idx]
    return out


def lanczos(
    apply: Callable[[Tensor], Tensor],
    v0: Tensor,
    steps: int,
    capacity: int,
    keep: Callable[[Tensor], Tensor] | None = None,
    done: Callable[[Tensor, float], bool] | None = None,
) -> LanczosRun:
    """Lanczos from the unit vector ``v0`` for at most ``steps`` products (at least 1), holding at most
    ``capacity`` basis vectors (plus the product being orthogonalized).

    ``keep(theta) -> indices`` makes a full basis restart thickly on those Ritz vectors (fewer than
    ``capacity``); without it a full basis drops its oldest vector. ``done(t, beta)`` is asked
    after every product whether to stop (T's last row is the one coupled to the residual).
    Raises ``ValueError`` when a product is not finite.
    """
    if capacity < 2:
        raise ValueError(f"the Lanczos basis needs room for at least 2 vectors, got {capacity}")
    dtype, eps = v0.dtype, torch.finfo(v0.dtype).eps
    basis = Basis(v0.numel(), dtype, v0.device, capacity)
    basis.append(v0, 0)
    del v0  # the basis holds its copy: a caller that passes a temporary does not hold a second one
    t = torch.zeros(0, 0, dtype=torch.float64)
    row, label, restarts = 0, 0, 0
    for step in range(steps):
        w = apply(basis.row(row)).to(dtype)
        c = _orthogonalize(basis, w)
        beta = float(dots(w.view(1, -1), w)[0]) ** 0.5
        if not (bool(torch.isfinite(c).all()) and math.isfinite(beta)):
            raise ValueError(
                f"a curvature-vector product returned non-finite values (Lanczos step {step}); "
                "the loss or its curvature overflows at these parameters"
            )
        t = _grow(t, label + 1)
        t[basis.labels, label] = c
        t[label, basis.labels] = c
        invariant = beta <= 10 * eps * float(c.norm()) or beta < 1e-300
        stop = invariant or (done is not None and done(t[: label + 1, : label + 1], beta))
        if stop or step == steps - 1:
            return LanczosRun(t[: label + 1, : label + 1], beta, basis, step + 1, restarts, invariant, stop)
        w /= beta
        if len(basis.labels) < capacity:
            row, label = len(basis.labels), label + 1
            basis.append(w, label)
        elif keep is not None:
            t = _restart(basis, t[: label + 1, : label + 1], beta, keep)
            row = label = len(basis.labels)
            basis.append(w, label)
            restarts += 1
        else:
            label += 1
            row = basis.overwrite_oldest(w, label)
        del w  # copied into the basis: free it before the next product allocates its own
    raise ValueError(f"steps must be a positive integer, got {steps!r}")
