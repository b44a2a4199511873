"""CA-MKD, confidence-aware multi-teacher knowledge distillation (Zhang,
Chen and Wang, ICASSP 2022; the paper's ref. [105]).

``K >= 2`` frozen teachers. Each teacher's prediction is weighted, per
sample, by how well it fits the label (a low cross-entropy earns a high
weight), and the student distils the weighted mixture; the student's
intermediate feature, projected into each teacher's feature space, is
pulled towards that teacher's feature, weighted by how well the teacher's
own classifier, applied to the projection, fits the label. For sample ``n``
and teacher ``k``::

    w[k]     = (1 - softmax_k(ce[k])) / (K - 1)          (sum_k w[k] = 1; needs K >= 2)
    L_KD     = 1/(N K) sum_{n,k} w_kd[n,k] T^2 KL(softmax(z_t^k/T) || softmax(z_s/T))
                   with ce = CE(y, z_t^k)
    L_inter  = 1/(N K) sum_{n,k} w_inter[n,k] mean_elements((E_k(f_s) - sg(f_t^k))^2)
                   with ce = CE(y, Cls_k(E_k(f_s)))
    L        = a_ce CE(y, z_s) + a_kd L_KD + beta L_inter

The ``1/(N K)`` is the code's normalisation (``/(bsz * num_teacher)`` in
``loops.py`` and ``CAMKD.py`` [code]); the KL is per sample, summed over
classes.

Placement and hyperparameters (spec §3.6, decision D8): K = 3 teachers of
the teacher's architecture, the baseline with the next initial-weight seeds
(the repository's ``--teacher_num 3``, three resnet32x4 trials [code]; the
setting ``teachers`` tells :class:`~.runs.DistillConfig` how many to
build, and is the count of the teachers given when they are given). Intermediate feature: ``conv2`` of student and teachers (the code's
last conv map ``feat[-2]`` [code]); projector ``E_k`` =
``Conv2d(c2, 100, 1x1)`` + BN + ReLU, the code's ``Embed`` [code], training
only; ``Cls_k`` = teacher k's pool -> flatten -> fc1 -> ReLU -> fc2, frozen
(the code's ``distill_seq()[-1]``, pool and classifier [code]).
``(a_ce, a_kd, beta) = (1, 1, 50)`` and ``T = 4`` (``scripts/run.sh``:
``-r 1 -a 1 -b 50``, ``--kd_T`` 4 [code]). As in the code, epoch 1 has no
intermediate term (``loops.py:304`` [code]).

Deviation (D10): the weights are computed from detached losses; the code
computes ``w_inter`` from the projector's output without ``.detach()``, so
that the projector can lower its loss by shifting its own weight between
teachers (``detach_weights=False`` restores it). The teachers' logits are
cached; their ``conv2`` maps (12,100 floats a pixel) are computed each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models.network import Network
from .base import Distiller, TrainingPixels, register_distiller
from .fitnets import conv2_width


def confidence_weights(losses: torch.Tensor) -> torch.Tensor:
    """``(1 - softmax_k(losses)) / (K - 1)`` of (N, K) per-teacher losses:
    each row sums to 1, the best-fitting teacher weighs most."""
    teachers = losses.shape[1]
    if teachers < 2:
        raise ValueError(f"CA-MKD weighs teachers against each other, (1 - softmax) / (K - 1): it "
                         f"needs K >= 2 teachers, got {teachers}")
    return (1 - F.softmax(losses, dim=1)) / (teachers - 1)


def per_sample_ce(logits: Sequence[torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """(N, K): each of the K logits' cross-entropy, per sample."""
    return torch.stack([F.cross_entropy(z.float(), labels, reduction="none") for z in logits], dim=1)


def camkd_loss(student_logits: torch.Tensor, teacher_logits: Sequence[torch.Tensor], labels: torch.Tensor,
               temperature: float, a_ce: float, a_kd: float, beta: float,
               projections: Sequence[torch.Tensor] | None = None,
               teacher_features: Sequence[torch.Tensor] | None = None,
               projection_logits: Sequence[torch.Tensor] | None = None,
               detach_weights: bool = True) -> dict[str, torch.Tensor]:
    """The weighted terms ``ce``, ``kd`` and, given the projections ``E_k(f_s)``,
    the teachers' features ``f_t^k`` and ``Cls_k(E_k(f_s))``, ``inter``."""
    w_kd = confidence_weights(per_sample_ce([z.detach() for z in teacher_logits], labels))
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    kl = torch.stack([F.kl_div(log_student, F.softmax(z.detach().float() / temperature, dim=1),
                               reduction="none").sum(1) for z in teacher_logits], dim=1)
    terms = {"ce": a_ce * F.cross_entropy(student_logits.float(), labels),
             "kd": a_kd * (w_kd * temperature ** 2 * kl).mean()}  # mean over (N, K): 1/(N K)
    if projections is None:
        return terms
    fit = per_sample_ce(projection_logits, labels)
    w_inter = confidence_weights(fit.detach() if detach_weights else fit)
    mse = torch.stack([(h.float() - f.detach().float()).pow(2).flatten(1).mean(1)
                       for h, f in zip(projections, teacher_features, strict=True)], dim=1)
    return {**terms, "inter": beta * (w_inter * mse).mean()}


def projector(student_width: int, teacher_width: int) -> nn.Sequential:
    """``E_k``: the code's ``Embed``, a 1x1 convolution, batch norm and ReLU."""
    return nn.Sequential(nn.Conv2d(student_width, teacher_width, kernel_size=1),
                         nn.BatchNorm2d(teacher_width), nn.ReLU())


@register_distiller
class CAMKD(Distiller):
    name = "camkd"
    title = "CA-MKD"
    family = "offline"
    source = "Zhang, Chen and Wang, 2022 (the paper's ref. [105])"
    teachers = 2  # at least; the setting "teachers" is how many DistillConfig builds
    defaults = {"teachers": 3, "temperature": 4.0, "a_ce": 1.0, "a_kd": 1.0, "beta": 50.0,
                "detach_weights": True}

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        if len(teachers) < 2:
            raise ValueError(f"CA-MKD weighs several teachers against each other: it needs at least 2, "
                             f"got {len(teachers)}")
        super().__init__(student, teachers, pixels, make_student, **settings)
        width = conv2_width(student, self.title)
        self.projectors = self.like_student(
            nn.ModuleList(projector(width, conv2_width(t, self.title)) for t in teachers))

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        taps = self.student.forward_features(x)
        logits = taps["logits"]
        teacher_logits = [self.teacher_taps(k, ("logits",), index)["logits"]
                          for k in range(len(self.teacher_nets))]
        settings = {name: self.setting(name) for name in ("temperature", "a_ce", "a_kd", "beta")}
        if self.epoch <= 1:  # the code's first epoch: no intermediate term
            return logits, camkd_loss(logits, teacher_logits, y, **settings)
        with torch.no_grad():
            features = [t.forward_features(x, until="conv2")["conv2"] for t in self.teacher_nets]
        projections = [e(taps["conv2"]) for e in self.projectors]
        # Gradients flow through the frozen teacher heads into the projectors.
        heads = [t.forward_features(h, after="conv2")["logits"]
                 for t, h in zip(self.teacher_nets, projections, strict=True)]
        return logits, camkd_loss(logits, teacher_logits, y, **settings, projections=projections,
                                  teacher_features=features, projection_logits=heads,
                                  detach_weights=self.setting("detach_weights"))
