"""Physical removal of filters and neurons: a smaller dense network.

:func:`apply` removes, for every pruned layer, the dropped filters (or
neurons) with their bias, their batch-norm entries (scale, shift, running
statistics) and the consumer's matching inputs; where a linear layer reads a
flattened convolution, each channel's block of columns (``c * g + s`` for
``s < g``, torch's channel-major flatten). It also applies what a criterion
asks for:

* ``scales`` (ThiNet): each kept channel's consumer inputs multiplied by its
  least-squares factor;
* ``fold`` (soft filter pruning): dropped filters whose weights were zeroed
  still emit a constant (their bias after batch norm and ReLU); it is added
  to the consumer's bias, so the hard-pruned network equals the soft one.

:func:`mask` is the reference the surgery is tested against: the same
network with the dropped filters' weights, bias and batch-norm scale and
shift set to zero, which then emit exactly zero.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ...models.network import Network
from .gates import GATE, add_gate, gated
from .graph import PrunableLayer, group, prunable_layers, width


@dataclass
class Selection(Mapping):
    """Kept indices per pruned layer (a mapping ``{layer: sorted indices}``),
    with what :func:`apply` must also do: ThiNet's ``scales`` (one factor a
    kept channel, by layer) and soft pruning's ``fold``; ``errors`` holds a
    criterion's diagnostics (ThiNet's relative reconstruction errors)."""

    kept: dict[str, np.ndarray]
    scales: dict[str, np.ndarray] = field(default_factory=dict)
    fold: bool = False
    errors: dict[str, dict[str, float]] = field(default_factory=dict)

    def __getitem__(self, layer: str) -> np.ndarray:
        return self.kept[layer]

    def __iter__(self):
        return iter(self.kept)

    def __len__(self) -> int:
        return len(self.kept)

    def widths(self) -> dict[str, int]:
        return {layer: len(kept) for layer, kept in self.kept.items()}


def check_kept(model: Network, kept: Mapping[str, object]) -> dict[str, np.ndarray]:
    """``kept`` as sorted integer arrays, or a clear error naming the layer."""
    layers = {layer.name: layer for layer in prunable_layers(model)}
    checked = {}
    for name, indices in kept.items():
        if name not in layers:
            raise ValueError(f"{name!r} is not a prunable layer of {type(model).__name__}; "
                             f"prunable: {', '.join(layers)}")
        array = np.asarray(indices)
        size = width(getattr(model, name))
        if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name}: kept indices must be a non-empty list of integers, got {indices!r}")
        if len(np.unique(array)) != array.size or array.min() < 0 or array.max() >= size:
            raise ValueError(f"{name}: kept indices must be distinct, from 0 to {size - 1}")
        checked[name] = np.sort(array)
    return checked


def apply(model: Network, kept: Mapping[str, object], example: torch.Tensor | None = None) -> Network:
    """A physically smaller copy of ``model`` keeping ``kept`` filters or
    neurons of each named layer (``model`` is untouched).

    ``kept`` is a :class:`Selection` (what :func:`~hsilib.compress.prune.select`
    returns) or a plain mapping of sorted indices. A selection with ``fold``
    needs ``example`` (any input batch) to read the constant that each
    dropped, zeroed filter emits.
    """
    scales = getattr(kept, "scales", {})
    fold = getattr(kept, "fold", False)
    checked = check_kept(model, kept)
    if fold and example is None:
        raise ValueError("folding the constant output of zeroed filters needs an example input batch")
    pruned = copy.deepcopy(model)
    constants = _constant_outputs(model, example) if fold else {}
    with torch.no_grad():
        for layer in prunable_layers(model):
            if layer.name not in checked:
                continue
            index = torch.as_tensor(checked[layer.name])
            g = group(pruned, layer)
            if fold:
                _fold(pruned, layer, index, constants[layer.consumer_input], g)
            _shrink_producer(pruned, layer, index)
            _shrink_consumer(pruned, layer, index, g, scales.get(layer.name))
    return pruned


def mask(model: Network, kept: Mapping[str, object]) -> Network:
    """A copy of ``model`` whose dropped filters emit exactly zero: their
    weights, bias and batch-norm scale and shift set to zero (zeroing the
    scale alone would not do: the channel would still emit ReLU(shift));
    a selection's ``scales`` multiply the kept channels' consumer inputs."""
    checked = check_kept(model, kept)
    scales = getattr(kept, "scales", {})
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for layer in prunable_layers(model):
            if layer.name not in checked:
                continue
            if layer.name in scales:
                g = group(masked, layer)
                consumer = getattr(masked, layer.consumer)
                columns = (torch.as_tensor(checked[layer.name])[:, None] * g + torch.arange(g)).flatten()
                factor = torch.as_tensor(scales[layer.name], dtype=consumer.weight.dtype,
                                         device=consumer.weight.device)
                shape = (1, -1, *([1] * (consumer.weight.dim() - 2)))
                consumer.weight[:, columns] *= factor.repeat_interleave(g).view(shape)
            dropped = _dropped(masked, layer, checked[layer.name])
            producer = getattr(masked, layer.name)
            producer.weight[dropped] = 0
            if producer.bias is not None:
                producer.bias[dropped] = 0
            if layer.norm is not None:
                norm = getattr(masked, layer.norm)
                norm.weight[dropped] = 0
                norm.bias[dropped] = 0
    return masked


def _dropped(model: Network, layer: PrunableLayer, kept: np.ndarray) -> torch.Tensor:
    producer = getattr(model, layer.name)
    keep = torch.zeros(width(producer), dtype=torch.bool, device=producer.weight.device)
    keep[torch.as_tensor(kept, device=keep.device)] = True
    return torch.nonzero(~keep).flatten()


def _constant_outputs(model: Network, example: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per tap, each channel's value averaged over the batch and positions
    (what a zeroed filter emits everywhere), on an example in eval mode."""
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            taps = model.forward_features(example)
    finally:
        for module, flag in was:
            module.training = flag
    return {name: value.transpose(0, 1).flatten(1).mean(1) for name, value in taps.items()}


