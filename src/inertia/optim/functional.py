"""The momentum update rules as pure functions over lists of tensors (the style of torch's sgd.py).

Sutskever, Martens, Dahl & Hinton (2013), eqs. 1-4, with theta the parameters, v the velocity
(v_0 = 0), mu_t the momentum and eps_t the learning rate at update t:

    CM:   v_{t+1} = mu_t v_t - eps_t grad f(theta_t)
          theta_{t+1} = theta_t + v_{t+1}
    NAG:  v_{t+1} = mu_t v_t - eps_t grad f(theta_t + mu_t v_t)
          theta_{t+1} = theta_t + v_{t+1}

The parameter tensors always hold the point where the next gradient is taken. For CM that is
theta_t. For NAG it is the look-ahead point phi_t = theta_t + mu_t v_t, so NAG needs one
gradient per update, like CM. Substituting theta_{t+1} = phi_t - mu_t v_t + v_{t+1}:

    phi_{t+1} = theta_{t+1} + mu_{t+1} v_{t+1}
              = phi_t - mu_t v_t + (1 + mu_{t+1}) v_{t+1}
              = phi_t - eps_t g_t + mu_{t+1} v_{t+1}          (using v_{t+1} = mu_t v_t - eps_t g_t)

which needs mu_{t+1}, known at the end of update t from the schedule.

Weight decay ``wd`` adds the gradient of (wd / 2) ||w||^2 at the point where the gradient is taken
(theta_t for CM, phi_t for NAG): g <- g + wd * w. Below, g is that sum.

The velocity is stored as v = -k d: a direction tensor d and a per-tensor float scale k. All
three paths keep this one state, so a run can move between them at any update (each path only
chooses its own next k).

The foreach and per-tensor paths. They update k and d as

    k_{t+1} = mu_t k_t + eps_t,      d_{t+1} = lerp(d_t, g_t, eps_t / k_{t+1})

(then -k_{t+1} d_{t+1} = -(mu_t k_t d_t + eps_t g_t) = mu_t v_t - eps_t g_t = v_{t+1} exactly).
The lerp is one pass (3 tensor transfers), so CM costs 6 transfers (lerp, then theta -= k d) and
NAG 9 (lerp, phi -= eps g, phi -= mu_{t+1} k d). When k_{t+1} = 0 (eps = 0 and v = 0) the
velocity is 0. Both paths compute the same floating-point operations in the same order, so their
results are bitwise identical; the ``foreach`` path batches each operation over all tensors of a
(device, dtype, scale, momentum) group with ``torch._foreach_*`` kernels.

The fused path: the exact rules through torch's own fused SGD kernel. ``torch._fused_sgd_``
(what ``torch.optim.SGD(fused=True)`` calls) makes one pass per tensor, reading p, g, b and
writing p, b: the 5 transfers a momentum update cannot do without (the "floor"). With its
arguments lr = a, momentum = m, dampening = 1 - c and weight decay wd (g above includes wd p):

    b' = m b + c g            (b' = g with is_first_step)
    p' = p - a b'             (nesterov=False)
    p' = p - a (g + m b')     (nesterov=True)

Take b = d_t, the stored direction, b' = d_{t+1}, and solve for a, m, c and the new scale k'.

CM. v_{t+1} = -k' b' = -(k' m d_t + k' c g) must equal mu_t v_t - eps_t g = -(mu_t k_t d_t +
eps_t g), so k' m = mu_t k_t and k' c = eps_t; theta_{t+1} = theta_t + v_{t+1} = theta_t - k' b'
gives a = k'. That leaves k' free. inertia takes

    k' = max(eps_t, mu_t k_t),   m = mu_t k_t / k',   c = eps_t / k',   a = k',

so m <= 1 and c <= 1: the buffer is never scaled up (k' = eps_t, i.e. v = -eps_{t-1} b and
m = mu_t eps_{t-1} / eps_t, is the other natural choice; it multiplies b by eps_{t-1} / eps_t
whenever the learning rate drops, and cannot take eps_t = 0). With constant lr and mu, k_t = eps
after the first update, so k' = eps, m = mu, c = 1: exactly the arguments of
``torch.optim.SGD(momentum=mu, fused=True)``, with b its momentum buffer. When the learning rate
drops below mu_t k_t, m = 1 and c = eps_t / (mu_t k_t) (eps_t = 0 included).

NAG. The parameters hold phi_t. -k' b' = mu_t v_t - eps_t g gives, as for CM, k' m = mu_t k_t and
k' c = eps_t; phi_{t+1} = phi_t - eps_t g - mu_{t+1} k' b' (above) against p' = p - a g - a m b'
gives a = eps_t and a m = mu_{t+1} k'. So m = mu_{t+1} k' / eps_t, and k' m = mu_t k_t becomes
mu_{t+1} k'^2 / eps_t = mu_t k_t:

    k' = sqrt((mu_t / mu_{t+1}) k_t eps_t),   c = eps_t / k',   m = mu_{t+1} / c,   a = eps_t.

Nothing is left to choose. With constant lr and mu, k_t = eps and k' = sqrt(eps^2) = eps exactly
(IEEE square root of a rounded square), c = 1, m = mu: the arguments of ``torch.optim.SGD(
momentum=mu, nesterov=True, fused=True)``. When the learning rate drops, k' is the geometric mean
of k_t and eps_t, c < 1 and m > mu_{t+1}: the buffer grows towards b / (new lr), as torch's does
at once, over a few updates.

The first update of a tensor, and any update with mu_t k_t = 0 (v_t contributes nothing), uses
is_first_step (b' = g): CM with k' = a = eps_t (the kernel's m only has to be non-zero for it to
write b'); NAG, p' = p - a (1 + m) g, with k' = a = eps_t and m = mu_{t+1}. The kernel cannot
express k' = 0 (CM with eps_t = 0 = mu_t k_t, where v_{t+1} = 0), eps_t = 0 for NAG, or
mu_{t+1} = 0 for NAG (momentum 0 makes the kernel drop the buffer): those updates take the
foreach path. The kernel's dampening argument carries 1 - c, so c reaches it with an absolute
rounding error of at most 2^-53: relative error 2^-53 / c, negligible unless the learning rate
has just dropped by many orders of magnitude.

Where the fused path applies: see :func:`momentum` and docs/optim.md ("The update paths").
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor

__all__ = ["momentum", "velocity", "shift_by_velocity", "fused_kernel_applies"]


def momentum(
    params: list[Tensor],
    grads: list[Tensor],
    directions: list[Tensor],
    scales: list[float],
    *,
    lr: float,
    momentum: float | Sequence[float],
    next_momentum: float | None = None,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    foreach: bool | None = None,
    fused: bool | None = None,
) -> list[float]:
    """One CM or NAG update, in place on ``params`` and ``directions``; returns the new scales.

    The velocity of parameter i is ``v_i = -scales[i] * directions[i]`` (start with zero
    directions and scales 0.0; :func:`velocity` converts). Every path keeps this one state.

    Which path runs: with ``fused`` and ``foreach`` both ``None`` (the default), or ``fused=True``,
    torch's fused SGD kernel for every tensor it applies to (:func:`fused_kernel_applies` for its
    device and dtype; parameter, gradient and direction of one dense layout; not under
    ``torch.compile``; not at an update the kernel cannot express, see the module docstring), the
    foreach path for the others. ``foreach=True`` or ``fused=False``: the foreach path for all
    (per-tensor if a gradient is sparse); ``foreach=False``: the per-tensor loop.

    Args:
        params: parameters (for NAG: the look-ahead points phi_t), updated in place.
        grads: gradients at ``params``.
        directions: velocity directions d_t, updated in place to d_{t+1}.
        scales: velocity scales k_t (floats).
        lr: eps_t.
        momentum: mu_t, one number or one per tensor (for NAG: the mu each look-ahead point
            phi_t = theta_t + mu_t v_t was built with, which differs between tensors when some
            of them skipped an update at which the schedule changed mu).
        next_momentum: mu_{t+1}, used by NAG to place the next look-ahead point (default mu_t).
        nesterov: NAG if true, else CM.
        weight_decay: L2 coefficient, applied at the point where the gradient was taken.
        foreach: use the ``torch._foreach_*`` path (``False``: the per-tensor loop).
        fused: use torch's fused kernel where it applies (``False``: never).

    Examples:
        >>> p, g, d = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0]), torch.zeros(2)
        >>> k = momentum([p], [g], [d], [0.0], lr=0.1, momentum=0.9)
        >>> p, velocity(d, k[0])  # v_1 = -eps g
        (tensor([0.9500, 2.1000]), tensor([-0.0500,  0.1000]))
    """
    if not (len(params) == len(grads) == len(directions) == len(scales)):
        raise ValueError(
            "params, grads, directions and scales must have the same length, got "
            f"{len(params)}, {len(grads)}, {len(directions)}, {len(scales)}"
        )
    if fused and foreach:
        raise ValueError("fused=True and foreach=True cannot both be set: choose one path (or leave both None)")
    momenta = _per_tensor(momentum, len(params), "momentum")
    hypers = dict(lr=lr, next_momentum=next_momentum, nesterov=nesterov, weight_decay=weight_decay)
    # under torch.compile the kernel's float arguments would have to be constants (docs/optim.md)
    if (foreach is None if fused is None else fused) and not torch.compiler.is_compiling():
        new_scales, rest = _fused_momentum(params, grads, directions, scales, momenta=momenta, **hypers)
        if rest:  # the tensors and updates the kernel does not apply to
            sub = [[lst[i] for i in rest] for lst in (params, grads, directions, scales, momenta)]
            for i, k in zip(rest, _fallback(foreach, sub[1])(*sub[:4], momenta=sub[4], **hypers), strict=True):
                new_scales[i] = k
        return new_scales
    return _fallback(foreach, grads)(params, grads, directions, scales, momenta=momenta, **hypers)


def _fallback(foreach: bool | None, grads: list[Tensor]):
    """The foreach path, or the per-tensor loop with ``foreach=False`` or a sparse gradient."""
    if foreach is None:
        foreach = all(not g.is_sparse for g in grads)
    return _multi_tensor_momentum if foreach else _single_tensor_momentum


def _per_tensor(value: float | Sequence[float], n: int, name: str) -> list[float]:
    if not isinstance(value, (list, tuple)):
        return [cast(float, value)] * n  # not float(value): under torch.compile it may be symbolic
    if len(value) != n:
        raise ValueError(f"{name} must be one number or one per tensor ({n}), got {len(value)} values")
    return list(value)


def _single_tensor_momentum(params, grads, directions, scales, *, lr, momenta, next_momentum, nesterov, weight_decay):
    new_scales = []
    for p, g, d, k, mu in zip(params, grads, directions, scales, momenta, strict=False):
        if weight_decay != 0:
            g = g.add(p, alpha=weight_decay)
        k_new = mu * k + lr
        if k_new == 0:  # eps = 0 and v = 0: the velocity stays 0
            d.zero_()
        else:
            d.lerp_(g, lr / k_new)  # v_{t+1} = -k_{t+1} d_{t+1} = mu_t v_t - eps_t g
        if nesterov:
            mu_next = mu if next_momentum is None else next_momentum
            p.add_(g, alpha=-lr).add_(d, alpha=-mu_next * k_new)  # phi_t - eps g + mu_{t+1} v_{t+1}
        else:
            p.add_(d, alpha=-k_new)  # theta_t + v_{t+1}
        new_scales.append(k_new)
    return new_scales


def _group(keys: list, *lists):
    """Buckets of the tensors that share device, dtype and key (a tuple of floats), as
    ``(key, (*lists, indices))``.

    Keys are compared, not hashed: under ``torch.compile`` a hashed float is specialized to its
    value (a new graph whenever it changes, i.e. at every step, since the velocity scale does),
    while a comparison between two floats is a guard that keeps holding from step to step."""
    buckets: dict = defaultdict(list)  # (device, dtype) -> [(key, bucket)]
    for i, items in enumerate(zip(*lists, strict=True)):
        bucket = _bucket(buckets[(items[0].device, items[0].dtype)], keys[i], len(lists) + 1)
        for lst, item in zip(bucket, items, strict=False):
            lst.append(item)
        bucket[-1].append(i)
    return [kb for same_kind in buckets.values() for kb in same_kind]


def _bucket(same_kind: list, key, width: int) -> tuple:
    """The bucket of ``key`` in ``same_kind`` (a list of ``(key, bucket)``), added if new."""
    for known, bucket in same_kind:
        if known == key:
            return bucket
    bucket = tuple([] for _ in range(width))
    same_kind.append((key, bucket))
    return bucket


def _multi_tensor_momentum(params, grads, directions, scales, *, lr, momenta, next_momentum, nesterov, weight_decay):
    new_scales = [0.0] * len(params)
    for (k, mu), (ps, gs, ds, idx) in _group(list(zip(scales, momenta, strict=False)), params, grads, directions):
        if weight_decay != 0:
            gs = torch._foreach_add(gs, ps, alpha=weight_decay)
        k_new = mu * k + lr
        if k_new == 0:
            torch._foreach_zero_(ds)
        else:
            torch._foreach_lerp_(ds, gs, lr / k_new)
        if nesterov:
            mu_next = mu if next_momentum is None else next_momentum
            torch._foreach_add_(ps, gs, alpha=-lr)
            torch._foreach_add_(ps, ds, alpha=-mu_next * k_new)
        else:
            torch._foreach_add_(ps, ds, alpha=-k_new)
        for i in idx:
            new_scales[i] = k_new
    return new_scales


# -- the fused path ---------------------------------------------------------------------------
class _KernelArgs:
    """The arguments of one ``torch._fused_sgd_`` call and the scale k' it leaves (module docstring)."""

    __slots__ = ("lr", "momentum", "dampening", "first", "scale")

    def __init__(self, lr: float, momentum: float, dampening: float, first: bool, scale: float) -> None:
        self.lr, self.momentum, self.dampening, self.first, self.scale = lr, momentum, dampening, first, scale


