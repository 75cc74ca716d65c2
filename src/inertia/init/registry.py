"""The init registry: scheme names -> in-place initializers ``fn(tensor, generator=None, **kw)``.

Configs and ``inertia.init.apply`` name schemes by these strings, so a sweep can vary them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._registry import Registry

__all__ = ["REGISTRY", "available", "get", "register"]

REGISTRY: Registry[Callable[..., Any]] = Registry("init scheme")


def register(name: str, fn: Callable[..., Any] | None = None, *, overwrite: bool = False) -> Any:
    """Register an initializer under ``name``; without ``fn``, return a decorator that does.

    An initializer fills a tensor in place and returns it, takes ``generator`` (and, to get a
    module's exact fans from :func:`inertia.init.apply`, the keyword ``fans``)::

        @inertia.init.register("halves")
        def halves_(tensor, generator=None):
            return tensor.fill_(0.5)

        inertia.init.apply(model, "halves")
    """
    return REGISTRY.register(name, fn, overwrite=overwrite)


def get(name: str) -> Callable[..., Any]:
    """The initializer registered as ``name``; unknown names raise ValueError listing known ones.

    Examples:

    >>> import inertia
    >>> inertia.init.get("xavier_uniform") is inertia.init.glorot_uniform_
    True
    """
    return REGISTRY.get(name)


def available() -> list[str]:
    """Every registered scheme name, sorted.

    Examples:

    >>> import inertia
    >>> "glorot_uniform" in inertia.init.available()
    True
    """
    return REGISTRY.available()
