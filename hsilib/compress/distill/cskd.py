"""CS-KD, class-wise self-knowledge distillation (Yun, Park, Lee and Shin,
"Regularizing class-wise predictions via self-knowledge distillation", CVPR
2020; the paper's ref. [103]).

One network; for every anchor ``x`` of a batch a partner ``x'`` of the same
class is drawn, and the network's softened prediction on ``x'`` (no
gradient) is the target of its softened prediction on ``x``::

    L = CE(y, z(x)) + lam * T^2 * KL(sg(softmax(z(x') / T)) || softmax(z(x) / T))

with the KL summed over classes and averaged over the anchors (batchmean; the
code's ``KDLoss`` is ``sum / N * T^2``) and CE on the anchors only.

Hyperparameters: ``temperature = T = 4`` (``--temp``) and ``lam = 1``
(``--lamda``, its CIFAR and TinyImageNet value; 3 for the fine-grained sets),
read in alinlab/cs-kd ``train.py`` at b447f25 [code]; the benchmark paper
gives none.

Partners (as ``datasets.py:PairBatchSampler``): for each anchor, one pixel
drawn uniformly, with replacement, among the *fitting* pixels of its class
(never validation or test pixels), which may be the anchor itself; a class
with a single fitting pixel pairs it with itself and its term is 0. The
draws come from a generator seeded with the run's seed. The anchors are
fit's usual shuffled batches, so an epoch covers every fitting pixel once
as an anchor; drawing partners inside the objective rather than in a
class-paired batch sampler keeps the anchors' batches and the batch-norm
guard exactly those of every other method.

Batch norm (decision D13): two forward passes per step in train mode, as the
code does: the anchors with gradient, then the partners under
``torch.no_grad()``. The partners' pass still uses their batch statistics
and updates the running statistics, so those move twice per step (kept for
fidelity). The partner batch has the anchor batch's size, so fit's guard
against one-sample batches covers both passes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .base import Distiller, register_distiller, soft_kl


def cskd_loss(logits: torch.Tensor, partner_logits: torch.Tensor, labels: torch.Tensor,
              temperature: float, lam: float) -> dict[str, torch.Tensor]:
    """The anchors' ``ce`` and the weighted class-wise term ``kd``
    (``lam * T^2 * KL``, batchmean; the partners' logits are constants)."""
    return {"ce": F.cross_entropy(logits.float(), labels),
            "kd": lam * soft_kl(logits, partner_logits, temperature)}


@register_distiller
class CSKD(Distiller):
    name = "cskd"
    title = "CS-KD"
    family = "self"
    source = "Yun et al., CVPR 2020 (the paper's ref. [103])"
    teachers = 0
    defaults = {"temperature": 4.0, "lam": 1.0}

    def __init__(self, *args: Any, **settings: Any) -> None:
        super().__init__(*args, **settings)
        labels = np.asarray(self.pixels.fit_y)
        # The fitting pixels sorted by class: class k is the run
        # order[first[k]:first[k] + count[k]].
        self._order = np.argsort(labels, kind="stable")
        self._count = np.bincount(labels, minlength=self.pixels.n_classes)
        self._first = np.concatenate([[0], np.cumsum(self._count)[:-1]])
        self._draws = np.random.default_rng(self.pixels.seed)

    def partners(self, labels: np.ndarray) -> np.ndarray:
        """One partner per anchor: the pixel index of a fitting pixel of the
        anchor's class ``labels[i]``, drawn uniformly with replacement."""
        labels = np.asarray(labels)
        count = self._count[labels]
        if (count == 0).any():
            raise ValueError(f"CS-KD found no fitting pixel of class(es) "
                             f"{sorted(set(labels[count == 0].tolist()))} to pair with")
        draw = self._draws.integers(0, count)
        return np.asarray(self.pixels.fit_idx)[self._order[self._first[labels] + draw]]

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        logits = self.student(x)
        partners = self.partners(y.cpu().numpy())
        with torch.no_grad():  # train mode: batch statistics, as the code
            partner_logits = self.student(self.pixels.view(partners))
        return logits, cskd_loss(logits, partner_logits, y, self.setting("temperature"),
                                 self.setting("lam"))
