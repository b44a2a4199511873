"""Pruning criteria, one module each, behind one registry.

A :class:`Criterion` chooses which filters (or neurons) of each layer to
keep, given the target widths; it returns a
:class:`~hsilib.compress.prune.surgery.Selection`, which
:func:`~hsilib.compress.prune.surgery.apply` turns into a smaller network.
Importing this package registers L1-norm, ThiNet, Network Slimming and Soft
Filter Pruning. Ties are broken by the lower index (a stable sort), so a
selection is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ....models.network import Network
from ....registry import Registry
from ..surgery import Selection


@dataclass(frozen=True)
class Criterion:
    """A registered pruning criterion.

    name, title : registry key and the paper's name. source : the method's paper.
    needs : what it needs besides the weights: ``"nothing"``, ``"training
        inputs"`` (ThiNet), ``"sparsity training"`` (Slimming: batch-norm
        scales or gates trained with an L1 penalty) or ``"soft training"``
        (SFP: the strategy zeroes filters while fine-tuning).
    choose : ``choose(model, widths, data, seed) -> Selection``.
    """

    name: str
    title: str
    source: str
    needs: str
    choose: Callable[..., Selection]


CRITERIA: Registry[Criterion] = Registry("pruning criterion")
register_criterion = CRITERIA.add
get_criterion = CRITERIA.find


def top(scores: np.ndarray, k: int) -> np.ndarray:
    """Sorted indices of the ``k`` highest scores (the lower index first on ties)."""
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:k])


def keep_highest(model: Network, widths: dict[str, int], scores: dict[str, np.ndarray]) -> Selection:
    return Selection({name: top(scores[name], k) for name, k in widths.items()})


from . import l1, thinet, slimming, sfp  # noqa: E402,F401  # isort: skip  (each registers itself, in the paper's order)
