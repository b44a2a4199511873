"""Registry of the compression methods, by name, with their family and source.

Each family module registers its methods on import (quantization modes,
pruning criteria, distillation methods); ``hsilib methods`` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry


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


# Names are unique across families.
METHODS: Registry[Method] = Registry("compression method")
register_method = METHODS.add


def get_method(name: str, family: str | None = None) -> Method:
    """The registered method ``name`` (of ``family``, if given), or a clear error."""
    known = [m for m in METHODS.values() if family is None or m.family == family]
    for method in known:
        if method.name == name:
            return method
    what = f"{family} method" if family else "compression method"
    raise ValueError(f"unknown {what} {name!r}; registered: {', '.join(m.name for m in known)}")
