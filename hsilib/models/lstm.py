"""The paper's recurrent baseline (Table 3, "LSTM": 102,416 parameters).

Architecture
------------
The reference code of Paoletti et al. (2019), the paper's reference [68]
(``mhaut/hyperspectral_deeplearning_review``, ``algorithms/recurrent.py``),
stacks two LSTM layers of 64 units that return their whole output sequence,
flattens it and ends with one softmax layer. Its LSTM is Keras' ``CuDNNLSTM``,
which, like ``torch.nn.LSTM``, has two bias vectors per gate:
``4 * (i * h + h * h + 2 * h)`` parameters per layer.

That code feeds the spectrum as ``B`` steps of one band; on Indian Pines
(200 bands, 16 classes) it would have 17,152 + 33,280 + 204,816 = 255,248
parameters, not Table 3's 102,416. With ``T`` steps of ``i`` bands
(``i * T = 200``) the count is ``1024 * T + 256 * i + 50,192``, which equals
102,416 only for

* ``T = 1, i = 200`` (the whole spectrum as a single step):
  68,096 + 33,280 + 1,040 = 102,416, and
* ``T = 50, i = 4`` (50 steps of 4 adjacent bands):
  17,920 + 33,280 + 51,216 = 102,416.

(A Keras ``LSTM`` with one bias vector gives 101,904 for either; 40 PCA
components give no solution; nor does one band per step with 1-3 layers of
any width whose last state feeds the output layer directly.) The two agree
only because, with 16 classes, ``4 * 200 * 64 + 64 * 16 = 4 * 4 * 64 +
50 * 64 * 16`` (52,224 weights, either in the first layer's input weights or
in the FC head); on other datasets they differ.

We take ``T = 1`` (:class:`SpectralLSTM` with ``steps=1``, the default): it is
what a direct PyTorch port gives when the ``(N, B)`` spectrum is fed as
``x.unsqueeze(1)`` to ``nn.LSTM(B, 64, num_layers=2, batch_first=True)``, and
it works for any band count (Pavia University's 103 bands are not divisible by
4). Be aware that with a single step the recurrent weights ``W_hh`` multiply
the zero initial state: they are counted (as Table 3 counts them) but never
influence the output, so the model is in effect a two-layer gated network on
the spectrum. ``steps=50`` gives the other exact solution, a genuinely
recurrent model over 50 groups of 4 bands, when the band count allows it.

Counts (``hsilib.measure.parameters_per_layer``; no batch norm here):
Indian Pines, 200 bands, 16 classes: 102,416 (``steps=1`` or ``steps=50``);
Pavia University, 103 bands, 9 classes, ``steps=1``: 77,129.
"""

from __future__ import annotations

import torch
from torch import nn

from .network import Network, Stage
from .registry import ModelSpec, register


class SpectralLSTM(Network):
    """Stacked LSTM over a pixel's spectrum, all outputs flattened, one FC layer.

    Parameters
    ----------
    in_channels : spectral inputs ``B`` (200 standardized bands on Indian Pines).
    n_classes : output classes.
    hidden : units of each LSTM layer (64 in Paoletti et al., 2019).
    layers : stacked LSTM layers (2).
    steps : sequence length ``T``; the spectrum is cut into ``T`` consecutive
        groups of ``B / T`` bands, one group per step (``B`` must be divisible
        by ``T``). 1 (default) feeds the whole spectrum as one step.

    Input ``(N, B)`` spectra (the ``PatchSampler.spectra`` view), output
    ``(N, n_classes)`` logits. Taps: ``lstm`` (every step's output of the
    last layer, flattened) and ``logits``. Its width is not an argument: it
    has no prunable layer.
    """

    classifier = "fc"

    def __init__(self, in_channels: int, n_classes: int, hidden: int = 64, layers: int = 2,
                 steps: int = 1):
        super().__init__()
        if steps < 1 or in_channels % steps:
            raise ValueError(f"steps must divide the {in_channels} input bands, got {steps}")
        self.steps = steps
        self.lstm = nn.LSTM(in_channels // steps, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(steps * hidden, n_classes)

    def stages(self) -> tuple[Stage, ...]:
        return (Stage("lstm", ("lstm",), self._sequence),
                Stage("logits", ("fc",), lambda x: self.fc(x)))

    def _sequence(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x.reshape(x.shape[0], self.steps, -1))  # (N, T, hidden)
        return out.flatten(1)


def build_lstm(channels: int, n_classes: int, patch_size: int) -> SpectralLSTM:
    """Registry builder (``patch_size`` is unused: the model sees one pixel)."""
    return SpectralLSTM(channels, n_classes)


register(ModelSpec("lstm", "LSTM", "torch", "spectrum", components=None, patch_size=1,
                   build=build_lstm, network=SpectralLSTM))
