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

import contextlib
from collections.abc import Callable, Iterator
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
                # The class's method, not a step's counting wrapper (counted_runs):
                # the cache is filled once, not each step.
                features = type(teacher).forward_features(
                    teacher, pixels.view(pixels.fit_idx[start:start + batch]))
                for tap in taps:
                    outputs[tap].append(features[tap].float())
        self.values = {tap: torch.cat(chunks) for tap, chunks in outputs.items()}

    def __call__(self, index: np.ndarray) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor([self.row[int(i)] for i in index])
        return {tap: values[rows.to(values.device)] for tap, values in self.values.items()}


@contextlib.contextmanager
def counted_runs(module: nn.Module) -> Iterator[list[int]]:
    """Count, while the block runs, the runs of every :class:`Network` inside
    ``module``: calls of its ``forward_features`` (``forward`` calls it),
    whole or partial (a teacher up to a tap, a shared trunk, one head). The
    count is the yielded list's one item."""
    runs = [0]
    networks = [m for m in module.modules() if isinstance(m, Network)]

    def counting(run: Callable[..., dict[str, torch.Tensor]]):
        def forward_features(*args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
            runs[0] += 1
            return run(*args, **kwargs)
        return forward_features

    for network in networks:  # an instance attribute shadows the class's method
        network.forward_features = counting(network.forward_features)
    try:
        yield runs
    finally:
        for network in networks:
            del network.forward_features


class Distiller(nn.Module, Callback):
    """Base of the distillation methods.

    Class attributes: ``name``, ``title`` (the paper's), ``family``
    (``"offline"``, ``"online"`` or ``"self"``), ``source`` (the method's
    paper), ``teachers`` (how many trained teachers it needs: 0, 1, or at
    least 2), ``defaults`` (its hyperparameters, each documented in the
    module; a tuple is a grid that :class:`~.runs.DistillConfig` chooses one
    value of on the validation pixels, allowed for the settings named in
    ``tunable``, which must leave the deployed network's architecture alone).

    :meth:`step` (the objective, as ``fit`` calls it) measures how many
    networks, or parts of one, a training step runs; ``forward_passes``
    holds the mean per step of each epoch.

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
    defaults: ClassVar[dict[str, Any]] = {}
    tunable: ClassVar[tuple[str, ...]] = ()

    def __init__(self, student: Network, teachers: list[Network], pixels: TrainingPixels,
                 make_student: Callable[[], Network], **settings: Any):
        super().__init__()
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise ValueError(f"{self.title} has no setting {', '.join(map(repr, unknown))}; its "
                             f"settings: {', '.join(self.defaults) or 'none'}")
        self.settings = {**self.defaults, **settings}
        grids = sorted(name for name, value in self.settings.items() if isinstance(value, tuple))
        if grids:
            raise ValueError(f"{self.title}: {', '.join(grids)} is chosen on validation by "
                             "DistillConfig; give the method one value")
        self.student = student
        self.teacher_nets = nn.ModuleList(teachers)
        self.pixels = pixels
        self.make_student = lambda: self.like_student(make_student())
        self.epoch = 0
        self.forward_passes: list[float] = []
        self._runs: list[int] = []
        self._caches: dict[tuple[int, tuple[str, ...]], TeacherCache] = {}

    def like_student(self, module: nn.Module) -> nn.Module:
        """``module`` (a head, projector or peer built here) on the student's
        device and in its floating dtype."""
        weight = next(self.student.parameters())
        return module.to(device=weight.device, dtype=weight.dtype)

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

    def members(self) -> dict[str, nn.Module]:
        """An online method's other peers or branches by name, each scored
        on its own beside the deployed one (spec §3.7-3.10 (e)); none for
        the others."""
        return {}

    sampler: Sampler | None = None
    transform: Transform | None = None

    def first_kept_epoch(self) -> int:
        """The first epoch whose weights may be kept (a staged method's
        earlier epochs train only part of the network)."""
        return 1

    def step(self, x: torch.Tensor, y: torch.Tensor, index: np.ndarray
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:meth:`objective`, counting the network runs it makes (:func:`counted_runs`)."""
        with counted_runs(self) as runs:
            out = self.objective(x, y, index)
        self._runs.append(runs[0])
        return out

    def epoch_start(self, epoch: int, model: nn.Module) -> None:
        self.epoch = epoch
        self._runs = []

    def epoch_end(self, epoch: int, model: nn.Module) -> None:
        if self._runs:  # only steps through step() are counted
            self.forward_passes.append(float(np.mean(self._runs)))

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
        ``exp(-5 (1 - min(e, R) / R)^2)`` with ``R = round(0.27 E)`` (80 of
        the authors' 300 epochs) and ``e = epoch - 1``, since the authors
        count epochs from 0 and ``fit`` from 1: ``e^-5`` in the first epoch,
        1 from epoch ``R + 1`` on."""
        length = max(1, round(0.27 * self.pixels.epochs))
        progress = min(self.epoch - 1, length) / length
        return float(np.exp(-5.0 * (1.0 - progress) ** 2))


DISTILLERS: Registry[type[Distiller]] = Registry("distillation method")


def register_distiller(cls: type[Distiller]) -> type[Distiller]:
    """Class decorator: add a method to :data:`DISTILLERS` (names are unique)."""
    if cls.family not in FAMILIES:
        raise ValueError(f"{cls.name}: unknown family {cls.family!r}; accepted: {', '.join(FAMILIES)}")
    return DISTILLERS.add(cls)


get_distiller = DISTILLERS.find
