"""Structured pruning: L1-norm, ThiNet, Network Slimming and Soft Filter
Pruning, one module each behind one registry (:mod:`.criteria`), and one
surgery (:mod:`.surgery`) that makes the pruned network physically smaller.

``select(model, criterion, widths, data=None, seed=0)`` returns, per pruned
layer, the sorted indices kept; ``apply(model, kept)`` returns the smaller
dense network. CNN2D, CNN1D, CNN3D and the MLP go through the same code.
"""

from __future__ import annotations

import torch

from ...models.network import Network
from .criteria import CRITERIA, Criterion, get_criterion
from .criteria.thinet import TrainingInputs
from .graph import PrunableLayer, prunable_layers
from .surgery import Selection, apply, mask
from .widths import NOMINAL_KEEP, RATIOS, pass_widths, target_widths


def select(model: Network, criterion: str, widths, data=None, seed: int = 0, **options) -> Selection:
    """The filters (or neurons) each layer of ``model`` keeps.

    Parameters
    ----------
    model : a trained network (for Slimming, sparsity-trained).
    criterion : ``"l1"``, ``"thinet"``, ``"slimming"`` or ``"sfp"`` (:data:`CRITERIA`).
    widths : a nominal ratio of the paper (``"90%"``: Table 5's widths), a
        share of channels to remove (``0.7``), one width per prunable layer,
        or ``{layer: width}``.
    data : training inputs, for ThiNet: a batch (tensor) or
        :class:`TrainingInputs`.
    seed : seeds ThiNet's sampling.
    options : the criterion's own (``greedy=True`` for L1; ``samples``,
        ``draws`` for ThiNet).
    """
    spec = get_criterion(criterion)
    targets = target_widths(model, widths)
    if spec.needs == "training inputs" and data is None:
        raise ValueError(f"{spec.title} chooses channels on training inputs: pass data= (a batch "
                         "of inputs or TrainingInputs(view, pixel indices))")
    if isinstance(data, torch.Tensor):
        data = TrainingInputs.of(data)
    return spec.choose(model, targets, data, seed, **options)


__all__ = ["CRITERIA", "Criterion", "NOMINAL_KEEP", "PrunableLayer", "RATIOS", "Selection",
           "TrainingInputs", "apply", "get_criterion", "mask", "pass_widths", "prunable_layers",
           "select", "target_widths"]
