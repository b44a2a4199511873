"""Correlation congruence, CCKD (Peng, Jin, Liu, Li, Wu, Liu, Zhou and Zhang,
"Correlation congruence for knowledge distillation", ICCV 2019; the paper's
ref. [71]).

Besides each sample's output (instance congruence, here soft targets), the
student reproduces the correlations *between* the samples of a batch: the
n x n kernel matrices of the teacher's and the student's embeddings should
agree, so their widths need not. The kernel is a Gaussian RBF expanded to
order ``P`` in the dot product, exact in the limit for unit-norm features
(``||f_i - f_j||^2 = 2 - 2 f_i.f_j``)::

    k(f_i, f_j) = sum_{p=0..P} exp(-2 gamma) (2 gamma)^p / p! * (f_i . f_j)^p
    L_CC        = ||Psi(F_s) - Psi(F_t)||_F^2 / n^2          Psi(F) = [k(f_i, f_j)]_ij
    L           = (1 - a_kd) CE(y, z_s) + a_kd T^2 KL(softmax(z_t/T) || softmax(z_s/T)) + beta L_CC

Default form (spec §3.4, decision D7): AberHu/Knowledge-Distillation-Zoo
``kd_losses/cc.py`` [code]: ``F.normalize``-d features, ``gamma = 0.4``,
``P = 2``, ``F.mse_loss`` of the kernels (the squared Frobenius norm over
``n^2``); features = ``fc1`` of teacher (100-d) and student (``h``-d),
post-ReLU, with no embedding layer (a trainable teacher-side embedding, as
in torchdistill and RepDistiller, can collapse with the student's and make
``L_CC`` trivially small). ``T = 4`` and ``a_kd = 0.9`` as soft targets
[code], so that CC is KD + CC. ``beta`` is chosen on the validation pixels
from {0.1, 1, 10} (D7: the paper's ``beta`` was not retrievable [paper?]):
:class:`~.runs.DistillConfig` trains one student per value and keeps the
best (a single value fixes it). Measured on real Indian Pines (disjoint
split, seed 0, at most 20 epochs): the grid chose ``beta = 10`` for the 90%
and the 98% student, each time by one validation pixel (0.18 points) over
``beta = 1``; even then the CC term at the kept epoch was 3-5% of the KD
term (0.010 against 0.30, 0.045 against 0.96), so CC stays a small addition
to soft targets. The grid triples the method's training time. Plain shuffled batches of 100 (9-16 classes already give many same-class
pairs), not the paper's class-uniform samplers [paper?].

The three reference implementations compute three losses (on the spec's
test vectors: 0.0473 here). Switches: ``form="unsquared"`` is torchdistill's
``torch.dist(K_s, K_t) / n^2`` [code] (0.0725); with ``normalize=False`` too,
torchdistill as coded, on raw features (0.1672; the expansion then grows
without bound). Not provided: the exact RBF (0.0519), and RepDistiller's
``mean((delta[:-1] * delta[1:]).sum(1))`` on 128-d embeddings (0.5000; the
simplified version the authors mailed, RepDistiller#15 [issue]). The
teacher's ``fc1`` and logits are cached; the kernels are built per batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from .base import Distiller, register_distiller
from .soft_targets import soft_target_loss

FORMS = ("squared", "unsquared")


def taylor_rbf_kernel(features: torch.Tensor, gamma: float, order: int) -> torch.Tensor:
    """``Psi(F)``: the (n, n) order-``order`` Taylor expansion of
    ``exp(-gamma ||f_i - f_j||^2)`` in ``f_i . f_j``."""
    dot = features @ features.T
    return sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * dot ** p
               for p in range(order + 1))


def correlation_loss(student_features: torch.Tensor, teacher_features: torch.Tensor, beta: float,
                     gamma: float = 0.4, order: int = 2, form: str = "squared", normalize: bool = True
                     ) -> dict[str, torch.Tensor]:
    """``cc``: ``beta`` times the kernel matrices' Frobenius distance, squared
    (``form="squared"``) or not, over ``n^2``; features L2-normalised unless
    ``normalize`` is false."""
    if form not in FORMS:
        raise ValueError(f"Correlation Congruence: unknown form {form!r}; accepted: {', '.join(FORMS)}")
    student, teacher = student_features.float(), teacher_features.detach().float()
    if normalize:
        student, teacher = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
    difference = taylor_rbf_kernel(student, gamma, order) - taylor_rbf_kernel(teacher, gamma, order)
    distance = difference.pow(2).sum() if form == "squared" else torch.linalg.vector_norm(difference)
    return {"cc": beta * distance / len(student) ** 2}


@register_distiller
class CorrelationCongruence(Distiller):
    name = "correlation"
    title = "Correlation Congruence"
    family = "offline"
    source = "Peng et al., 2019 (the paper's ref. [71])"
    teachers = 1
    defaults = {"beta": (0.1, 1.0, 10.0), "gamma": 0.4, "order": 2, "form": "squared", "normalize": True,
                "temperature": 4.0, "a_kd": 0.9}
    tunable = ("beta",)

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        taps = self.student.forward_features(x)
        logits = taps["logits"]
        teacher = self.teacher_taps(0, ("fc1", "logits"), index)
        terms = soft_target_loss(logits, teacher["logits"], y, self.setting("temperature"),
                                 self.setting("a_kd"))
        return logits, {**terms, **correlation_loss(
            taps["fc1"], teacher["fc1"], self.setting("beta"), self.setting("gamma"),
            self.setting("order"), self.setting("form"), self.setting("normalize"))}
