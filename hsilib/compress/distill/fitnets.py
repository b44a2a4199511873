"""FitNets (Romero, Ballas, Kahou, Chassang, Gatta and Bengio, "FitNets:
hints for thin deep nets", ICLR 2015; the paper's ref. [77]).

A middle layer of the frozen teacher (the *hint*) guides the student's
middle layer (the *guided* layer) through a small trainable regressor ``r``
that maps the narrower guided activation to the hint's shape. Training has
two stages (spec §3.2, decision D5):

1. for ``E1 = round(0.2 E)`` of the ``E`` epochs, the student's layers up to
   the guided one and the regressor learn the hint alone::

       L_HT = beta * MSE(r(v_g), sg(u_h))          (mean over all elements)

   (the paper's ``1/2 ||u_h - r(v_g)||^2`` up to a constant, absorbed in
   ``beta``; the layers after the guided one get no gradient);
2. for the other ``E - E1`` epochs the whole student trains with soft
   targets (:func:`~.soft_targets.soft_target_loss`, ``T = 4``,
   ``a_kd = 0.9``); the regressor is dropped.

Placement (D5): hint = teacher ``conv2`` (100x11x11, post-ReLU), guided =
student ``conv2``; ``r`` = ``Conv2d(c2, 100, 1x1)`` + ReLU: the spatial
sizes agree, so FitNets' own rule ``k = N_g - N_h + 1`` gives 1x1, and the
ReLU matches the post-ReLU hint (a linear ``r`` is punished for negative
outputs the teacher never produces; the spec's test: 2.5 against 0.25).
``hint="fc1"`` regresses ``fc1`` with ``Linear(h, 100)`` + ReLU, the
benchmark paper's literal "fully-connected trainable regressor" [bench];
stage 1 then trains ``fc1`` too.

Hyperparameters: two stages, the convolutional regressor and the middle
layer [paper?]; ``E1 = 0.2 E`` (D1; torchdistill's sample spends 5 of 20
epochs on hints [code]); ``beta = 100``, RepDistiller's ``-b 100`` and
mdistiller's ``FEAT_WEIGHT`` [code] (in stage 1 it only scales a lone loss,
which Adam's update all but ignores); ``T = 4``, ``a_kd = 0.9`` as soft
targets [code].

Switch ``stages=1``: RepDistiller's and mdistiller's one-stage "FitNet",
``CE + beta * MSE(r(v_g), u_h)`` on the whole student from epoch 1 [code]
(their regressor adds batch norm; this one keeps conv + ReLU, so that the
two variants differ only in the schedule). Say which variant was run.

With ``E <= 2`` the hint stage has no epoch (``round(0.4) = 0``). Only a
stage-2 epoch can be kept (:meth:`FitNets.first_kept_epoch`): a stage-1
epoch's classifier is still at its initial weights, and the validation
plateau rule counts from stage 2 too. The teacher's ``conv2`` maps are
computed each step of stage 1 (12,100 floats a pixel: too large to cache),
so a stage-1 step runs two networks and a stage-2 step one; its ``fc1`` and
logits are cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models.cnn2d import CNN2D
from ...models.network import Network
from .base import Distiller, TrainingPixels, register_distiller
from .soft_targets import soft_target_loss

HINTS = ("conv2", "fc1")
STAGES = (1, 2)
HINT_FRACTION = 0.2  # of the epochs, spent on the hint in the two-stage schedule (D1)


def conv2_width(network: Network, method: str) -> int:
    """Channels of a CNN2D's ``conv2`` tap, the maps a 1x1 ``Conv2d`` regressor
    or projector reads (spec §1)."""
    if not isinstance(network, CNN2D):
        raise ValueError(f"{method} maps CNN2D conv2 feature maps with a 1x1 Conv2d; got a "
                         f"{type(network).__name__} (accepted: CNN2D)")
    return network.conv2.out_channels


def hint_regressor(hint: str, student_width: int, teacher_width: int) -> nn.Sequential:
    """``r``: a 1x1 convolution (``conv2``) or a linear layer (``fc1``) to the
    hint's width, then ReLU, the hint layer's non-linearity."""
    layer = (nn.Conv2d(student_width, teacher_width, kernel_size=1) if hint == "conv2"
             else nn.Linear(student_width, teacher_width))
    return nn.Sequential(layer, nn.ReLU())


def hint_loss(regressed: torch.Tensor, hint: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """``hint``: ``beta * MSE(r(v_g), sg(u_h))``, the mean over every element."""
    return {"hint": beta * F.mse_loss(regressed.float(), hint.detach().float())}


@register_distiller
class FitNets(Distiller):
    name = "fitnets"
    title = "FitNets"
    family = "offline"
    source = "Romero et al., 2015 (the paper's ref. [77])"
    teachers = 1
    defaults = {"stages": 2, "hint": "conv2", "beta": 100.0, "temperature": 4.0, "a_kd": 0.9}

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        super().__init__(student, teachers, pixels, make_student, **settings)
        hint, stages = self.setting("hint"), self.setting("stages")
        if hint not in HINTS:
            raise ValueError(f"FitNets: unknown hint {hint!r}; accepted: {', '.join(HINTS)}")
        if stages not in STAGES:
            raise ValueError(f"FitNets: stages must be 1 (RepDistiller) or 2 (the paper's), got {stages!r}")
        teacher = self.teacher_nets[0]
        widths = ((conv2_width(student, self.title), conv2_width(teacher, self.title)) if hint == "conv2"
                  else (student.fc1.out_features, teacher.fc1.out_features))
        self.regressor = self.like_student(hint_regressor(hint, *widths))  # training only: export() is the student

    @property
    def hint_epochs(self) -> int:
        """Epochs of stage 1 (hints alone): ``round(0.2 E)``, none with ``stages=1``."""
        return round(HINT_FRACTION * self.pixels.epochs) if self.setting("stages") == 2 else 0

    def first_kept_epoch(self) -> int:
        """Stage 2's first epoch: a stage-1 epoch's classifier has not trained."""
        return self.hint_epochs + 1

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        taps = self.student.forward_features(x)
        logits = taps["logits"]
        if self.setting("stages") == 2 and self.epoch > self.hint_epochs:
            teacher = self.teacher_taps(0, ("logits",), index)["logits"]
            return logits, soft_target_loss(logits, teacher, y, self.setting("temperature"),
                                            self.setting("a_kd"))
        hint = self.setting("hint")
        terms = hint_loss(self.regressor(taps[hint]), self._teacher_hint(x, index), self.setting("beta"))
        if self.setting("stages") == 1:
            terms = {"ce": F.cross_entropy(logits.float(), y), **terms}
        return logits, terms

    def _teacher_hint(self, x: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        if self.setting("hint") == "fc1":
            return self.teacher_taps(0, ("fc1",), index)["fc1"]
        with torch.no_grad():
            return self.teacher_nets[0].forward_features(x, until="conv2")["conv2"]
