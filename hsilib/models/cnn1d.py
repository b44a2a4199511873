"""The paper's spectral 1-D CNN (Table 3, "CNN1D": 72,416 parameters).

Architecture
------------
The paper follows Paoletti et al. (2019), its reference [68], whose public code
(``mhaut/hyperspectral_deeplearning_review``, ``algorithms/cnn1d.py``) builds,
on the ``B`` standardized bands of one pixel:

    Conv1d(1 -> 20, kernel 24) - ReLU - MaxPool1d(5) - Flatten
    - Linear(100) - BatchNorm - ReLU - Linear(n_classes)

(valid convolution, pooling of size and stride 5, floor). On Indian Pines
(200 bands, 16 classes): the convolution gives 177 positions, pooled to 35, so

    conv 20 * 24 + 20 = 500,  fc1 700 * 100 + 100 = 70,100,  fc2 100 * 16 + 16 = 1,616,

72,216 weights and biases, plus the 200 scale and shift parameters of the
batch norm on fc1: **72,416**, exactly Table 3 (and Table 4's 0.29 MB).

Counting rule
-------------
Table 3's CNN1D figure is Keras' "trainable parameters", which include batch
norm's scale and shift; its CNN2D figure (426,866) has no batch norm in it
(the reference CNN2D has none). :func:`hsilib.measure.parameters_per_layer`
leaves batch norm out everywhere, so it reports 72,216 for this model, 200 short
of Table 3; ``parameters_per_layer`` + :func:`hsilib.measure.norm_parameters`
gives the paper's 72,416.

The variant suggested by Hu et al. (2015) as in DeepHyperX (20 filters of
``ceil(B / 9)``, tanh, FC 100) gives 72,196 on 200 bands and does not match.

Section 3.1 lists CNN1D among the models run after PCA to 40 components, but
Table 3's count needs all 200 bands: on 40 components the same network has
500 + 6,100 + 1,616 = 8,216 parameters. The registry therefore feeds it the
standardized bands (``components=None``), like the MLP and the LSTM.

On Pavia University (103 bands, 9 classes): conv 500, fc1 32,100 (16 pooled
positions), fc2 909, i.e. 33,509 (+200 batch norm = 33,709).
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F  # F.relu: FX quantization fuses it with the layer before

from .network import Network, Stage
from .registry import ModelSpec, register


class CNN1D(Network):
    """Conv1d - ReLU - MaxPool - FC - BN - ReLU - FC on a pixel's spectrum.

    Parameters
    ----------
    in_channels : spectral inputs ``B`` (200 standardized bands on Indian Pines).
    n_classes : output classes.
    filters : convolution filters (20).
    kernel_size : convolution length (24).
    pool : max-pool size and stride (5).
    hidden : units of the first fully connected layer (100).

    Input ``(N, B)`` spectra (the ``PatchSampler.spectra`` view), output
    ``(N, n_classes)`` logits. Taps: ``conv1`` (after ReLU), ``pool``,
    ``fc1`` (after BN and ReLU) and ``logits``.
    """

    prunable = ("conv1", "fc1")
    classifier = "fc2"

    def __init__(self, in_channels: int, n_classes: int, filters: int = 20,
                 kernel_size: int = 24, pool: int = 5, hidden: int = 100):
        super().__init__()
        length = (in_channels - kernel_size + 1) // pool
        if length < 1:
            raise ValueError(f"{in_channels} bands are too few for kernel {kernel_size} "
                             f"and pooling {pool}")
        self.conv1 = nn.Conv1d(1, filters, kernel_size)
        self.pool = nn.MaxPool1d(pool)
        self.fc1 = nn.Linear(filters * length, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def stages(self) -> tuple[Stage, ...]:
        return (Stage("conv1", ("conv1",), lambda x: F.relu(self.conv1(x.unsqueeze(1)))),
                Stage("pool", ("pool",), lambda x: self.pool(x)),
                Stage("fc1", ("fc1", "bn1"), lambda x: F.relu(self.bn1(self.fc1(x.flatten(1))))),
                Stage("logits", ("fc2",), lambda x: self.fc2(x)))


def build_cnn1d(channels: int, n_classes: int, patch_size: int,
                widths: tuple[int, int] = (20, 100)) -> CNN1D:
    """Registry builder (``patch_size`` is unused: the model sees one pixel);
    ``widths`` are conv1's filters and fc1's units."""
    return CNN1D(channels, n_classes, filters=widths[0], hidden=widths[1])


register(ModelSpec("cnn1d", "CNN1D", "torch", "spectrum", components=None, patch_size=1,
                   build=build_cnn1d, network=CNN1D))