def _kernel_args(k: float, mu: float, lr: float, mu_next: float, nesterov: bool) -> _KernelArgs | None:
    """The kernel's arguments for an update from scale ``k`` with momentum ``mu``; ``None`` where
    the kernel cannot express it."""
    fresh = mu * k == 0  # v_t contributes nothing: the kernel's first step, b' = g
    if nesterov:
        if lr == 0 or mu_next == 0:
            return None
        if fresh:
            return _KernelArgs(lr, mu_next, 0.0, True, lr)
        k_new = math.sqrt(mu / mu_next * k * lr)
        if k_new == 0:  # the product underflowed
            return None
        c = lr / k_new
        return _KernelArgs(lr, mu_next / c, 1.0 - c, False, k_new)
    if fresh:
        return None if lr == 0 else _KernelArgs(lr, 1.0, 0.0, True, lr)
    k_new = max(lr, mu * k)
    # mu * (k / k_new), 1 - lr / k_new: exactly mu and 0 when k = k_new = lr (torch's arguments)
    return _KernelArgs(k_new, mu * (k / k_new), 1.0 - lr / k_new, False, k_new)


def _fused_momentum(params, grads, directions, scales, *, lr, momenta, next_momentum, nesterov, weight_decay):
    """The fused path for the tensors it applies to; returns the new scales and the indices of
    the tensors left for another path."""
    n = len(params)
    buckets: list  # of ((k, mu), (params, grads, directions, indices))
    if n and scales.count(scales[0]) == n and momenta.count(momenta[0]) == n and _one_kind(params):
        buckets = [((scales[0], momenta[0]), (params, grads, directions, range(n)))]  # the usual case
    else:
        buckets = _group(list(zip(scales, momenta, strict=True)), params, grads, directions)
    new_scales, rest = [0.0] * n, []
    for (k, mu), (ps, gs, ds, idx) in buckets:
        args = _kernel_args(k, mu, lr, mu if next_momentum is None else next_momentum, nesterov)
        if args is None or not fused_kernel_applies(ps[0].device, ps[0].dtype):
            rest += idx
            continue
        fits = _fused_sgd_where_it_fits(ps, gs, ds, args, nesterov, weight_decay)
        if fits is None and len(idx) == n:  # every tensor in one call
            return [args.scale] * n, []
        for i, fit in zip(idx, fits or [True] * len(idx), strict=True):
            if fit:
                new_scales[i] = args.scale
            else:
                rest.append(i)
    return new_scales, rest


