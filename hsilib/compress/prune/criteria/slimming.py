"""Network Slimming (Liu, Li, Shen, Huang, Yan and Zhang, "Learning efficient
convolutional networks through network slimming", ICCV 2017).

Each channel's importance is the magnitude of its batch-norm scale ``|gamma|``
after *sparsity training*: training with an L1 penalty ``lambda * sum |gamma|``
on every batch norm's scales, applied as the subgradient ``lambda *
sign(gamma)`` added after ``backward()`` (the authors' ``updateBN``;
:class:`SparsityPenalty`). A prunable layer without batch norm is scored by
its gate (:mod:`~hsilib.compress.prune.gates`), penalised the same way.

Liu et al. prune with one *global* threshold over all channels; the paper's
Table 5 fixes each layer's width, which a global threshold cannot hit, so
channels are kept per layer (top ``k``). :func:`global_widths` reports the
widths a global threshold would give.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ....models.network import Network
from ....train import Callback
from ..gates import GATE, gated
from ..graph import prunable_layers
from ..surgery import Selection
from . import Criterion, register_criterion, top


def channel_scales(model: Network) -> dict[str, np.ndarray]:
    """``|gamma|`` of each prunable layer's batch norm, or ``|gate|``; a clear
    error for a layer with neither."""
    scales = {}
    for layer in prunable_layers(model):
        producer = getattr(model, layer.name)
        if layer.norm is not None:
            values = getattr(model, layer.norm).weight
        elif gated(producer):
            values = getattr(producer, GATE)
        else:
            raise ValueError(f"Network Slimming scores channels by batch-norm scales; "
                             f"{type(model).__name__}.{layer.name} has no batch norm and no gate: "
                             "train it with a sparsity penalty and gates first (hsilib's "
                             "SparsityConfig does both)")
        scales[layer.name] = values.detach().abs().cpu().double().numpy()
    return scales


def choose(model: Network, widths: dict[str, int], data=None, seed: int = 0) -> Selection:
    scales = channel_scales(model)
    return Selection({name: top(scales[name], k) for name, k in widths.items()})


def global_widths(model: Network, prune_fraction: float) -> dict[str, int]:
    """Widths a global threshold gives: Liu et al.'s rule (all scales sorted,
    ``threshold = sorted[int(total * fraction)]``, keep those strictly above)."""
    if not 0.0 < prune_fraction < 1.0:
        raise ValueError(f"prune_fraction must be in (0, 1), got {prune_fraction}")
    scales = channel_scales(model)
    everything = np.sort(np.concatenate(list(scales.values())))
    threshold = everything[int(len(everything) * prune_fraction)]
    return {name: int((values > threshold).sum()) for name, values in scales.items()}


class SparsityPenalty(Callback):
    """``lambda * sign(s)`` added to the gradient of every batch-norm scale and
    gate before each optimizer step: the subgradient of ``lambda * sum |s|``."""

    def __init__(self, penalty: float):
        if not penalty >= 0:
            raise ValueError(f"the sparsity penalty must be >= 0, got {penalty}")
        self.penalty = penalty

    def before_step(self, model: nn.Module) -> None:
        for module in model.modules():
            scale = getattr(module, GATE) if gated(module) else (
                module.weight if isinstance(module, nn.modules.batchnorm._BatchNorm) else None)
            if scale is not None and scale.grad is not None:
                scale.grad.add_(self.penalty * torch.sign(scale.detach()))


register_criterion(Criterion(
    "slimming", "Network Slimming", "Liu et al., ICCV 2017 (the paper's ref. [54])",
    "sparsity training", choose))
