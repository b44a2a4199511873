"""The paper's spectral-spatial 3-D CNN (Table 3, "CNN3D": 1.8M parameters).

Architecture
------------
The paper follows Paoletti et al. (2019), its reference [68], whose public code
(``mhaut/hyperspectral_deeplearning_review``, ``algorithms/cnn3d.py``; defaults
40 PCA components and 19x19 patches) builds, written here in PyTorch's
``(depth = band, height, width)`` order:

    Conv3d(1 -> 32, kernel 24x5x5) - BN - ReLU
    - Conv3d(32 -> 64, kernel 16x5x5) - BN - ReLU - MaxPool3d(1x2x2) - Flatten
    - Linear(300) - BN - ReLU - Linear(n_classes)

On a 40 x 19 x 19 cube: conv1 gives 17 x 15 x 15, conv2 2 x 11 x 11, pooling
2 x 5 x 5, i.e. 3,200 features. Parameters (weights + biases, batch norm left
out as in :func:`hsilib.measure.parameters_per_layer`):

    conv1 32 * 600 + 32 = 19,232          conv2 64 * 12,800 + 64 = 819,264
    fc1 3,200 * 300 + 300 = 960,300       fc2 300 * 16 + 16 = 4,816

1,803,612 on Indian Pines (16 classes), which Table 3 prints as "1.8M"; the
batch norms add 792 (1,804,404 in all, still 1.8M). On Pavia University
(9 classes): 1,801,505.

Cost
----
The architecture is expensive: about 73.4M multiply-accumulates in conv1,
198.2M in conv2 and 1.0M in the FC layers, **~273M MACs per sample** (ten
times the CNN2D's ~27M). Measured on 2 CPU threads, one training step on a
batch of 100 cubes takes about 1 s. The cost cannot be cut while keeping the
count: a convolution's MACs are its weights times its output positions, and
the 3,200-feature flatten that gives fc1 its 960,300 parameters fixes those
positions.
A cheaper model can be built with the constructor's arguments (e.g. a smaller
``patch_size`` or ``filters``) at the price of the paper's count.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F  # F.relu: FX quantization fuses it with the layer before

from .network import Network, Stage
from .registry import ModelSpec, register


class CNN3D(Network):
    """Conv3d - BN - ReLU - Conv3d - BN - ReLU - MaxPool - FC - BN - ReLU - FC.

    Parameters
    ----------
    in_channels : bands of the cube (40 PCA components in the paper).
    n_classes : output classes.
    patch_size : odd side of the input patch (19).
    filters : filters of the two 3-D convolutions (32, 64).
    depths : spectral extent of the two kernels (24, 16); both kernels are 5x5
        in space.
    hidden : units of the first fully connected layer (300).

    Input ``(N, 1, C, s, s)`` cubes (the ``PatchSampler.cubes`` view), output
    ``(N, n_classes)`` logits. Taps: ``conv1``, ``conv2`` (after BN and
    ReLU; ``conv2`` before pooling), ``pool``, ``fc1`` (after BN and ReLU)
    and ``logits``.
    """

    prunable = ("conv1", "conv2", "fc1")
    classifier = "fc2"
    # channels last: ~6% faster training and ~14% faster inference than contiguous (measured, 2 cores, bf16)
    memory_format = torch.channels_last_3d

    def __init__(self, in_channels: int, n_classes: int, patch_size: int = 19,
                 filters: tuple[int, int] = (32, 64), depths: tuple[int, int] = (24, 16),
                 hidden: int = 300):
        super().__init__()
        depth = in_channels - depths[0] - depths[1] + 2
        side = (patch_size - 8) // 2  # two valid 5x5 convolutions, then 2x2 pooling
        if patch_size % 2 == 0 or side < 1:
            raise ValueError(f"patch_size must be odd and at least 11, got {patch_size}")
        if depth < 1:
            raise ValueError(f"{in_channels} bands are too few for kernel depths {depths}")
        self.conv1 = nn.Conv3d(1, filters[0], kernel_size=(depths[0], 5, 5))
        self.bn1 = nn.BatchNorm3d(filters[0])
        self.conv2 = nn.Conv3d(filters[0], filters[1], kernel_size=(depths[1], 5, 5))
        self.bn2 = nn.BatchNorm3d(filters[1])
        self.pool = nn.MaxPool3d((1, 2, 2))
        self.fc1 = nn.Linear(filters[1] * depth * side * side, hidden)
        self.bn3 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def stages(self) -> tuple[Stage, ...]:
        return (Stage("conv1", ("conv1", "bn1"), lambda x: F.relu(self.bn1(self.conv1(x)))),
                Stage("conv2", ("conv2", "bn2"), lambda x: F.relu(self.bn2(self.conv2(x)))),
                Stage("pool", ("pool",), lambda x: self.pool(x)),
                Stage("fc1", ("fc1", "bn3"), lambda x: F.relu(self.bn3(self.fc1(x.flatten(1))))),
                Stage("logits", ("fc2",), lambda x: self.fc2(x)))


def build_cnn3d(channels: int, n_classes: int, patch_size: int,
                widths: tuple[int, int, int] = (32, 64, 300)) -> CNN3D:
    """Registry builder; ``widths`` are conv1, conv2 and fc1's."""
    return CNN3D(channels, n_classes, patch_size=patch_size, filters=widths[:2], hidden=widths[2])


register(ModelSpec("cnn3d", "CNN3D", "torch", "cube", components=40, patch_size=19,
                   build=build_cnn3d, network=CNN3D))
