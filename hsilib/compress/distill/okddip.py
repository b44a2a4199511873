"""OKDDip, online knowledge distillation with diverse peers (Chen, Mei, Wang,
Feng and Chen, AAAI 2020; the paper's ref. [11]).

Several peers and a group leader share the low-level layers. First tier:
each peer distils from its *own* target, an attention-weighted combination
of all peers' logits, whose weights come from query and key projections of
the peers' features, so that the targets differ and the peers stay diverse.
Second tier: the leader, the network used for prediction, distils from the
plain average of the peers. With peers i, j = 1..m, ``e_i`` peer i's
``fc1`` output and ``z_L`` the leader's logits::

    q_i = W_q e_i,  k_j = W_k e_j              (linear, no bias, d = max(1, h // factor))
    A_ij = softmax_j(q_i . k_j)                (over every peer j, i included; no 1/sqrt(d))
    t_i  = sum_j A_ij z_j                      (peer i's target logits)
    L    = sum_i CE(y, z_i) + CE(y, z_L)
           + w(epoch) * T^2 * [sum_i KL(softmax(t_i / T) || softmax(z_i / T))
                               + KL(softmax(mean_i z_i / T) || softmax(z_L / T))]

with each KL summed over classes and averaged over the batch (batchmean),
the cross-entropies averaged over the batch and ``w`` ONE's ramp
(:meth:`~.base.Distiller.ramp`).

Hyperparameters, from the authors' code DefangChen/OKDDip (``train_GL.py``,
``models/model_cifar/resnet_GL.py``) [code]; the benchmark paper gives none:

- ``peers`` = 3 and one leader (``num_branches 4``; the last branch leads).
- ``temperature`` T = 3; the KL weight ``alpha`` = 1 (not a setting).
- ``ramp_up``: ``start_consistency 0`` and ramp length 80 of 300 epochs,
  hence ``R = round(0.27 E)``; ``False`` gives ``w = 1``.
- ``factor`` = 8: ``query_weight``/``key_weight`` are
  ``nn.Linear(h, h // 8, bias=False)``; here at least 1 (d = 3 / 2 / 1 for
  the 90/95/98% students' h = 30 / 20 / 10).
- The code's ``x_m = bmm(pro, attention^T)`` is ``t_i = sum_j A_ij z_j``.
  Its ``KL_Loss`` adds ``1e-7`` to the target; that is left out.
- Branch point (decision D9): the trunk is ``conv1`` + BN + ReLU, each peer
  and the leader ``conv2`` ... ``fc2`` at the student's widths; ``e_i`` is
  peer i's ``fc1`` output; the leader does not enter the attention.
  Training-time parameters on Indian Pines (conv and linear layers):
  152,419 / 71,594 / 20,809 for the 90/95/98% students.
- Stop-gradient (decision D11): as the code, nothing is detached: the
  peers' logits inside ``t_i`` and inside the leader's target carry
  gradient, and ``W_q``, ``W_k`` learn only through the targets ``t_i``.
  ``detach_peers=True`` is the ablation ``t_i = sum_j A_ij sg(z_j)``, which
  detaches the peers' logits in the leader's target too (the attention
  still learns through ``A``).

Deployed (decision D16): the leader with the trunk, exactly the student's
architecture, starting from the Scratch student's initial weights; the peer
ensemble (the mean of the peers' logits) is reported separately with its size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models.network import Network
from .base import TrainingPixels, register_distiller
from .one import BranchedDistiller, Heads, distillation_kl, layer_width


def peer_attention(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """``A`` (N, m, m): row i is the softmax over peers j of ``q_i . k_j``
    (``queries`` and ``keys`` are (N, m, d))."""
    return F.softmax(queries.float() @ keys.float().transpose(1, 2), dim=-1)


def okddip_loss(peer_logits: Sequence[torch.Tensor], leader_logits: torch.Tensor,
                attention: torch.Tensor, labels: torch.Tensor, temperature: float, weight: float,
                detach_peers: bool = False) -> dict[str, torch.Tensor]:
    """OKDDip's terms: ``ce_peers`` (summed), ``ce_leader``, and ``weight``
    times the ``T^2``-scaled KLs ``kd_peers`` (each peer to its target
    ``t_i = sum_j A_ij z_j``, summed) and ``kd_leader`` (the leader to the
    peers' mean logits). ``attention`` is :func:`peer_attention`'s (N, m, m)."""
    logits = torch.stack([z.float() for z in peer_logits], dim=1)  # N, m, C
    sources = logits.detach() if detach_peers else logits
    targets = attention.float() @ sources  # row i: sum_j A_ij z_j
    return {"ce_peers": sum(F.cross_entropy(z.float(), labels) for z in peer_logits),
            "ce_leader": F.cross_entropy(leader_logits.float(), labels),
            "kd_peers": weight * sum(distillation_kl(z, targets[:, i], temperature, detach=False)
                                     for i, z in enumerate(peer_logits)),
            "kd_leader": weight * distillation_kl(leader_logits, sources.mean(1), temperature,
                                                  detach=False)}


@register_distiller
class OKDDip(BranchedDistiller):
    name = "okddip"
    title = "OKDDip"
    family = "online"
    source = "Chen, Mei, Wang, Feng and Chen, AAAI 2020 (the paper's ref. [11])"
    teachers = 0
    defaults = {"peers": 3, "temperature": 3.0, "factor": 8, "ramp_up": True, "detach_peers": False}
    deployed_branch = -1  # the leader
    member = "peer"

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        super().__init__(student, teachers, pixels, make_student, **settings)
        factor = self.setting("factor")
        if type(factor) is not int or factor < 1:
            raise ValueError(f"OKDDip's projection factor must be a positive integer, got {factor!r}")
        width = layer_width(student, "fc1")
        self.query = self.like_student(nn.Linear(width, max(1, width // factor), bias=False))
        self.key = self.like_student(nn.Linear(width, max(1, width // factor), bias=False))

    def branch_count(self) -> int:
        peers = self.setting("peers")
        if type(peers) is not int or peers < 2:
            raise ValueError(f"OKDDip needs at least 2 peers besides the leader, got {peers!r}")
        return peers + 1

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        *peers, leader = self.network.forward_branches(x)
        features = torch.stack([taps["fc1"] for taps in peers], dim=1)  # N, m, h
        attention = peer_attention(self.query(features), self.key(features))
        weight = self.ramp() if self.setting("ramp_up") else 1.0
        return leader["logits"], okddip_loss([taps["logits"] for taps in peers], leader["logits"],
                                             attention, y, self.setting("temperature"), weight,
                                             self.setting("detach_peers"))

    def ensemble(self) -> nn.Module:
        """The peer ensemble: the mean of the peers' logits (the leader left out)."""
        return Heads(self.network, range(self.setting("peers")))
