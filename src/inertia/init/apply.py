"""Initialize a whole model: ``apply(model, scheme, rules=...)`` and the report it returns.

Every parameter is visited once, in ``model.named_modules()`` order. For each one the first
matching rule decides its scheme (else the default ``scheme``):

- a rule keyed by a module type (``nn.RNN``, or a tuple of types) matches every parameter of
  modules of that type;
- a rule keyed by a string matches parameter names with shell-style wildcards
  (``fnmatch``): ``"*weight_hh*"``, ``"encoder.*.weight"``, ``"0.bias"``.

A scheme spec is a registry name (``"glorot_uniform"``), a callable
``fn(tensor, generator=None, **kw)``, a pair ``(name, {kwargs})``, or a dict
``{"scheme": name, **kwargs, "bias": value}`` (``bias`` sets the biases of the parameters the
rule covers).

What happens to each parameter:

- **weights** (2-D and more) get the scheme. Fan-based schemes receive the module's exact fans
  (:func:`inertia.init.fans`: grouped and transposed convolutions, embeddings). Recurrent weights
  (``weight_ih_l*``, ``weight_hh_l*`` of RNN/LSTM/GRU) are initialized one gate block at a time,
  each block ``[hidden, in]`` being its own matrix (so echo-state and orthogonal schemes act per
  gate).
- ``nn.MultiheadAttention.in_proj_weight`` is three stacked ``[E, E]`` projections (q, k, v),
  initialized and given fans one projection at a time, like recurrent gates.
- An ``nn.Embedding``'s ``padding_idx`` row is zero afterwards, as torch leaves it.
- A tensor shared by several modules (tied weights: a language model's head and its embedding)
  is initialized once, by the rule of the first module that holds it, and reported once (its row's
  ``tied`` lists the other names).
- On the ``meta`` device (a model built under ``torch.device("meta")``) the schemes run without
  values and the report's ``std`` is None.
- **biases** (parameters whose name starts with or ends in ``bias``) are set to the constant
  ``bias`` (the rule's ``bias`` if the rule has one), unless a string rule names the bias itself
  with a scheme.
- **other 1-D parameters** (normalization scales) are left as they are, unless a rule names them.

Example (Sutskever et al. 2013's tanh RNN)::

    apply(rnn, "sparse", rules={
        "*weight_hh*": ("echo_state", {"spectral_radius": 1.1}),
        "*weight_ih*": ("normal", {"std": 0.001}),
        nn.Linear: {"scheme": "sparse", "std": 0.25, "bias": 0.5},
    })
"""

from __future__ import annotations

import fnmatch
import inspect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

if TYPE_CHECKING:
    from rich.table import Table

from .fans import Fans, is_recurrent, param_fans, rnn_gates
from .registry import get

__all__ = ["InitReport", "SchemeSpec", "apply", "iter_weight_layers", "weight_of"]

SchemeSpec = str | Callable[..., Any] | tuple | dict


@dataclass
class _Resolved:
    label: str
    fn: Callable[..., Any] | None
    kwargs: dict = field(default_factory=dict)
    bias: float | None = None


def _resolve(spec: SchemeSpec, where: str) -> _Resolved:
    if isinstance(spec, str):
        fn = get(spec)
        if getattr(fn, "model_level", False):
            raise ValueError(
                f"{where}: {spec!r} initializes a whole model from its loss; call "
                f"inertia.init.{fn.__name__}(model, loss_fn, ...) instead of apply()"
            )
        return _Resolved(spec, fn)
    if callable(spec):
        return _Resolved(getattr(spec, "__name__", repr(spec)), spec)
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[1], dict):  # lists: from JSON/YAML
        r = _resolve(spec[0], where)
        r.kwargs = dict(spec[1])
        r.bias = r.kwargs.pop("bias", None)
        return r
    if isinstance(spec, dict):
        kw = dict(spec)
        bias = kw.pop("bias", None)
        name = kw.pop("scheme", None)
        if name is None:
            if bias is None:
                raise ValueError(f"{where}: a dict scheme needs 'scheme' (and optional kwargs, 'bias'), got {spec!r}")
            return _Resolved("bias-only", None, {}, float(bias))
        r = _resolve(name, where)
        r.kwargs, r.bias = kw, (None if bias is None else float(bias))
        return r
    raise ValueError(
        f"{where}: a scheme must be a name, a callable, (name, kwargs) or a dict with 'scheme', got {spec!r}"
    )


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_kwargs(r: _Resolved, where: str) -> None:
    if r.fn is None or not r.kwargs:
        return
    try:
        params = inspect.signature(r.fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n in params if n not in ("tensor", "generator", "fans")]
    bad = sorted(set(r.kwargs) - set(params))
    if bad:
        raise ValueError(f"{where}: scheme {r.label!r} does not take {bad}; accepted: {accepted}")


