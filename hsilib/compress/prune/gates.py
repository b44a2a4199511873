"""Per-channel gates for Network Slimming on layers without batch norm.

Slimming ranks channels by their batch-norm scale; CNN2D's fc1 (and CNN1D's
conv1, the MLP's hidden layer) has no batch norm after it. Following NNI's
``SlimPruner`` (the spec's option (i)), such a layer gets a gate during
sparsity training: a learnable factor per output channel, initialised to 1,
multiplying the layer's output before its activation and penalised like the
batch-norm scales. Before surgery the gate is folded into the layer
(``W <- diag(s) W``, ``b <- s * b``), which leaves the network's function
unchanged and its architecture the paper's.

A gate is a parameter ``gate`` of the layer itself (so it is saved with the
network's weights under ``<layer>.gate``) with a forward hook applying it.
"""

from __future__ import annotations

import torch
from torch import nn

from ...models.network import Network
from .graph import prunable_layers, width

GATE = "gate"


def _apply_gate(module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
    gate = getattr(module, GATE)
    return output * gate.view(1, -1, *([1] * (output.dim() - 2)))


def add_gate(layer: nn.Module, values: torch.Tensor | None = None) -> None:
    """Give ``layer`` a gate (ones, or ``values``)."""
    if hasattr(layer, GATE):
        raise ValueError(f"{type(layer).__name__} already has a gate")
    like = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    gate = torch.ones(width(layer), **like) if values is None else values.to(**like).clone()
    layer.register_parameter(GATE, nn.Parameter(gate))
    layer.register_forward_hook(_apply_gate)


def add_gates(model: Network) -> list[str]:
    """Gate every prunable layer of ``model`` that has no batch norm; the
    names of the gated layers."""
    gated = [layer.name for layer in prunable_layers(model) if layer.norm is None]
    for name in gated:
        add_gate(getattr(model, name))
    return gated


def gated(layer: nn.Module) -> bool:
    return isinstance(getattr(layer, GATE, None), nn.Parameter)


def fold_gates(model: Network) -> None:
    """Fold every gate of ``model`` into its layer, in place, and remove it."""
    for module in model.modules():
        if not gated(module):
            continue
        gate = getattr(module, GATE).detach()
        with torch.no_grad():
            module.weight.mul_(gate.view(-1, *([1] * (module.weight.dim() - 1))))
            if module.bias is not None:
                module.bias.mul_(gate)
        del module._parameters[GATE]
        for key, hook in list(module._forward_hooks.items()):
            if hook is _apply_gate:
                del module._forward_hooks[key]
