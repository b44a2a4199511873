"""Soft Filter Pruning (He, Kang, Dong, Fu and Yang, "Soft filter pruning for
accelerating deep convolutional neural network models", IJCAI 2018).

While the network fine-tunes, each layer's ``n - k`` filters of smallest L2
norm (weights only) are set to zero before the first epoch and again after
every epoch (:class:`SoftPruning`); in between they train like the others, so
a zeroed filter can grow back and another take its place. Only the filter's
weights and its convolution's bias are zeroed, never the batch norm: with its
scale zeroed too, a filter could not regrow. After the last zeroing the
zeroed filters are removed for good, their constant output (bias through
batch norm and ReLU) folded into the next layer's bias, so the small network
computes what the soft one did.

The authors mask convolutions only; fully connected neurons are masked the
same way here (their weight row and bias), to reach Table 5's widths.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ....models.network import Network
from ....train import Callback
from ..surgery import Selection
from . import Criterion, register_criterion, top


def filter_l2(weight: torch.Tensor) -> np.ndarray:
    """The L2 norm of every filter (or weight row)."""
    return weight.detach().flatten(1).norm(dim=1).cpu().double().numpy()


def choose(model: Network, widths: dict[str, int], data=None, seed: int = 0) -> Selection:
    """The filters of largest L2 norm; a soft-pruned network's zeroed filters
    are its smallest, and the selection folds their constant output."""
    return Selection({name: top(filter_l2(getattr(model, name).weight), k)
                      for name, k in widths.items()}, fold=True)


def zero_smallest(model: Network, widths: dict[str, int]) -> dict[str, np.ndarray]:
    """Zero, in place, the weights and bias of each layer's filters outside its
    ``widths`` largest (by L2 norm); the kept indices by layer."""
    kept = choose(model, widths).kept
    with torch.no_grad():
        for name, keep in kept.items():
            layer = getattr(model, name)
            dropped = np.setdiff1d(np.arange(layer.weight.shape[0]), keep)
            layer.weight[dropped] = 0
            if layer.bias is not None:
                layer.bias[dropped] = 0
    return kept


class SoftPruning(Callback):
    """Zero each named layer's smallest filters before the first epoch and
    after every epoch (``widths`` keep), recording per epoch how many
    filters changed sides (``changes``) and how far the zeroed ones grew
    back before being zeroed again (``regrowth``: their mean L2 norm over
    the kept filters')."""

    def __init__(self, widths: dict[str, int]):
        self.widths = widths
        self.kept: dict[str, np.ndarray] | None = None
        self.changes: list[int] = []
        self.regrowth: list[float] = []

    def epoch_start(self, epoch: int, model: nn.Module) -> None:
        if epoch == 1:
            self.kept = zero_smallest(model, self.widths)

    def epoch_end(self, epoch: int, model: nn.Module) -> None:
        ratios = []
        for name, keep in self.kept.items():
            norms = filter_l2(getattr(model, name).weight)
            zeroed = np.setdiff1d(np.arange(len(norms)), keep)
            if len(zeroed):
                ratios.append(norms[zeroed].mean() / max(norms[keep].mean(), 1e-12))
        self.regrowth.append(float(np.mean(ratios)) if ratios else 0.0)
        kept = zero_smallest(model, self.widths)
        self.changes.append(sum(len(np.setdiff1d(kept[n], self.kept[n])) for n in kept))
        self.kept = kept


register_criterion(Criterion(
    "sfp", "SFP", "He et al., IJCAI 2018 (the paper's ref. [36])", "soft training", choose))
