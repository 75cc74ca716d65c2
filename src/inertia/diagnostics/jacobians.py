"""Singular values of layer-to-layer and input-output Jacobians (Glorot & Bengio 2010, section 4.2;
Pennington et al. 2017's dynamical isometry), for any model.

A *block* is one parameterised module followed by the parameter-free modules after it (its
activation), so for an MLP h_i = phi(W_i h_{i-1} + b_i) and the block Jacobian is
J_i = dh_i / dh_{i-1} = diag(phi'(a_i)) W_i. Glorot & Bengio report the mean singular value:
about 0.8 with the normalized init, about 0.5 with the standard init (5 tanh layers of 1000 units).

**Blocks of any model.** One forward pass with hooks records every module call in order. The
calls of the model's own forward are the candidates; a call whose child calls form a chain (its
input feeds the first child, each child's output the next, the last child's output is its output:
an ``nn.Sequential``, a ``TransformerEncoder``'s layers) is opened into them, recursively; any
other call (a residual block, an attention layer, an LSTM) is one unit. A parameterised unit
starts a block and the parameter-free units it feeds join it (leading ones join the first block);
a unit whose input is not a floating-point tensor (an ``nn.Embedding`` on token ids) is skipped,
so token models get Jacobians from the embedding output on. ``blocks=["layer1", "layer2.0"]``
names the modules instead; ``blocks=[(name, module), ...]`` gives modules whose composition is the
forward pass (as before). A block's Jacobian is taken w.r.t. its first tensor input, the other
arguments (masks, states) held at the values of the recorded call.

**Modes.** Per-example Jacobians need examples that do not interact: the measurement runs with
dropout off (eval mode) and with every BatchNorm that was in train mode normalizing by the batch
statistics of ``inputs`` (the whole batch, as it trains), held fixed. Parameters, gradients, every
buffer, the modes and the global RNG are as they were afterwards (:func:`.state.preserved`).

**Cost.** ``method="exact"`` forms each per-example Jacobian (one vector-Jacobian product per
output coordinate, vectorised) and takes its singular values; above ``max_entries`` entries per
example ``method="auto"`` switches to ``"lanczos"``: stochastic Lanczos quadrature on the smaller
Gram matrix (J J^T or J^T J) with ``lanczos_steps`` Jacobian-vector and vector-Jacobian products
per probe, which estimates the distribution of singular values (nodes and weights per example):
the mean and the largest are accurate to a few percent at 30 steps; the smallest, and so the
condition number, are estimated from above and below. ``JacobianSpectrum.method`` says which was
used.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import jacrev, vjp, vmap

from .batches import call, head
from .products import twice_differentiable
from .state import preserved

__all__ = [
    "JacobianSpectra",
    "JacobianSpectrum",
    "blocks_of",
    "input_output_jacobian_spectrum",
    "jacobian_singular_values",
    "layer_jacobian_singular_values",
]

METHODS = ("auto", "exact", "lanczos")
MAX_ENTRIES = 2**18  # per-example Jacobian entries above which "auto" estimates (a 512 x 512 layer is exact)


@dataclass
class JacobianSpectrum:
    """Singular values of one Jacobian, per example: ``singular_values`` [examples, k].

    ``method="exact"``: every singular value of each example's Jacobian. ``method="lanczos"``: an
    estimate of their distribution, ``singular_values`` the quadrature nodes and ``weights`` their
    weights (each row sums to 1). ``shape`` is the per-example Jacobian's (outputs, inputs)."""

    name: str
    singular_values: torch.Tensor
    method: str = "exact"
    weights: torch.Tensor | None = None
    shape: tuple[int, int] | None = None

    def _w(self) -> torch.Tensor:
        s = self.singular_values
        return torch.full_like(s, 1.0 / s.shape[1]) if self.weights is None else self.weights

    @property
    def mean(self) -> float:
        """The mean singular value (averaged over the examples)."""
        if self.weights is None:
            return float(self.singular_values.mean())
        return float((self.weights * self.singular_values).sum(1).mean())

    @property
    def std(self) -> float:
        """The standard deviation of the singular values (pooled over the examples)."""
        if self.weights is None:
            return float(self.singular_values.std())
        w, s = self.weights, self.singular_values
        mean = (w * s).sum(1).mean()
        return float(((w * (s - mean) ** 2).sum(1).mean()).clamp_min(0).sqrt())

    @property
    def max(self) -> float:
        """The largest singular value over the examples."""
        return float(self.singular_values.max())

    @property
    def condition_number(self) -> float:
        """The median over examples of s_max / s_min (for ``"lanczos"``, of the extreme nodes
        of non-negligible weight: s_min is estimated from above)."""
        s = self.singular_values
        if self.weights is not None:
            s = torch.where(self.weights > 1e-8, s, torch.nan)
            top, low = s.nan_to_num(-math.inf).max(dim=1).values, s.nan_to_num(math.inf).min(dim=1).values
        else:
            top, low = s.max(dim=1).values, s.min(dim=1).values
        return float((top / low.clamp_min(1e-300)).median())

    def __repr__(self) -> str:
        shape = "" if self.shape is None else f", jacobian {self.shape[0]}x{self.shape[1]}"
        return f"JacobianSpectrum({self.name!r}, mean={self.mean:.4g}, max={self.max:.4g}, {self.method}{shape})"


