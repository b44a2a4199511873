"""Which layers of a network can be pruned, and what each one feeds.

For every prunable layer (a convolution's filters or a linear layer's
neurons, :attr:`~hsilib.models.network.Network.prunable`) a
:class:`PrunableLayer` names the batch norm that follows it (if any), its
*consumer* (the next convolution or linear layer, which reads its output) and
the tap that enters the consumer's stage. All of it is read off the network's
stages, so CNN1D, CNN2D, CNN3D and the MLP are pruned by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ...measure import NORMS
from ...models.network import Network

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class PrunableLayer:
    """One prunable layer of a network.

    name : the layer (``"conv2"``). norm : its batch norm (``"bn2"``) or ``None``.
    consumer : the layer that reads its output (``"fc1"``).
    consumer_input : the tap the consumer's stage reads (``"pool"``).
    """

    name: str
    norm: str | None
    consumer: str
    consumer_input: str


def prunable_layers(model: Network) -> list[PrunableLayer]:
    """The network's prunable layers in forward order, with what follows each."""
    stages = model.stages()
    layers = []
    for index, stage in enumerate(stages):
        for name in stage.layers:
            if name not in model.prunable:
                continue
            norms = [n for n in stage.layers if isinstance(getattr(model, n), NORMS)]
            later = [(stages[i - 1].tap, n) for i in range(index + 1, len(stages))
                     for n in stages[i].layers if isinstance(getattr(model, n), WEIGHTED)]
            if not later:
                raise ValueError(f"{type(model).__name__}.{name} has no layer after it to prune into")
            consumer_input, consumer = later[0]
            layers.append(PrunableLayer(name, norms[0] if norms else None, consumer, consumer_input))
    return layers


def width(layer: nn.Module) -> int:
    """Output channels (convolution) or neurons (linear layer)."""
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def group(model: Network, layer: PrunableLayer) -> int:
    """Consumer inputs per output channel of ``layer``: 1 for a convolution
    or linear layer read directly, the flattened spatial size when a linear
    layer reads a convolution (25 for CNN2D's conv2 -> fc1)."""
    consumer = getattr(model, layer.consumer)
    inputs = consumer.in_features if isinstance(consumer, nn.Linear) else consumer.in_channels
    channels = width(getattr(model, layer.name))
    if inputs % channels:
        raise ValueError(f"{layer.consumer} reads {inputs} inputs, not a multiple of "
                         f"{layer.name}'s {channels} channels")
    return inputs // channels