def _fused_sgd_where_it_fits(ps, gs, ds, args: _KernelArgs, nesterov: bool, wd: float) -> list[bool] | None:
    """One kernel call over the tensors whose layout it handles; ``None`` if that is all of them,
    else which ones."""
    if all(map(_is_contiguous, ps)) and all(map(_is_contiguous, gs)) and all(map(_is_contiguous, ds)):
        _fused_sgd(ps, gs, ds, args, nesterov, wd)
        return None
    fits = [_kernel_layout(p, g, d) for p, g, d in zip(ps, gs, ds, strict=True)]
    if any(fits):
        ps, gs, ds = ([x for x, fit in zip(lst, fits, strict=True) if fit] for lst in (ps, gs, ds))
        _fused_sgd(ps, gs, ds, args, nesterov, wd)
    return fits


_is_contiguous = Tensor.is_contiguous


def _one_kind(tensors: list[Tensor]) -> bool:
    """Whether all ``tensors`` share one device and dtype."""
    return len(torch._C._group_tensors_by_device_and_dtype([cast(list[Tensor | None], tensors)], False)) == 1


def _fused_sgd(ps: list[Tensor], gs: list[Tensor], bs: list[Tensor], args: _KernelArgs, nesterov: bool, wd: float):
    torch._fused_sgd_(
        ps,
        gs,
        bs,
        weight_decay=wd,
        momentum=args.momentum,
        lr=args.lr,
        dampening=args.dampening,
        nesterov=nesterov,
        maximize=False,
        is_first_step=args.first,
    )


