"""How wide each pruned layer becomes.

The paper names its pruned networks by a nominal ratio, "90%", "95%" and
"98%" (Tables 4-8), whose widths Table 5 fixes for CNN2D: every prunable
layer keeps 30%, 20% or 10% of its filters or neurons (15/30/30, 10/20/20,
5/10/10). The nominal ratio is not the share of parameters removed (88.4%,
94.1% and 97.9% on Indian Pines). Other networks and other ratios follow the
same rule: ``floor(n * keep + 0.5)``, at least one, where a float ratio is the
share of channels removed (``keep = 1 - ratio``). Widths are never computed
as ``int(n * (1 - ratio))``, which gives 9 for ``int(50 * (1 - 0.8))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ...models.network import Network
from .graph import prunable_layers, width

# The paper's nominal pruning ratios and the share of each layer they keep (Table 5).
NOMINAL_KEEP = {"90%": 0.3, "95%": 0.2, "98%": 0.1}
RATIOS = tuple(NOMINAL_KEEP)


def kept_width(original: int, keep: float) -> int:
    """``floor(original * keep + 0.5)``, at least 1."""
    return max(1, math.floor(original * keep + 0.5))


def target_widths(model: Network, widths: str | float | Sequence[int] | Mapping[str, int]
                  ) -> dict[str, int]:
    """Target width of each pruned layer of ``model``, from a nominal ratio
    (``"90%"``), a share of channels to remove (``0.7``), one integer per
    prunable layer in forward order, or ``{layer: width}`` (other layers kept
    whole). Each width is checked: at least 1, at most the layer's width."""
    names = [layer.name for layer in prunable_layers(model)]
    current = {name: width(getattr(model, name)) for name in names}
    if isinstance(widths, str):
        if widths not in NOMINAL_KEEP:
            raise ValueError(f"unknown pruning ratio {widths!r}; the paper's: {', '.join(RATIOS)} "
                             "(or a share of channels to remove, in (0, 1))")
        return {n: kept_width(w, NOMINAL_KEEP[widths]) for n, w in current.items()}
    if isinstance(widths, float):
        if not 0.0 < widths < 1.0:
            raise ValueError(f"a pruning ratio must be in (0, 1) (the share of channels removed), "
                             f"got {widths}")
        return {n: kept_width(w, 1.0 - widths) for n, w in current.items()}
    if not isinstance(widths, Mapping):
        widths = list(widths)
        if len(widths) != len(names):
            raise ValueError(f"{type(model).__name__} has {len(names)} prunable layers "
                             f"({', '.join(names)}), got {len(widths)} widths")
        widths = dict(zip(names, widths))
    for name, value in widths.items():
        if name not in current:
            raise ValueError(f"{name!r} is not a prunable layer of {type(model).__name__}; "
                             f"prunable: {', '.join(names)}")
        if type(value) is not int or not 1 <= value <= current[name]:
            raise ValueError(f"{name} width must be an integer from 1 to {current[name]}, got {value!r}")
    return dict(widths)


def pass_widths(original: Mapping[str, int], target: Mapping[str, int], passes: int,
                step: int) -> dict[str, int]:
    """Widths after pass ``step`` (1 to ``passes``) of multi-pass pruning, on
    a geometric schedule: ``floor(n * (k / n) ** (step / passes) + 0.5)``
    (for 50 filters to 15 in 3 passes: 33, 22, 15)."""
    if not 1 <= step <= passes:
        raise ValueError(f"step must be from 1 to {passes}, got {step}")
    return {name: max(target[name], kept_width(n, (target[name] / n) ** (step / passes)))
            for name, n in original.items() if name in target}


def config_widths(model: str, widths: Sequence[int] | None = None, channels: int = 200) -> tuple[int, ...]:
    """The prunable widths of registered ``model`` (its own, or ``widths``);
    ``channels`` only serves to build the network: widths do not depend on it."""
    from ...models import get_model

    spec = get_model(model)
    return spec.make(spec.components or channels, 2, None, widths).widths