class JacobianSpectra(list):
    """The spectra of :func:`layer_jacobian_singular_values`, in forward order; ``skipped``: the
    blocks left out by its time budget."""

    def __init__(self, items=()) -> None:
        super().__init__(items)
        self.skipped: list[str] = []


# ---------------------------------------------------------------------------------------------- tensors in calls


def _first_tensor(obj: Any) -> torch.Tensor | None:
    """The first tensor in a module's output (a tensor, a tuple such as an LSTM's, a dict or a
    dataclass such as a HF ModelOutput)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    if isinstance(obj, dict):
        for o in obj.values():
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _input_slot(args: tuple, kwargs: dict) -> tuple[str, Any] | None:
    """Where a call's first tensor input is: ("arg", i) or ("kw", key)."""
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            return ("arg", i)
    for k, v in kwargs.items():
        if isinstance(v, torch.Tensor):
            return ("kw", k)
    return None


@dataclass
class _Call:
    name: str
    module: nn.Module
    args: tuple
    kwargs: dict
    slot: tuple[str, Any] | None
    parent: int
    out: Any = None
    children: list[int] = field(default_factory=list)

    @property
    def input(self) -> torch.Tensor | None:
        if self.slot is None:
            return None
        kind, key = self.slot
        return self.args[key] if kind == "arg" else self.kwargs[key]

    @property
    def output(self) -> torch.Tensor | None:
        return _first_tensor(self.out)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        """The call again with its first tensor input replaced by ``z``: the first tensor out."""
        assert self.slot is not None
        kind, key = self.slot
        args, kwargs = list(self.args), dict(self.kwargs)
        if kind == "arg":
            args[key] = z
        else:
            kwargs[key] = z
        out = _first_tensor(self.module(*args, **kwargs))
        if out is None:
            raise ValueError(f"module {self.name} returned no tensor")
        return out