def _is_bias(pname: str) -> bool:
    return pname.startswith("bias") or pname.endswith("bias")


@dataclass
class InitReport:
    """What :func:`apply` did, one row per parameter: name, shape, scheme, fan_in, fan_out, std."""

    rows: list = field(default_factory=list)

    def __getitem__(self, name: str) -> dict:
        for r in self.rows:
            if r["name"] == name:
                return r
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.rows)

    _COLUMNS = ("name", "shape", "scheme", "fan_in", "fan_out", "std")

    @staticmethod
    def _cell(key: str, v: Any) -> str:
        if v is None:
            return "-"
        if key == "shape":
            return "x".join(str(s) for s in v)
        if key == "std":
            return f"{v:.4g}"
        return str(v)

    def __str__(self) -> str:
        cells = [list(self._COLUMNS)] + [[self._cell(k, r[k]) for k in self._COLUMNS] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self._COLUMNS))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def table(self) -> Table:
        """A ``rich.table.Table`` of the rows (for terminals)."""
        from rich.table import Table

        t = Table(*self._COLUMNS)
        for r in self.rows:
            t.add_row(*[self._cell(k, r[k]) for k in self._COLUMNS])
        return t


# (module type(s) or name pattern, scheme, whether the key is a name pattern)
_Rule = tuple[Any, _Resolved, bool]


def _match(rules: list[_Rule], module: nn.Module, full_name: str) -> tuple[_Resolved, bool] | None:
    for key, spec, by_name in rules:
        if by_name:
            if fnmatch.fnmatchcase(full_name, key):
                return spec, True
        elif isinstance(module, key):
            return spec, False
    return None


def _normalize_rules(rules: Any) -> list[_Rule]:
    if rules is None:
        return []
    items = rules.items() if isinstance(rules, dict) else rules
    out: list[_Rule] = []
    for key, spec in items:
        where = f"rule {key!r}"
        if isinstance(key, str):
            out.append((key, _resolve(spec, where), True))
        elif (
            isinstance(key, type)
            and issubclass(key, nn.Module)
            or (isinstance(key, tuple) and all(isinstance(k, type) and issubclass(k, nn.Module) for k in key))
        ):
            out.append((key, _resolve(spec, where), False))
        else:
            raise ValueError(f"rule keys must be module types or name patterns (str), got {key!r}")
        _check_kwargs(out[-1][1], where)
    return out


def _init_weight(
    module: nn.Module,
    pname: str,
    p: torch.Tensor,
    fn: Callable[..., Any],
    kwargs: dict,
    generator: torch.Generator | None,
) -> Fans:
    """Apply ``fn`` to the >= 2-D parameter ``p`` (one gate block at a time for recurrent
    weights), passing the module's exact fans to schemes that take them; return the fans."""
    fans = param_fans(module, pname)
    kw = dict(kwargs, fans=fans) if _accepts(fn, "fans") else kwargs
    gated = is_recurrent(module) and pname.startswith(("weight_ih", "weight_hh"))
    if gated:  # views of [hidden, in] gate blocks
        blocks = p.data.chunk(rnn_gates(module), dim=0)
    elif isinstance(module, nn.MultiheadAttention) and pname == "in_proj_weight":  # q, k, v: [E, E] each
        blocks = p.data.chunk(3, dim=0)
    else:
        blocks = (p.data,)
    for block in blocks:
        fn(block, generator=generator, **kw)
    if isinstance(module, nn.Embedding) and pname == "weight" and module.padding_idx is not None:
        with torch.no_grad():  # as torch does: the padding row stays zero (it never gets a gradient)
            p[module.padding_idx].zero_()
    return fans


