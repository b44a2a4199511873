"""Registry of the compression methods, by name, with their family and source.

Each family module registers its methods on import (quantization modes,
pruning criteria, distillation methods); ``hsilib methods`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """One compression method.

    name : registry key (``"static"``).
    title : the paper's name for it (``"Static Quantization"``).
    family : ``"quantization"``, ``"pruning"`` or ``"distillation"``.
    kind : the experiment kind that runs it.
    source : the paper or library it follows.
    """

    name: str
    title: str
    family: str
    kind: str
    source: str


METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (names are unique across families)."""
    if METHODS.get(method.name, method) != method:
        raise ValueError(f"compression method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str, family: str | None = None) -> Method:
    """The registered method ``name`` (of ``family``, if given), or a clear error."""
    known = [m for m in METHODS.values() if family is None or m.family == family]
    for method in known:
        if method.name == name:
            return method
    what = f"{family} method" if family else "compression method"
    raise ValueError(f"unknown {what} {name!r}; registered: {', '.join(m.name for m in known)}")
