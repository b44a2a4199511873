"""PS-KD, progressive self-knowledge distillation (Kim, Ji, Yoon and Hwang,
"Self-knowledge distillation with progressive refinement of targets", ICCV
2021; the paper's ref. [45]).

The network is its own teacher over time: at epoch ``t`` of ``E`` (1-based)
each pixel's target blends its one-hot label with the network's own
prediction for that pixel in the previous epoch, with a weight growing
linearly to ``alpha_T``::

    alpha_t = alpha_T * t / E
    target  = (1 - alpha_t) * onehot(y) + alpha_t * P_prev(x)
    L       = - mean_n sum_c target_c * log softmax(z)_c

``P_prev`` is a prediction bank of ``N_fit x C`` float32 on the network's
device, one row per fitting pixel (indexed by the pixel's index, never its
batch position), one-hot at the start (so epoch 1's targets are one-hot)
and overwritten after each step's loss with that step's detached
``softmax(z)``: the target at epoch ``t`` comes from epoch ``t - 1``'s
forward of the same pixel. The last epoch reaches exactly ``alpha_T``
(the code's ``(epoch + 1) / end_epoch`` with 0-based epochs).

Hyperparameter: ``alpha_T = 0.8`` (``--alpha_T``, lgcnsai/PS-KD-Pytorch
``main.py`` at 9aa0828 [code]; the paper's CIFAR-100 value [paper?]); the
benchmark paper gives none. ``E`` is the run's epoch budget
(``TrainingPixels.epochs``), which must be fit's ``epochs``.

Pitfalls handled: the stored predictions are detached, so the gradient flows
only through the current prediction (PS-KD-Pytorch#1: an older line did
not detach); the bank is a non-persistent buffer, so fit's restoring the
best epoch's weights leaves it alone (fit never restarts training, which
would need a fresh bank).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .base import Distiller, register_distiller


def progressive_alpha(alpha_T: float, epoch: int, epochs: int) -> float:
    """``alpha_T * epoch / epochs`` for a 1-based ``epoch`` of ``epochs``."""
    if not 1 <= epoch <= epochs:
        raise ValueError(f"PS-KD's epoch must be in 1..{epochs} (the run's epoch budget, which must "
                         f"be fit's epochs), got {epoch}")
    return alpha_T * epoch / epochs


def progressive_targets(labels: torch.Tensor, previous: torch.Tensor, alpha_t: float) -> torch.Tensor:
    """``(1 - alpha_t) * onehot(labels) + alpha_t * previous``; ``previous``
    holds probabilities and is taken as a constant."""
    onehot = F.one_hot(labels, previous.shape[1]).float()
    return (1 - alpha_t) * onehot + alpha_t * previous.detach().float()


def pskd_loss(logits: torch.Tensor, labels: torch.Tensor, previous: torch.Tensor, alpha_t: float
              ) -> dict[str, torch.Tensor]:
    """The cross-entropy ``ce`` to the progressive targets, averaged over the batch."""
    return {"ce": F.cross_entropy(logits.float(), progressive_targets(labels, previous, alpha_t))}


@register_distiller
class PSKD(Distiller):
    name = "pskd"
    title = "PS-KD"
    family = "self"
    source = "Kim et al., ICCV 2021 (the paper's ref. [45])"
    teachers = 0
    defaults = {"alpha_T": 0.8}

    bank: torch.Tensor

    def __init__(self, *args: Any, **settings: Any) -> None:
        super().__init__(*args, **settings)
        if not 0.0 <= self.setting("alpha_T") <= 1.0:
            raise ValueError(f"PS-KD's alpha_T must be in [0, 1], got {self.setting('alpha_T')}")
        fit_idx = np.asarray(self.pixels.fit_idx)
        self._by_pixel = np.argsort(fit_idx)
        self._sorted_pixels = fit_idx[self._by_pixel]
        labels = torch.as_tensor(np.asarray(self.pixels.fit_y), dtype=torch.int64)
        self.register_buffer("bank", F.one_hot(labels, self.pixels.n_classes).float(),
                             persistent=False)

    def rows(self, index: np.ndarray) -> np.ndarray:
        """The bank rows of fitting pixels ``index`` (pixel indices)."""
        index = np.asarray(index)
        where = np.searchsorted(self._sorted_pixels, index).clip(max=len(self._sorted_pixels) - 1)
        unknown = self._sorted_pixels[where] != index
        if unknown.any():
            raise ValueError(f"PS-KD keeps predictions of fitting pixels only; pixel(s) "
                             f"{index[unknown][:5].tolist()} are not among them")
        return self._by_pixel[where]

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        logits = self.student(x)
        rows = torch.as_tensor(self.rows(index), device=self.bank.device)
        alpha_t = progressive_alpha(self.setting("alpha_T"), self.epoch, self.pixels.epochs)
        terms = pskd_loss(logits, y, self.bank[rows], alpha_t)
        self.bank[rows] = F.softmax(logits.detach().float(), dim=1)
        return logits, terms
