"""The paper's multi-layer perceptron baseline (Table 3, "MLP").

The paper follows the baselines of Paoletti et al. (2019), its reference [68],
whose public code (``mhaut/hyperspectral_deeplearning_review``,
``algorithms/mlp.py``) builds one hidden ReLU layer of ``int(2 * B / 3) + 10``
units on the ``B`` standardized bands, then a softmax layer. On Indian Pines'
200 bands that is 143 hidden units and

    200 * 143 + 143  +  143 * 16 + 16  =  28,743 + 2,304  =  31,047

trainable parameters, exactly Table 3 (and Table 4's 31,047 / 0.13 MB). The
input is therefore the raw standardized spectrum (``components=None``), not the
40 PCA components. On Pavia University (103 bands, 9 classes) the same rule
gives 78 hidden units and 8,823 parameters.
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F  # F.relu: FX quantization fuses it with the layer before

from .network import Network, Stage
from .registry import ModelSpec, register


def default_hidden(in_channels: int) -> int:
    """Hidden width of Paoletti et al. (2019): ``int(2 * B / 3) + 10``."""
    return (2 * in_channels) // 3 + 10


class MLP(Network):
    """Linear - ReLU - Linear on a pixel's spectrum.

    Parameters
    ----------
    in_channels : spectral inputs ``B`` (200 standardized bands on Indian Pines).
    n_classes : output classes.
    hidden : hidden units; ``None`` uses ``int(2 * B / 3) + 10`` as in the
        reference code of Paoletti et al. (2019) (143 for 200 bands).

    Input ``(N, B)`` spectra (the ``PatchSampler.spectra`` view), output
    ``(N, n_classes)`` logits. Taps: ``fc1`` (after ReLU) and ``logits``.
    """

    prunable = ("fc1",)
    classifier = "fc2"

    def __init__(self, in_channels: int, n_classes: int, hidden: int | None = None):
        super().__init__()
        hidden = default_hidden(in_channels) if hidden is None else hidden
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def stages(self) -> tuple[Stage, ...]:
        return (Stage("fc1", ("fc1",), lambda x: F.relu(self.fc1(x))),
                Stage("logits", ("fc2",), lambda x: self.fc2(x)))


def build_mlp(channels: int, n_classes: int, patch_size: int,
              widths: tuple[int] | None = None) -> MLP:
    """Registry builder (``patch_size`` is unused: the model sees one pixel);
    ``widths`` is the hidden layer's, by default the reference rule's."""
    return MLP(channels, n_classes, hidden=None if widths is None else widths[0])


register(ModelSpec("mlp", "MLP", "torch", "spectrum", components=None, patch_size=1,
                   build=build_mlp, network=MLP))