@contextlib.contextmanager
def _removed_after(handles: list) -> Iterator[None]:
    """Hook handles removed when the block ends, however it ends."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _trace(model: nn.Module, run: Callable[[], Any]) -> list[_Call]:
    """Every module call of one forward pass, in order, with its parent call (index 0: the model)."""
    names = {id(m): n for n, m in model.named_modules()}
    calls: list[_Call] = []
    stack: list[int] = []
    seen: dict[str, int] = {}

    def pre(mod, args, kwargs):
        base = names.get(id(mod), type(mod).__name__) or "model"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}#{seen[base]}"
        parent = stack[-1] if stack else -1
        calls.append(_Call(name, mod, tuple(args), dict(kwargs), _input_slot(tuple(args), dict(kwargs)), parent))
        if parent >= 0:
            calls[parent].children.append(len(calls) - 1)
        stack.append(len(calls) - 1)

    def post(mod, args, kwargs, out):
        calls[stack.pop()].out = out

    handles = [m.register_forward_pre_hook(pre, with_kwargs=True) for m in model.modules()]
    handles += [m.register_forward_hook(post, with_kwargs=True) for m in model.modules()]
    with _removed_after(handles), torch.no_grad():
        run()
    return calls


def _is_chain(calls: list[_Call], c: _Call) -> bool:
    """Whether a call's child calls compose to it: its input feeds the first, each output the
    next, the last output is its output."""
    kids = [calls[i] for i in c.children]
    if not kids or c.input is None or c.output is None:
        return False
    if kids[0].input is not c.input or kids[-1].output is not c.output:
        return False
    return all(b.input is a.output and b.input is not None for a, b in zip(kids, kids[1:], strict=False))


def _units(calls: list[_Call], i: int) -> list[_Call]:
    out = []
    for k in calls[i].children:
        out.extend(_units(calls, k) if _is_chain(calls, calls[k]) else [calls[k]])
    return out


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def _group(units: list[_Call]) -> list[tuple[str, list[_Call]]]:
    """Blocks: a parameterised unit and the parameter-free units it feeds."""
    blocks: list[tuple[str, list[_Call]]] = []
    lead: list[_Call] = []
    for u in units:
        x = u.input
        if x is None or not x.is_floating_point() or u.output is None:
            lead = []
            continue
        if _has_params(u.module):
            if lead and lead[-1].output is not x:
                lead = []
            blocks.append((u.name, lead + [u]))
            lead = []
        elif blocks and blocks[-1][1][-1].output is x:
            blocks[-1][1].append(u)
        elif not blocks and (not lead or lead[-1].output is x):
            lead.append(u)
        else:
            lead = [u] if not blocks else []
    return blocks


def blocks_of(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Split an ``nn.Sequential`` into blocks (a parameterised module and the parameter-free
    modules after it). Leading parameter-free modules (e.g. ``Flatten``) join the first block.
    (Any other model: :func:`layer_jacobian_singular_values` discovers its blocks with hooks.)"""
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"blocks_of splits an nn.Sequential, got {type(model).__name__}; "
            "layer_jacobian_singular_values discovers the blocks of any model from a batch"
        )
    blocks: list[list[tuple[str, nn.Module]]] = []
    lead: list[tuple[str, nn.Module]] = []
    for name, m in model.named_children():
        if _has_params(m):
            blocks.append(lead + [(name, m)])
            lead = []
        elif blocks:
            blocks[-1].append((name, m))
        else:
            lead.append((name, m))
    if not blocks:
        raise ValueError("the model has no parameterised layers")
    out: list[tuple[str, nn.Module]] = []
    for b in blocks:
        name = next(n for n, m in b if _has_params(m))
        out.append((name, nn.Sequential(*[m for _, m in b])))
    return out


# ---------------------------------------------------------------------------------------------- the measuring mode