def _fold(model: Network, layer: PrunableLayer, kept: torch.Tensor, constants: torch.Tensor,
          g: int) -> None:
    """Add the consumer's response to the dropped channels' constants to its bias."""
    dropped = _dropped(model, layer, kept.numpy())
    consumer = getattr(model, layer.consumer)
    weight = consumer.weight
    if isinstance(consumer, nn.Linear):
        # columns c * g .. c * g + g - 1 read channel c
        per_channel = weight.reshape(weight.shape[0], -1, g).sum(2)  # (out, channels)
    else:
        per_channel = weight.flatten(2).sum(2)  # (out, in): kernel positions summed
    consumer.bias += per_channel[:, dropped] @ constants[dropped]


def _shrink_producer(model: Network, layer: PrunableLayer, kept: torch.Tensor) -> None:
    producer = getattr(model, layer.name)
    setattr(model, layer.name, _resized(producer, out=len(kept), weight=producer.weight[kept],
                                        bias=None if producer.bias is None else producer.bias[kept],
                                        gate=getattr(producer, GATE)[kept] if gated(producer) else None))
    if layer.norm is not None:
        norm = getattr(model, layer.norm)
        smaller = type(norm)(len(kept), eps=norm.eps, momentum=norm.momentum, affine=norm.affine,
                             track_running_stats=norm.track_running_stats,
                             device=norm.running_mean.device, dtype=norm.running_mean.dtype)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(smaller, name).copy_(getattr(norm, name)[kept])
        smaller.num_batches_tracked.copy_(norm.num_batches_tracked)
        smaller.train(norm.training)
        setattr(model, layer.norm, smaller)


def _shrink_consumer(model: Network, layer: PrunableLayer, kept: torch.Tensor, g: int,
                     scales: np.ndarray | None) -> None:
    consumer = getattr(model, layer.consumer)
    columns = (kept[:, None] * g + torch.arange(g)).flatten()
    weight = consumer.weight[:, columns]
    if scales is not None:  # one factor per kept channel, on its g inputs
        factor = torch.as_tensor(scales, dtype=weight.dtype, device=weight.device).repeat_interleave(g)
        weight = weight * factor.view(1, -1, *([1] * (weight.dim() - 2)))
    setattr(model, layer.consumer, _resized(consumer, inputs=len(columns), weight=weight,
                                            bias=consumer.bias,
                                            gate=getattr(consumer, GATE) if gated(consumer) else None))


def _resized(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None, out: int | None = None,
             inputs: int | None = None, gate: torch.Tensor | None = None) -> nn.Module:
    """A copy of a conv or linear layer with other sizes and the given values
    (and gate, see :mod:`~hsilib.compress.prune.gates`)."""
    like = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    if isinstance(layer, nn.Linear):
        smaller = nn.Linear(inputs or layer.in_features, out or layer.out_features, bias=bias is not None,
                            **like)
    else:
        smaller = type(layer)(inputs or layer.in_channels, out or layer.out_channels, layer.kernel_size,
                              stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                              groups=layer.groups, bias=bias is not None, padding_mode=layer.padding_mode,
                              **like)
    smaller.weight.copy_(weight)
    if bias is not None:
        smaller.bias.copy_(bias)
    smaller.train(layer.training)
    smaller = smaller.to(memory_format=_layout(layer.weight))
    if gate is not None:
        add_gate(smaller, gate.detach())
    return smaller


def _layout(tensor: torch.Tensor) -> torch.memory_format:
    if tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if tensor.dim() == 5 and tensor.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format
