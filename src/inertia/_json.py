"""JSON text for records that may hold tensors, numpy scalars, paths and non-finite floats."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["from_json", "to_json"]


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj: Any, **kwargs: Any) -> str:
    """JSON text with non-finite floats written as strings ("nan", "inf") so any reader parses it.

    Examples:

    >>> to_json({"loss": float("nan"), "step": 3})
    '{"loss": "nan", "step": 3}'
    """
    return json.dumps(_finite(obj), default=_default, **kwargs)


_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _restore(obj: Any) -> Any:
    if isinstance(obj, str):
        return _NONFINITE.get(obj, obj)
    if isinstance(obj, dict):
        return {k: _restore(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore(v) for v in obj]
    return obj


def from_json(text: str) -> Any:
    """The inverse of :func:`to_json`: its "nan" / "inf" / "-inf" strings are floats again.

    Examples:

    >>> from_json('{"loss": "inf", "step": 3}')
    {'loss': inf, 'step': 3}
    """
    return _restore(json.loads(text))
