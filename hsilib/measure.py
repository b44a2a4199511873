"""Model measurements: parameters per layer (more to come: MACs, memory, latency)."""

from __future__ import annotations

from torch import nn

# Layers whose weights and biases the paper counts as "trainable parameters".
COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.LSTM)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def parameters_per_layer(model: nn.Module) -> dict[str, int]:
    """Parameters (weights + biases) of each conv, linear and LSTM layer, by
    module name, as the paper counts them: batch norm is left out (see
    :func:`norm_parameters`)."""
    return {name: sum(p.numel() for p in module.parameters(recurse=False))
            for name, module in model.named_modules() if isinstance(module, COUNTED)}


def norm_parameters(model: nn.Module) -> int:
    """Learnable batch-norm parameters (scale and shift), reported separately."""
    return sum(p.numel() for m in model.modules() if isinstance(m, NORMS)
               for p in m.parameters(recurse=False))
