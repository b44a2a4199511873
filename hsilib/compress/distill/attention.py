"""Attention transfer, activation-based (Zagoruyko and Komodakis, "Paying
more attention to attention", ICLR 2017; the paper's ref. [104]).

A spatial attention map summarises where a convolutional layer looks: the
channel aggregate of its activations' p-th powers, L2-normalised per sample::

    Q(A) = vec(mean_c |A_c|^p) / ||vec(mean_c |A_c|^p)||_2

(the mean or the sum over channels give the same ``Q``: the normalisation
cancels ``1/c``; ``|A|`` keeps odd ``p`` right). Only spatial maps are
compared, so the channel counts need not agree. The student matches the
teacher's maps at every tap ``j`` besides the hard labels::

    L = CE(y, z_s) + beta * sum_j mean_{n, positions} (Q_s^j - Q_t^j)^2      ("code" form)

The authors' code and every reference implementation (szagoruyko ``at_loss``,
RepDistiller, mdistiller, torchdistill's default) use this squared mean
[code]; its mean over batch and positions is the paper's "beta divided by
the number of elements in the attention map and batch size" [issue #32].
Switch ``form="paper"``: ``beta/2 * sum_j mean_n ||Q_s^j - Q_t^j||_2``, the
paper's unsquared norm averaged over the batch [paper?] (not proportional to
the code form, szagoruyko/attention-transfer#34: re-tune ``beta`` with it;
``torch.linalg.vector_norm`` has a zero gradient at 0 where a bare ``sqrt``
has an infinite one).

Hyperparameters (spec §3.3): ``p = 2`` and ``beta = 1000`` (README
``--beta 1e+3``, RepDistiller ``-b 1000``, mdistiller ``FEAT_WEIGHT 1000``
[code]); taps ``conv1`` (15x15) and ``conv2`` (11x11), post-ReLU, of teacher
and student, the same sizes in both, so nothing is pooled or interpolated;
no KD term (RepDistiller and mdistiller [code]). Switch ``with_kd=True``:
AT+KD, the hard-label term replaced by soft targets
(:func:`~.soft_targets.soft_target_loss`, ``T = 4``, ``a_kd = 0.9``, the
authors' ``cifar.py`` [code]), which the benchmark paper mentions [bench].
The teacher's attention maps (346 floats a pixel) are computed once per
training pixel (:class:`~.base.TeacherCache`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models.network import Network
from .base import Distiller, TeacherCache, register_distiller
from .soft_targets import soft_target_loss

FORMS = ("code", "paper")
TAPS = ("conv1", "conv2")


def attention_map(activation: torch.Tensor, p: float) -> torch.Tensor:
    """``Q(A)``: (N, positions) maps of an (N, C, H, W) activation."""
    energy = activation.float().abs().pow(p).mean(1).flatten(1)
    return F.normalize(energy, dim=1)


def attention_loss(student_maps: Sequence[torch.Tensor], teacher_maps: Sequence[torch.Tensor],
                   beta: float, form: str = "code") -> dict[str, torch.Tensor]:
    """``at``: the weighted attention mismatch summed over the taps' maps
    (``Q`` s, as :func:`attention_map` gives them), in ``form`` ``"code"`` or
    ``"paper"``."""
    if form not in FORMS:
        raise ValueError(f"Attention Transfer: unknown form {form!r}; accepted: {', '.join(FORMS)}")
    pairs = [(s, t.detach()) for s, t in zip(student_maps, teacher_maps, strict=True)]
    if form == "code":
        return {"at": beta * sum((s - t).pow(2).mean() for s, t in pairs)}
    return {"at": beta / 2 * sum(torch.linalg.vector_norm(s - t, dim=1).mean() for s, t in pairs)}


class AttentionTaps(nn.Module):
    """A network seen through the attention maps of its ``taps``: what the
    teacher cache stores instead of the far larger activations."""

    def __init__(self, network: Network, taps: tuple[str, ...], p: float):
        super().__init__()
        self.network, self.taps, self.p = network, taps, p

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.network.forward_features(x, until=self.taps[-1])
        return {tap: attention_map(features[tap], self.p) for tap in self.taps}


@register_distiller
class AttentionTransfer(Distiller):
    name = "attention"
    title = "Attention Transfer"
    family = "offline"
    source = "Zagoruyko and Komodakis, 2017 (the paper's ref. [104])"
    teachers = 1
    defaults = {"p": 2.0, "beta": 1000.0, "form": "code", "with_kd": False, "temperature": 4.0,
                "a_kd": 0.9}

    _attention: TeacherCache | None = None

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
        taps = self.student.forward_features(x)
        logits = taps["logits"]
        if self.setting("with_kd"):
            teacher = self.teacher_taps(0, ("logits",), index)["logits"]
            terms = soft_target_loss(logits, teacher, y, self.setting("temperature"), self.setting("a_kd"))
        else:
            terms = {"ce": F.cross_entropy(logits.float(), y)}
        student_maps = [attention_map(taps[tap], self.setting("p")) for tap in TAPS]
        teacher_maps = [self._teacher_attention(index)[tap] for tap in TAPS]
        return logits, {**terms, **attention_loss(student_maps, teacher_maps, self.setting("beta"),
                                                  self.setting("form"))}

    def _teacher_attention(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        if self._attention is None:  # filled on first use, where the teacher then is
            self._attention = TeacherCache(AttentionTaps(self.teacher_nets[0], TAPS, self.setting("p")),
                                           self.pixels, TAPS)
        return self._attention(index)