def _init_param(
    module: nn.Module,
    pname: str,
    p: torch.Tensor,
    rule: tuple[_Resolved, bool],
    default_bias: float,
    generator: torch.Generator | None,
) -> tuple[str, Fans]:
    """Initialize one parameter by the rule that matched it (``(scheme, named explicitly)``);
    return the report's scheme label and the fans (``(None, None)`` when no fan was used)."""
    r, explicit = rule
    if _is_bias(pname) and not (explicit and r.fn is not None):
        value = r.bias if r.bias is not None else default_bias
        with torch.no_grad():
            p.fill_(value)
        return f"constant({value:g})", (None, None)
    if r.fn is None or (p.dim() < 2 and not explicit):
        return "unchanged", (None, None)
    fans: Fans = (None, None)
    if p.dim() >= 2:
        fans = _init_weight(module, pname, p, r.fn, r.kwargs, generator)
    else:
        r.fn(p.data, generator=generator, **r.kwargs)
    label = r.label + (f"({', '.join(f'{k}={v}' for k, v in r.kwargs.items())})" if r.kwargs else "")
    return label, fans


def apply(
    model: nn.Module,
    scheme: SchemeSpec,
    *,
    bias: float = 0.0,
    rules: Any = None,
    generator: torch.Generator | None = None,
) -> InitReport:
    """Initialize every parameter of ``model`` in place; return an :class:`InitReport`.

    Args:
        model: any ``nn.Module``.
        scheme: default scheme for weights (registry name, callable, ``(name, kwargs)`` or dict).
        bias: constant for biases not covered by a rule with its own ``bias``.
        rules: ``{module type or name pattern: scheme spec}`` (first match wins, in order).
        generator: source of randomness; the same seed gives the same model.

    Examples:

    >>> import inertia
    >>> rnn = nn.RNN(3, 8)
    >>> rules = {"*weight_ih*": ("normal", {"std": 0.001})}
    >>> print(inertia.init.apply(rnn, "orthogonal", rules=rules, generator=torch.Generator().manual_seed(0)))
    name          shape  scheme             fan_in  fan_out  std
    ------------  -----  -----------------  ------  -------  --------
    weight_ih_l0  8x3    normal(std=0.001)  3       8        0.001041
    weight_hh_l0  8x8    orthogonal         8       8        0.3563
    bias_ih_l0    8      constant(0)        -       -        0
    bias_hh_l0    8      constant(0)        -       -        0
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"apply needs an nn.Module, got {type(model).__name__}")
    if not isinstance(bias, (int, float)) or not math.isfinite(bias):
        raise ValueError(f"bias must be a finite number, got {bias!r}")
    default = _resolve(scheme, "scheme")
    _check_kwargs(default, "scheme")
    norm_rules = _normalize_rules(rules)
    default_bias = default.bias if default.bias is not None else float(bias)
    report = InitReport()
    seen: dict[int, dict] = {}  # a tied tensor (GPT-2's head and embedding) is one parameter: once
    for mod_name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            full = f"{mod_name}.{pname}" if mod_name else pname
            if id(p) in seen:
                seen[id(p)].setdefault("tied", []).append(full)
                continue
            rule = _match(norm_rules, module, full) or (default, False)
            try:
                label, (fan_in, fan_out) = _init_param(module, pname, p, rule, default_bias, generator)
            except ValueError as e:
                raise ValueError(
                    f"{full} ({type(module).__name__}, shape {tuple(p.shape)}): {e}; "
                    f"give it another scheme with rules={{{full!r}: ...}}"
                ) from e
            row = {
                "name": full,
                "shape": tuple(p.shape),
                "scheme": label,
                "fan_in": fan_in,
                "fan_out": fan_out,
                "std": _std(p),
            }
            seen[id(p)] = row
            report.rows.append(row)
    if not report.rows:
        raise ValueError(f"{type(model).__name__} has no parameters to initialize")
    return report


def _std(p: torch.Tensor) -> float | None:
    """The parameter's std for the report (None on the ``meta`` device, which has no values)."""
    if p.is_meta:
        return None
    return float(p.detach().float().std()) if p.numel() > 1 else 0.0


def iter_weight_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(name, module) for modules holding a >= 2-D ``weight`` (Linear, Conv, Embedding, ...).

    Examples:

    >>> [name for name, _ in iter_weight_layers(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)))]
    ['0', '2']
    """
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() >= 2:
            yield name, m


def weight_of(module: nn.Module) -> torch.Tensor:
    """The ``weight`` tensor of a module that :func:`iter_weight_layers` yielded."""
    return cast(torch.Tensor, module.weight)
