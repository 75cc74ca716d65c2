"""A small name -> object registry shared by init schemes, data sets, models and schedules.

Configs name things by strings so a sweep can vary them; an unknown name raises ``ValueError``
listing the known ones (DESIGN.md, "Registries").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar, overload

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects. ``kind`` is used in error messages ("init scheme", "data set")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    @overload
    def register(self, name: str, obj: T, *, overwrite: bool = False) -> T: ...

    @overload
    def register(self, name: str, obj: None = None, *, overwrite: bool = False) -> Callable[[T], T]: ...

    def register(self, name: str, obj: T | None = None, *, overwrite: bool = False) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name`` and return it; without ``obj``, return a decorator.

        Examples:

        >>> shapes = Registry("shape")
        >>> shapes.register("square", 4)
        4
        >>> shapes.get("circle")
        Traceback (most recent call last):
        ...
        ValueError: unknown shape 'circle'; known: square
        """

        def _add(o: T) -> T:
            if not isinstance(name, str) or not name:
                raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
            if name in self._items and not overwrite and self._items[name] is not o:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = o
            return o

        if obj is None:
            return _add
        return _add(obj)

    def get(self, name: str) -> T:
        """The object registered as ``name``; ValueError listing the known names otherwise."""
        if isinstance(name, str) and name in self._items:
            return self._items[name]
        raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}")

    def available(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)
