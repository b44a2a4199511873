"""L1-norm filter pruning (Li, Kadav, Durdanovic, Samet and Graf, "Pruning
filters for efficient ConvNets", ICLR 2017).

A filter's importance is the sum of the absolute values of its weights,
``s_j = sum |W[j, ...]|`` over its input channels and kernel positions, bias
excluded; a fully connected neuron's, the L1 norm of its weight row. Each
layer keeps its ``k`` largest. By default every layer is scored on the
original weights (Li et al.'s "independent" mode, as the rethinking
re-implementation and Torch-Pruning do); ``greedy=True`` scores a layer only
over the inputs its predecessor keeps.
"""

from __future__ import annotations

import numpy as np
import torch

from ....models.network import Network
from ..graph import group, prunable_layers
from ..surgery import Selection
from . import Criterion, register_criterion, top


def filter_norms(weight: torch.Tensor) -> np.ndarray:
    """``sum |W[j, ...]|`` of every filter (or weight row) ``j``."""
    return weight.detach().abs().flatten(1).sum(1).cpu().double().numpy()


def choose(model: Network, widths: dict[str, int], data=None, seed: int = 0,
           greedy: bool = False) -> Selection:
    kept: dict[str, np.ndarray] = {}
    previous = None
    for layer in prunable_layers(model):
        weight = getattr(model, layer.name).weight.detach()
        if greedy and previous is not None and previous.name in kept:
            g = group(model, previous)
            columns = (torch.as_tensor(kept[previous.name])[:, None] * g + torch.arange(g)).flatten()
            weight = weight[:, columns]
        if layer.name in widths:
            kept[layer.name] = top(filter_norms(weight), widths[layer.name])
        previous = layer
    return Selection(kept)


register_criterion(Criterion(
    "l1", "L1-norm pruning", "Li et al., ICLR 2017 (the paper's ref. [49])", "nothing", choose))
