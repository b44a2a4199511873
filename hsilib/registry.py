"""Named things of one sort (models, scenes, experiment kinds, methods,
claims, ...): each registered once, looked up with an error that lists the
known ones."""

from __future__ import annotations

from typing import Generic, Iterable, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A dict from names to things of one sort (``what``, e.g. "model"),
    whose unknown names raise ``error`` listing the known ones."""

    def __init__(self, what: str, error: type[Exception] = ValueError, items: Iterable[T] = ()):
        super().__init__()
        self.what, self.error = what, error
        for item in items:
            self.add(item)

    def add(self, item: T, name: str | None = None) -> T:
        """Register ``item`` under ``name`` (default ``item.name``) and return
        it: the same item again changes nothing (a module imported twice),
        another under a taken name is an error."""
        name = item.name if name is None else name
        if name in self and self[name] is not item and self[name] != item:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = item
        return item

    def find(self, name: str) -> T:
        """The item registered as ``name``, or ``error`` naming the known ones."""
        try:
            return self[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name, e.g. a list
            raise self.error(f"unknown {self.what} {name!r}; known: {', '.join(self)}") from None