def _kernel_layout(p: Tensor, g: Tensor, d: Tensor) -> bool:
    """Whether the kernel, which walks each tensor's storage as one flat array, updates ``p``,
    ``g``, ``d`` element by element: one layout, without gaps or overlaps."""
    if not (p.layout == g.layout == d.layout == torch.strided):  # a sparse gradient, say
        return False
    strides = p.stride()
    if g.stride() != strides or d.stride() != strides:
        return False
    expected = 1  # dense: the strides, sorted, are the running products of the sizes
    for stride, size in sorted(zip(strides, p.shape, strict=True)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


_KERNEL_VERIFIED: dict[tuple[str, torch.dtype], bool] = {}


def fused_kernel_applies(device: torch.device | str, dtype: torch.dtype) -> bool:
    """Whether torch's fused SGD kernel computes its formula on ``device`` (its type) in ``dtype``.

    Checked once per (device type, dtype), on 67 values (whole vector blocks and a remainder),
    against a float64 loop of the formula, with the features the fused path uses (dampening,
    weight decay, Nesterov, the first step); cached. False where the kernel does not exist or is
    wrong: in torch 2.13 the CPU kernel leaves whole vector blocks of bfloat16 and float16
    tensors unchanged (pytorch/pytorch#191763), so those dtypes take the foreach path on CPU.

    Examples:
        >>> fused_kernel_applies("cpu", torch.float32)
        True
        >>> fused_kernel_applies("cpu", torch.int64)
        False
    """
    device = torch.device(device)
    key = (device.type, dtype)
    if key not in _KERNEL_VERIFIED:
        _KERNEL_VERIFIED[key] = dtype.is_floating_point and _kernel_computes_its_formula(device, dtype)
    return _KERNEL_VERIFIED[key]


def _kernel_computes_its_formula(device: torch.device, dtype: torch.dtype) -> bool:
    gen = torch.Generator().manual_seed(0)
    for nesterov in (False, True):
        for first in (False, True):
            p, g, b = (torch.randn(67, generator=gen, dtype=torch.float64).to(dtype) for _ in range(3))
            wd, m, c, lr = 0.25, 0.75, 0.5, 1.0
            gg = g.double() + wd * p.double()
            b_ref = gg if first else m * b.double() + c * gg
            p_ref = p.double() - lr * (gg + m * b_ref if nesterov else b_ref)
            ps, gs, bs = ([x.to(device)] for x in (p, g, b))
            try:
                _fused_sgd(ps, gs, bs, _KernelArgs(lr, m, 1 - c, first, 0.0), nesterov, wd)
            except (RuntimeError, NotImplementedError):  # no kernel for this device or dtype
                return False
            for got, ref in ((ps[0], p_ref), (bs[0], b_ref)):
                # a few roundings of each intermediate; a skipped or wrong update errs by O(1)
                bound = 6 * torch.finfo(dtype).eps * (ref.abs() + 1)
                if not bool(((got.cpu().double() - ref).abs() <= bound).all()):
                    return False
    return True


def velocity(direction: Tensor, scale: float) -> Tensor:
    """The velocity v = -scale * direction (a new tensor)."""
    return direction * (-scale)


def shift_by_velocity(
    params: list[Tensor], directions: list[Tensor], scales: list[float], factor: float | Sequence[float]
) -> None:
    """In place: p <- p + factor * v for each parameter (v = -k d), ``factor`` one number or one
    per tensor. ``Momentum.at_theta`` uses factor -mu to move from the look-ahead point phi_t to
    theta_t, and +mu to move back."""
    factors = _per_tensor(factor, len(params), "factor")
    for (k, c), (ps, ds, _) in _group(list(zip(scales, factors, strict=False)), params, directions):
        if k != 0 and c != 0:
            torch._foreach_add_(ps, ds, alpha=-c * k)
