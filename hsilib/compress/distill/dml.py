"""DML, deep mutual learning (Zhang, Xiang, Hospedales and Lu, "Deep mutual
learning", CVPR 2018; the paper's ref. [107]).

No pre-trained teacher: K peer networks train together from scratch, each on
the labels and on the other peers' predictions::

    L_k = CE(y, z_k) + (kd_weight / (K - 1)) * sum_{l != k} KL(sg(softmax(z_l)) || softmax(z_k))
    L   = sum_k L_k

at temperature 1, with each KL summed over classes and averaged over the
batch (batchmean) and the cross-entropy averaged over the batch. For K = 2:
``L_1 = CE_1 + KL(p_2 || p_1)`` and ``L_2 = CE_2 + KL(p_1 || p_2)``.

Hyperparameters (the benchmark paper gives none, but "we compute the
predictions of the two models and update the parameters of both networks in
accordance with one another's predictions at each iteration" [bench] implies
two peers):

- ``peers`` K = 2: the benchmark paper's wording [bench]; most of the DML
  paper's experiments [paper?]; 2 MobileNets in the official Market-1501
  script [code].
- ``kd_weight`` = 1: AberHu/Knowledge-Distillation-Zoo's ``lambda_kd`` [code];
  the official TF code adds the KL unweighted [code].
- No temperature (T = 1) [paper?]; the ``1/(K-1)`` average of the paper
  [paper?] (the official code sums over l != k; the same for K = 2).
- Updates are synchronous: every peer's loss is computed on the same batch
  and one Adam optimizer steps all peers (Adam is per parameter, so this
  equals one optimizer per peer). The paper's Algorithm 1 alternates
  [paper?]; AberHu updates synchronously [code].
- Stop-gradient (decision D11): the peer targets ``sg(softmax(z_l))`` are
  detached, so each KL updates only its own peer, as the official code's
  per-network ``var_list`` and AberHu do. Not a setting: without it each KL
  would pull both peers towards each other.

The peers are complete students. Peer 0 is the student the method is given
(the Scratch student's initial weights, so the two pair) and is deployed
(decision D16); the others get new random weights. The ensemble, the mean of
the peers' logits, is reported separately with its size (K students).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models.network import Network
from .base import Distiller, TrainingPixels, register_distiller, soft_kl


def dml_loss(peer_logits: Sequence[torch.Tensor], labels: torch.Tensor, kd_weight: float = 1.0
             ) -> dict[str, torch.Tensor]:
    """Each peer's two terms, ``ce_k`` and ``kl_k`` (``kd_weight`` times the
    mean KL from the other peers' detached predictions to its own); peer
    ``k``'s loss is ``ce_k + kl_k``."""
    count = len(peer_logits)
    if count < 2:
        raise ValueError(f"mutual learning needs at least 2 peers, got {count}")
    terms = {}
    for k, logits in enumerate(peer_logits):
        terms[f"ce_{k}"] = F.cross_entropy(logits.float(), labels)
        terms[f"kl_{k}"] = kd_weight / (count - 1) * sum(
            soft_kl(logits, other, 1.0) for other_k, other in enumerate(peer_logits) if other_k != k)
    return terms


class LogitMean(nn.Module):
    """The mean of some networks' logits (modules shared, not copied)."""

    def __init__(self, networks: Sequence[nn.Module]):
        super().__init__()
        self.networks = nn.ModuleList(networks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([network(x) for network in self.networks]).mean(0)


@register_distiller
class DML(Distiller):
    name = "dml"
    title = "DML"
    family = "online"
    source = "Zhang, Xiang, Hospedales and Lu, CVPR 2018 (the paper's ref. [107])"
    teachers = 0
    defaults = {"peers": 2, "kd_weight": 1.0}

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        super().__init__(student, teachers, pixels, make_student, **settings)
        peers = self.setting("peers")
        if type(peers) is not int or peers < 2:
            raise ValueError(f"DML needs at least 2 peers, got {peers!r}")
        self.others = nn.ModuleList(self.make_student() for _ in range(peers - 1))

    @property
    def peers(self) -> list[Network]:
        """Every peer; peer 0 is the deployed student."""
        return [self.student, *self.others]

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        logits = [peer(x) for peer in self.peers]
        return logits[0], dml_loss(logits, y, self.setting("kd_weight"))

    def ensemble(self) -> nn.Module:
        """The mean of every peer's logits."""
        return LogitMean(self.peers)

    def members(self) -> dict[str, nn.Module]:
        return {f"peer {k}": peer for k, peer in enumerate(self.others, start=1)}