@contextlib.contextmanager
def _measuring(model: nn.Module, run: Callable[[], Any]) -> Iterator[None]:
    """Eval mode (no dropout), BatchNorm layers that were training normalizing by the batch
    statistics of the forward pass ``run()`` (held fixed), SDPA through its math kernel; everything
    restored."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    with preserved(model), twice_differentiable():
        stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        if bns:
            model.eval()
            for m in bns:
                m.train()

            def grab(mod, args):
                x = args[0].detach()
                dims = [d for d in range(x.dim()) if d != 1]
                stats[id(mod)] = (x.mean(dims), x.var(dims, unbiased=False))

            with _removed_after([m.register_forward_pre_hook(grab) for m in bns]), torch.no_grad():
                run()
        model.eval()
        missing = []  # BatchNorm without running statistics: temporary buffers
        with torch.no_grad():
            for m in bns:
                if id(m) not in stats:
                    continue
                mean, var = stats[id(m)]
                if m.running_mean is None or m.running_var is None:
                    missing.append(m)
                    m.running_mean, m.running_var = mean.clone(), var.clone()
                else:
                    m.running_mean.copy_(mean)
                    m.running_var.copy_(var)
        try:
            yield
        finally:
            for m in missing:
                m.running_mean = m.running_var = None


# ---------------------------------------------------------------------------------------------- spectra


def jacobian_singular_values(fn, x: torch.Tensor, gram: bool = False) -> torch.Tensor:
    """Singular values [n, min(out, in)] of the per-example Jacobians of ``fn`` at ``x``
    (``fn`` maps a batch to a batch, example by example).

    ``gram=True`` takes square roots of the eigenvalues of the smaller Gram matrix J J^T or
    J^T J in float64 (several times faster than an SVD for large layers; singular values below
    about sqrt(eps) * s_max lose relative accuracy)."""
    jac = _dense(fn, x, per_example_fn=True)
    return _svals(jac, gram)


def _svals(jac: torch.Tensor, gram: bool) -> torch.Tensor:
    jac = jac.double()
    if not gram:
        return torch.linalg.svdvals(jac)
    g = jac @ jac.mT if jac.shape[1] <= jac.shape[2] else jac.mT @ jac
    return torch.linalg.eigvalsh(g).clamp_min(0).sqrt().flip(-1)


LOOP_ROWS = 32  # dense Jacobians with at most this many output coordinates: one pullback per row, no vmap


def _dense(fn, x: torch.Tensor, per_example_fn: bool = False) -> torch.Tensor:
    """Per-example Jacobians [n, out, in] of a batch function whose examples do not interact.
    ``per_example_fn``: ``fn`` also runs on single examples (vmapped over them); otherwise one
    vector-Jacobian product per output coordinate, for all examples at once."""
    n = x.shape[0]
    if per_example_fn:
        jac = vmap(jacrev(lambda xi: fn(xi.unsqueeze(0)).squeeze(0)))(x)
        return jac.reshape(n, -1, x[0].numel())
    out, pull = _vjp(fn, x)
    k = out[0].numel()
    eye = torch.eye(k, dtype=out.dtype, device=out.device).reshape(k, 1, *out.shape[1:]).expand(k, *out.shape)
    rows = None
    if k > LOOP_ROWS:  # batched; below this, a loop of products costs no more and skips vmap's first-call set-up
        try:
            rows = vmap(lambda v: pull(v)[0])(eye)  # [k, n, in...]
        except RuntimeError:  # an op without a batching rule: one product at a time
            rows = None
    if rows is None:
        rows = torch.stack([pull(eye[i].contiguous())[0] for i in range(k)])
    return rows.reshape(k, n, -1).transpose(0, 1)


def _vjp(fn, x: torch.Tensor) -> tuple[torch.Tensor, Callable]:
    """``torch.func.vjp`` without aux: the output and the pullback."""
    res = vjp(fn, x)
    return res[0], res[1]


def _jvp_fn(fn, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """v -> J v (forward mode; the linearization of the vector-Jacobian product where forward
    mode is not implemented)."""
    try:
        with warnings.catch_warnings():  # torch loads its forward-mode decompositions through torch.jit.script once
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=DeprecationWarning)
            torch.func.jvp(fn, (x,), (torch.zeros_like(x),))
        return lambda v: torch.func.jvp(fn, (x,), (v,))[1]
    except (RuntimeError, NotImplementedError):
        out, pull = _vjp(fn, x)
        u0 = torch.zeros_like(out)
        return lambda v: _vjp(lambda u: pull(u)[0], u0)[1](v)[0]


def _lanczos(fn, x: torch.Tensor, steps: int, probes: int, generator: torch.Generator | None):
    """Stochastic Lanczos quadrature of the per-example singular value distribution: nodes and
    weights [n, probes * steps]."""
    n = x.shape[0]
    out, pull = _vjp(fn, x)
    push = _jvp_fn(fn, x)
    d_in, d_out = x[0].numel(), out[0].numel()
    small_out = d_out <= d_in
    dim, shape = (d_out, out.shape) if small_out else (d_in, x.shape)

    def gram(v: torch.Tensor) -> torch.Tensor:  # [n, dim] -> [n, dim]
        v = v.reshape(shape).to(x.dtype)
        g = push(pull(v)[0]) if small_out else pull(push(v))[0]
        return g.reshape(n, -1).double()

    m = min(steps, dim)
    nodes, weights = [], []
    for _ in range(probes):
        q = torch.randn(n, dim, generator=generator, dtype=torch.float64).to(x.device)
        q = q / q.norm(dim=1, keepdim=True)
        basis = [q]
        alpha, beta = [], []
        prev = torch.zeros_like(q)
        b = torch.zeros(n, dtype=torch.float64, device=x.device)
        for j in range(m):
            w = gram(basis[-1]) - b[:, None] * prev
            a = (w * basis[-1]).sum(1)
            w = w - a[:, None] * basis[-1]
            stack = torch.stack(basis, 1)  # full reorthogonalization, twice
            for _ in range(2):
                w = w - torch.einsum("nk,nkd->nd", torch.einsum("nkd,nd->nk", stack, w), stack)
            alpha.append(a)
            if j == m - 1:
                break
            b = w.norm(dim=1)
            scale = torch.stack(alpha).abs().amax(0).clamp_min(1e-300)
            ok = b > 1e-10 * scale
            beta.append(torch.where(ok, b, 0.0))
            prev = basis[-1]
            basis.append(torch.where(ok[:, None], w / b.clamp_min(1e-300)[:, None], 0.0))
            b = beta[-1]
        t = torch.diag_embed(torch.stack(alpha, 1))
        if beta:
            off = torch.stack(beta, 1)
            t = t + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
        theta, vecs = torch.linalg.eigh(t)
        nodes.append(theta.clamp_min(0).sqrt())
        weights.append(vecs[:, 0, :] ** 2)
    return torch.cat(nodes, 1), torch.cat(weights, 1) / probes, (d_out, d_in)


def _spectrum(
    name: str, fn, x: torch.Tensor, method: str, max_entries: int, steps: int, probes: int, gen, gram: bool = False
) -> JacobianSpectrum:
    with torch.no_grad():
        out = fn(x[:1])
    shape = (out[0].numel(), x[0].numel())
    use = method if method != "auto" else ("exact" if shape[0] * shape[1] <= max_entries else "lanczos")
    if use == "exact":
        return JacobianSpectrum(name, _svals(_dense(fn, x), gram).detach(), "exact", None, shape)
    s, w, shape = _lanczos(fn, x, steps, probes, gen)
    return JacobianSpectrum(name, s.detach(), "lanczos", w.detach(), shape)


def _check(examples: int, method: str, max_entries: int, lanczos_steps: int, probes: int) -> None:
    if not isinstance(examples, int) or isinstance(examples, bool) or examples < 1:
        raise ValueError(f"examples must be a positive integer, got {examples!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    for label, v in (("max_entries", max_entries), ("lanczos_steps", lanczos_steps), ("probes", probes)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{label} must be a positive integer, got {v!r}")


def _named_blocks(calls: list[_Call], names: Sequence[str], model: nn.Module) -> list[tuple[str, list[_Call]]]:
    known = dict(model.named_modules())
    out = []
    for nm in names:
        if nm not in known:
            some = ", ".join(n for n in list(known)[1:8])
            raise ValueError(f"no module named {nm!r} in the model (modules include: {some}, ...)")
        hit = [c for c in calls if c.module is known[nm]]
        if not hit:
            raise ValueError(f"module {nm!r} is not called in the model's forward pass on these inputs")
        if hit[0].input is None or not hit[0].input.is_floating_point():
            raise ValueError(f"module {nm!r} takes no floating-point tensor input: its Jacobian is not defined")
        out.append((nm, [hit[0]]))
    return out


def layer_jacobian_singular_values(
    model: nn.Module,
    inputs: Any,
    examples: int = 8,
    blocks: Sequence[tuple[str, nn.Module]] | Sequence[str] | None = None,
    *,
    method: str = "auto",
    max_entries: int = MAX_ENTRIES,
    lanczos_steps: int = 30,
    probes: int = 1,
    generator: torch.Generator | None = None,
    seconds: float | None = None,
) -> JacobianSpectra:
    """Singular values of each block Jacobian dh_i/dh_{i-1} at ``examples`` inputs (see the
    module docstring for the blocks, the modes and the cost).

    Args:
        model: any module.
        inputs: a batch: a tensor (floating point or token ids), or a tuple / dict of tensors
            (``model(*inputs)`` / ``model(**inputs)``); the first ``examples`` rows are measured.
        blocks: None (discovered), module names, or (name, module) pairs whose composition is the
            forward pass.
        method: ``"auto"``, ``"exact"`` or ``"lanczos"``.
        max_entries: per-example Jacobian entries above which ``"auto"`` estimates.
        lanczos_steps, probes, generator: of the estimate (``generator`` seeds its probes;
            None: a fixed seed, so repeated calls agree).
        seconds: wall-clock budget: no block is started that would end past it, judged by the
            time of the last block measured (the first block always runs); the blocks left out
            are named in the result's ``skipped`` (None: no limit).

    Returns a list of :class:`JacobianSpectrum` (a :class:`JacobianSpectra`), in forward order.
    """
    _check(examples, method, max_entries, lanczos_steps, probes)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    spec = lambda name, fn, h: _spectrum(name, fn, h, method, max_entries, lanczos_steps, probes, gen)  # noqa: E731
    small = head(inputs, examples)
    if blocks is not None and len(blocks) and all(isinstance(b, tuple) for b in blocks):
        pairs: list[tuple[str, nn.Module]] = list(blocks)  # type: ignore[arg-type]

        def chain(h):
            for _, block in pairs:
                h = block(h)
            return h

        with _measuring(model, lambda: chain(inputs)):
            h, out = small, []  # (no time budget: each block's input is the last one's output)
            for name, block in pairs:
                out.append(spec(name, block, h))
                with torch.no_grad():
                    h = block(h)
            return JacobianSpectra(out)
    start = time.perf_counter()  # the budget counts the tracing pass too
    with _measuring(model, lambda: call(model, inputs)):
        calls = _trace(model, lambda: call(model, small))
        if not calls:
            raise ValueError("the model ran no module")
        if blocks is not None:
            found = _named_blocks(calls, [str(b) for b in blocks], model)
        else:
            found = _group(_units(calls, 0))
            if not found:
                raise ValueError(
                    f"no block of {type(model).__name__} takes a floating-point tensor and has parameters; "
                    "name the modules with blocks=[...]"
                )
        result = JacobianSpectra()
        last = 0.0  # the time of the last block measured: the forecast of the next one's
        for name, seq in found:
            if seconds is not None and len(result) and time.perf_counter() - start + last > seconds:
                result.skipped.append(name)
                continue
            t0 = time.perf_counter()

            def fn(z, seq=seq):
                for c in seq:
                    z = c.run(z)
                return z

            x = seq[0].input
            assert x is not None
            result.append(spec(name, fn, x.detach()))
            last = time.perf_counter() - t0
        return result


def input_output_jacobian_spectrum(
    model: nn.Module,
    inputs: torch.Tensor,
    examples: int = 8,
    *,
    method: str = "auto",
    max_entries: int = MAX_ENTRIES,
    lanczos_steps: int = 30,
    probes: int = 1,
    generator: torch.Generator | None = None,
) -> JacobianSpectrum:
    """Singular values of the whole network's Jacobian df(x)/dx at ``examples`` inputs (in the
    measuring mode of the module docstring; ``"lanczos"`` above ``max_entries``)."""
    _check(examples, method, max_entries, lanczos_steps, probes)
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        kind = type(inputs).__name__ if not isinstance(inputs, torch.Tensor) else f"{inputs.dtype} tensor"
        raise ValueError(
            f"the input-output Jacobian needs a floating-point tensor input, got a {kind}; for token models "
            "layer_jacobian_singular_values measures from the embedding output on"
        )
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    with _measuring(model, lambda: model(inputs)):

        def fn(z):
            out = _first_tensor(model(z))
            if out is None:
                raise ValueError(f"{type(model).__name__} returned no tensor")
            return out

        x = inputs[:examples].detach()
        return _spectrum("input_output", fn, x, method, max_entries, lanczos_steps, probes, gen)
