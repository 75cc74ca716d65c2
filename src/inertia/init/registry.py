"""The init registry: scheme names -> in-place initializers ``fn(tensor, generator=None, **kw)``.

Configs and ``inertia.init.apply`` name schemes by these strings, so a sweep can vary them.
"""

from __future__ import annotations

from collections.abc import Callable

from .._registry import Registry

REGISTRY: Registry[Callable] = Registry("init scheme")


def register(name: str, fn: Callable | None = None, *, overwrite: bool = False):
    """Register an initializer under ``name`` (usable as a decorator)."""
    return REGISTRY.register(name, fn, overwrite=overwrite)


def get(name: str) -> Callable:
    """The initializer registered as ``name``; unknown names raise ValueError listing known ones."""
    return REGISTRY.get(name)


def available() -> list[str]:
    """Every registered scheme name, sorted."""
    return REGISTRY.available()
