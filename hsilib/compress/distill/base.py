"""What every distillation method shares: the :class:`Distiller` base, the
method registry, batchmean KL, and the cache of a frozen teacher's outputs.

A distiller is one ``nn.Module`` holding everything that trains (the
student, and any projector, regressor, gate or peer) and the frozen
teachers; :func:`hsilib.train.fit` trains it with its :meth:`objective`,
keeps its teachers in eval mode (``frozen``), validates the network it
deploys and calls its epoch hooks (a distiller is a
:class:`~hsilib.train.Callback`). Each method is one module that subclasses
:class:`Distiller`, states its source, its formula and where each
hyperparameter came from, and registers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models.network import Network
from ...registry import Registry
from ...train import Callback, Sampler, Transform, eval_mode

FAMILIES = ("offline", "online", "self")


def kl_batchmean(student_logits: torch.Tensor, target: torch.Tensor, temperature: float = 1.0
                 ) -> torch.Tensor:
    """``KL(target || softmax(student / T))`` summed over classes and
    averaged over the batch (PyTorch's ``reduction="batchmean"``; the default
    ``"mean"`` would divide by the classes too). ``target`` holds probabilities."""
    return F.kl_div(F.log_softmax(student_logits.float() / temperature, dim=1), target.float(),
                    reduction="batchmean")


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
            ) -> torch.Tensor:
    """Hinton's distillation term: ``T^2 * KL(softmax(z_t / T) || softmax(z_s / T))``,
    batchmean; the teacher's logits are constants."""
    target = F.softmax(teacher_logits.detach().float() / temperature, dim=1)
    return temperature ** 2 * kl_batchmean(student_logits, target, temperature)


@dataclass(frozen=True)
class TrainingPixels:
    """What a distiller may use of the data: the input view, the fitting
    pixels and their labels (never validation or test pixels), the classes,
    the seed and the epoch budget."""

    view: Callable[[np.ndarray], torch.Tensor]
    fit_idx: np.ndarray
    fit_y: np.ndarray
    n_classes: int
    seed: int
    epochs: int


class TeacherCache:
    """A frozen teacher's taps for every fitting pixel, computed once (eval
    mode, no gradient, float32) and read by pixel index: an offline method
    without input augmentation need not run its teacher again each step."""

    def __init__(self, teacher: Network, pixels: TrainingPixels, taps: tuple[str, ...],
                 batch: int = 500):
        self.taps = taps
        rows = {int(pixel): row for row, pixel in enumerate(pixels.fit_idx)}
        self.row = rows
        outputs: dict[str, list[torch.Tensor]] = {tap: [] for tap in taps}
        with torch.no_grad(), eval_mode(teacher):
            for start in range(0, len(pixels.fit_idx), batch):
                features = teacher.forward_features(pixels.view(pixels.fit_idx[start:start + batch]))
                for tap in taps:
                    outputs[tap].append(features[tap].float())
        self.values = {tap: torch.cat(chunks) for tap, chunks in outputs.items()}

    def __call__(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor([self.row[int(i)] for i in index])
        return {tap: values[rows.to(values.device)] for tap, values in self.values.items()}


class Distiller(nn.Module, Callback):
    """Base of the distillation methods.

    Class attributes: ``name``, ``title`` (the paper's), ``family``
    (``"offline"``, ``"online"`` or ``"self"``), ``source`` (the method's
    paper), ``teachers`` (how many trained teachers it needs: 0, 1, or at
    least 2), ``forward_passes`` (networks or branches run per step),
    ``defaults`` (its hyperparameters, each documented in the module).

    Parameters
    ----------
    student : the student network, freshly initialised (its seed is the
        Scratch student's, so that the two pair).
    teachers : trained networks, frozen by the caller.
    pixels : the training data it may use.
    make_student : builds another network of the student's architecture
        with new random weights (peers, branches).
    settings : overrides of ``defaults``.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    family: ClassVar[str]
    source: ClassVar[str]
    teachers: ClassVar[int] = 0
    forward_passes: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        super().__init__()
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise ValueError(f"{self.title} has no setting {', '.join(map(repr, unknown))}; its "
                             f"settings: {', '.join(self.defaults) or 'none'}")
        self.settings = {**self.defaults, **settings}
        self.student = student
        self.teacher_nets = nn.ModuleList(teachers)
        self.pixels = pixels
        self.make_student = make_student
        self.epoch = 0
        self._caches: dict[tuple[int, tuple[str, ...]], TeacherCache] = {}

    # --- what fit() uses ---------------------------------------------------

    def objective(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The logits of the deployed network and the named loss terms."""
        raise NotImplementedError

    def deployed(self) -> nn.Module:
        """The network validated during training and deployed after it."""
        return self.student

    def export(self) -> nn.Module:
        """The deployed network as a standalone module (stored and measured)."""
        return self.deployed()

    def ensemble(self) -> nn.Module | None:
        """An online method's ensemble of all its networks, reported beside
        the deployed one; ``None`` for the others."""
        return None

    sampler: Sampler | None = None
    transform: Transform | None = None

    def first_kept_epoch(self) -> int:
        """The first epoch whose weights may be kept (a staged method's
        earlier epochs train only part of the network)."""
        return 1

    def epoch_start(self, epoch: int, model: nn.Module) -> None:
        self.epoch = epoch

    # --- helpers -------------------------------------------------------------

    def setting(self, name: str) -> Any:
        return self.settings[name]

    def frozen(self) -> list[nn.Module]:
        return list(self.teacher_nets)

    def teacher_taps(self, teacher: int, taps: tuple[str, ...], index: np.ndarray
                     ) -> dict[str, torch.Tensor]:
        """Teacher ``teacher``'s ``taps`` for the batch's pixels, from a cache
        filled on first use (where the teacher then is)."""
        key = (teacher, taps)
        if key not in self._caches:
            self._caches[key] = TeacherCache(self.teacher_nets[teacher], self.pixels, taps)
        return self._caches[key](index)

    def ramp(self) -> float:
        """ONE's sigmoid ramp-up of a distillation weight (code only):
        ``exp(-5 (1 - min(epoch, R) / R)^2)`` with ``R = round(0.27 E)``
        (80 of the authors' 300 epochs), 1 once ramped."""
        length = max(1, round(0.27 * self.pixels.epochs))
        progress = min(self.epoch, length) / length
        return float(np.exp(-5.0 * (1.0 - progress) ** 2))


DISTILLERS: Registry[type[Distiller]] = Registry("distillation method")


def register_distiller(cls: type[Distiller]) -> type[Distiller]:
    """Class decorator: add a method to :data:`DISTILLERS` (names are unique)."""
    if cls.family not in FAMILIES:
        raise ValueError(f"{cls.name}: unknown family {cls.family!r}; accepted: {', '.join(FAMILIES)}")
    return DISTILLERS.add(cls)


get_distiller = DISTILLERS.find
