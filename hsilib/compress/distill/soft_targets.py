"""Soft targets (Hinton, Vinyals and Dean, "Distilling the knowledge in a
neural network", 2015; the paper's ref. [39]).

The frozen teacher's class probabilities, softened by a temperature ``T``,
carry how alike the wrong classes look; the student matches them besides the
hard labels::

    L = (1 - a_kd) * CE(y, z_s) + a_kd * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

with the KL summed over classes and averaged over the batch, and ``T^2``
keeping the gradients' size as ``T`` changes (Hinton et al.).

Hyperparameters: ``T = 4`` and ``a_kd = 0.9``, the defaults of RepDistiller
(``--kd_T 4 -r 0.1 -a 0.9``), mdistiller and szagoruyko/attention-transfer
(read in their code); the benchmark paper gives none. The teacher's logits
are computed once per training pixel (:class:`~.base.TeacherCache`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .base import Distiller, register_distiller, soft_kl


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                     temperature: float, a_kd: float) -> dict[str, torch.Tensor]:
    """The two weighted terms: ``ce`` and ``kd``."""
    return {"ce": (1 - a_kd) * F.cross_entropy(student_logits.float(), labels),
            "kd": a_kd * soft_kl(student_logits, teacher_logits, temperature)}


@register_distiller
class SoftTargets(Distiller):
    name = "soft_targets"
    title = "Soft targets"
    family = "offline"
    source = "Hinton et al., 2015 (the paper's ref. [39])"
    teachers = 1
    defaults = {"temperature": 4.0, "a_kd": 0.9}

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        logits = self.student(x)
        teacher = self.teacher_taps(0, ("logits",), index)["logits"]
        return logits, soft_target_loss(logits, teacher, y, self.setting("temperature"),
                                        self.setting("a_kd"))
