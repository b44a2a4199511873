"""ONE, on-the-fly native ensemble (Lan, Zhu and Gong, "Knowledge
distillation by on-the-fly native ensemble", NeurIPS 2018; the paper's
ref. [110]).

One network of ``m`` branches that share their low-level layers; a gate
weighs the branches per sample, and the gated sum of their logits is an
on-the-fly teacher that every branch distils from, while all of them, the
teacher included, learn the labels::

    g   = softmax(ReLU(BN1d(W_g GAP(x_shared))))      (m weights per sample)
    z_e = sum_i g_i z_i
    L   = sum_i CE(y, z_i) + CE(y, z_e)
          + w(epoch) * T^2 * sum_i KL(sg(softmax(z_e / T)) || softmax(z_i / T))
    w(epoch) = exp(-5 (1 - min(epoch, R) / R)^2),  R = round(0.27 E)

with each KL summed over classes and averaged over the batch (batchmean),
and the cross-entropies averaged over the batch.

Hyperparameters (the benchmark paper gives none):

- ``branches`` m = 3: the authors' code (``layer3_1..3`` of
  ``models/cifar/resnet.py:ONE_ResNet``) [code]; the OKDDip repository's
  ``train_one.py`` uses 4 [code].
- ``temperature`` T = 3: the paper [paper?] and the authors' ``KLLoss``,
  which hard-codes it [code].
- ``ramp_up``: the sigmoid ramp ``w`` of the authors' code only
  (``consistency_rampup 80`` of 300 epochs, hence ``R = round(0.27 E)``,
  :meth:`~.base.Distiller.ramp`) [code]; ``False`` gives ``w = 1``, the
  paper's loss [paper?]. ``w`` starts at ``e^-5 = 0.0067``.
- The gate is "one FC layer followed by batch normalization, ReLU
  activation, and softmax" on the shared features [paper?]; a global average
  pool feeds it (the code's ``AvgPool2d(16)`` is CIFAR's map size). The ReLU
  before the softmax makes every gate logit non-negative; it is kept.
- Branch point (spec decision D9): the trunk is ``conv1`` + BN + ReLU, each
  branch ``conv2`` ... ``fc2`` at the student's widths, so that a branch with
  the trunk is exactly the student's architecture. Training-time parameters
  on Indian Pines (conv and linear layers, the paper's convention):
  117,981 / 56,171 / 16,861 for the 90/95/98% students.
- Stop-gradient (decision D11): ``z_e`` is detached inside the KL, as the
  authors' code does (``Variable(target.data, requires_grad=False)``);
  ``detach_target=False`` gives the OKDDip repository's ``train_one.py``
  (not detached). The ``+1e-7`` the code adds to the target is left out.

Deployed (decision D16): branch 0 with the trunk, whose initial weights are
the Scratch student's (the two pair); the gated ensemble ONE-E is reported
separately with its size (trunk, every branch and the gate).

This module also holds what the branched online methods share (CL-ILR and
OKDDip import it): the branch point, building the branched network from the
student, a view of some of its heads, and the temperature-scaled KL to
targets that may carry gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models.network import Branched, Network
from ...train import model_device
from .base import Distiller, TrainingPixels, kl_batchmean, register_distiller, soft_kl

SHARED = "conv1"
"""The last tap of the shared trunk of ONE, CL-ILR and OKDDip (decision D9)."""


def branched_student(student: Network, make_student: Callable[[], Network], branches: int,
                     deployed: int) -> Branched:
    """A network of ``branches`` heads sharing the trunk up to :data:`SHARED`,
    whose trunk and head ``deployed`` start from ``student``'s weights (the
    other heads from new random ones)."""
    network = Branched(make_student, branches, shared=SHARED)
    state = student.state_dict()
    for part in (network.trunk, network.heads[deployed]):
        part.load_state_dict({name: state[name] for name in part.state_dict()})
    return network


def layer_width(student: Network, layer: str) -> int:
    """Output channels or units of ``student``'s prunable layer ``layer``
    (for CNN2D, the width of the tap of the same name)."""
    widths = dict(zip(student.prunable, student.widths))
    if layer not in widths:
        raise ValueError(f"{type(student).__name__} has no prunable layer {layer!r} to size a "
                         f"module on; its layers: {', '.join(widths)}")
    return widths[layer]


def gated_logits(logits: Sequence[torch.Tensor], gate: torch.Tensor) -> torch.Tensor:
    """``sum_i g_i z_i`` per sample: ``logits`` m tensors (N, C), ``gate`` (N, m)."""
    return torch.einsum("nm,mnc->nc", gate, torch.stack(list(logits)))


class Heads(nn.Module):
    """The trunk and some heads of a :class:`~hsilib.models.network.Branched`
    network, sharing its modules (not copies): the logits of one head, or
    the mean of several, or their ``gate``-weighted sum (``gate`` maps the
    trunk's output to (N, heads) weights)."""

    def __init__(self, network: Branched, heads: Sequence[int], gate: nn.Module | None = None):
        super().__init__()
        self.trunk, self.shared = network.trunk, network.shared
        self.heads = nn.ModuleList(network.heads[i] for i in heads)
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = self.trunk.forward_features(x, until=self.shared)[self.shared]
        logits = [head.forward_features(shared, after=self.shared)["logits"] for head in self.heads]
        if self.gate is not None:
            return gated_logits(logits, self.gate(shared))
        return logits[0] if len(logits) == 1 else torch.stack(logits).mean(0)


class BranchedDistiller(Distiller):
    """Base of the online methods that train one branched network: its
    ``network`` (:meth:`branch_count` heads sharing the trunk up to
    :data:`SHARED`), whose head ``deployed_branch`` with the trunk is the
    ``student`` (a view that trains with the network, so validation tracks
    it, and that starts from the Scratch student's weights) and, as a
    standalone copy, the :meth:`export`."""

    deployed_branch: ClassVar[int] = 0  # an index into the heads (-1: the last)
    member: ClassVar[str] = "branch"  # what the method calls a head

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        super().__init__(student, teachers, pixels, make_student, **settings)
        branches = self.branch_count()
        if type(branches) is not int or branches < 2:
            raise ValueError(f"{self.title} needs at least 2 branches, got {branches!r}")
        self.deployed_index = self.deployed_branch % branches
        self.network = branched_student(student, self.make_student, branches, self.deployed_index)
        self.student = Heads(self.network, [self.deployed_index])

    def branch_count(self) -> int:
        """How many heads the network has (from the settings)."""
        raise NotImplementedError

    def export(self) -> Network:
        return self.network.branch(self.deployed_index).to(model_device(self.network))

    def members(self) -> dict[str, nn.Module]:
        return {f"{self.member} {i}": Heads(self.network, [i])
                for i in range(len(self.network.heads)) if i != self.deployed_index}


def distillation_kl(student_logits: torch.Tensor, target_logits: torch.Tensor, temperature: float,
                    detach: bool) -> torch.Tensor:
    """``T^2 * KL(softmax(z_target / T) || softmax(z_student / T))``, batchmean;
    the target carries gradient unless ``detach``."""
    if detach:
        return soft_kl(student_logits, target_logits, temperature)
    target = F.softmax(target_logits.float() / temperature, dim=1)
    return temperature ** 2 * kl_batchmean(student_logits, target, temperature)


def one_loss(branch_logits: Sequence[torch.Tensor], gate: torch.Tensor, labels: torch.Tensor,
             temperature: float, weight: float, detach_target: bool = True
             ) -> dict[str, torch.Tensor]:
    """ONE's terms: ``ce_branches`` (the branches' cross-entropies, summed),
    ``ce_ensemble`` (the gated teacher's) and ``kd`` (``weight`` times the
    summed ``T^2``-scaled KLs to the teacher); ``gate`` holds the (N, m)
    softmax weights."""
    teacher = gated_logits([z.float() for z in branch_logits], gate.float())
    return {"ce_branches": sum(F.cross_entropy(z.float(), labels) for z in branch_logits),
            "ce_ensemble": F.cross_entropy(teacher, labels),
            "kd": weight * sum(distillation_kl(z, teacher, temperature, detach_target)
                               for z in branch_logits)}


@register_distiller
class ONE(BranchedDistiller):
    name = "one"
    title = "ONE"
    family = "online"
    source = "Lan, Zhu and Gong, NeurIPS 2018 (the paper's ref. [110])"
    teachers = 0
    defaults = {"branches": 3, "temperature": 3.0, "ramp_up": True, "detach_target": True}

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        super().__init__(student, teachers, pixels, make_student, **settings)
        branches = self.branch_count()
        self.gate = self.like_student(nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(layer_width(student, SHARED), branches),
            nn.BatchNorm1d(branches), nn.ReLU(), nn.Softmax(dim=1)))

    def branch_count(self) -> int:
        return self.setting("branches")

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        branches = self.network.forward_branches(x)
        logits = [taps["logits"] for taps in branches]
        weight = self.ramp() if self.setting("ramp_up") else 1.0
        return logits[0], one_loss(logits, self.gate(branches[0][SHARED]), y,
                                   self.setting("temperature"), weight, self.setting("detach_target"))

    def ensemble(self) -> nn.Module:
        """ONE-E: the gated sum of every branch's logits."""
        return Heads(self.network, range(len(self.network.heads)), gate=self.gate)
