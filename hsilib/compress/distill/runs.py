"""Distillation as an experiment kind: a student of Table 5's width trained
by one method, cached, measured and stored like every other network.

Protocol (the spec's common protocol, decisions D1-D4): Adam at the
baseline's learning rate, batch 100, the Scratch student's epoch budget; the
student starts from the Scratch student's initial weights (same seed, so
the two pair); the epoch kept is the one whose deployed network scores best
on the validation pixels, never the test pixels; the teacher is the stored
CNN2D baseline of the same scene, split and seed, frozen in eval mode
(CA-MKD's further teachers differ only in their initial weights). A setting
given as a tuple of values (Correlation Congruence's ``beta``, by default)
is chosen the same way as the epoch: one student is trained per value, from
the same initial weights and in the same batch order, and the one whose kept
epoch scores best on the validation pixels is kept (the first on ties).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...experiments import Config, Experiment, Outcome, RunContext, register_kind
from ...experiments.data import ExperimentData
from ...metrics import classification_metrics
from ...models import get_model
from ...models.network import Network
from ... import measure
from ...train import History, fit, predict_scores, shuffled_batches
from ..methods import Method, register_method
from ..prune.widths import RATIOS, config_widths, target_widths
from .base import DISTILLERS, Distiller, TrainingPixels, get_distiller

# What must agree between a teacher and the data its student learns from.
SAME_DATA = ("scene", "split", "seed", "defects", "val_fraction", "components", "patch_size",
             "pca_fit", "data_source", "model")


def _objective(distiller: Distiller, x: torch.Tensor, y: torch.Tensor, index: np.ndarray):
    return distiller.step(x, y, index)


@register_kind
@dataclass(frozen=True)
class DistillConfig(Experiment):
    """One distillation experiment (kind ``distill``).

    Parameters
    ----------
    base : the teacher, the trained CNN2D baseline; its scene, split, seed,
        preprocessing and training recipe are the student's too.
    method : a registered method (``hsilib methods``).
    student : the student's size, a nominal ratio of Table 5 (``"90%"``:
        15/30/30) or explicit widths.
    teachers : the teacher networks; ``None``: ``base`` (and, for a method
        that needs several, ``base`` with other initial weights).
    epochs : training epochs; ``None``: the baseline's (the Scratch
        student's budget).
    settings : the method's hyperparameters that differ from its defaults;
        a tuple of values, for a setting the method lists in ``tunable``, is
        chosen on the validation pixels.
    start : a stored network of the student's architecture (a pruned one)
        whose weights the student starts from instead of random ones; the
        record is then compared with it.
    """

    kind: ClassVar[str] = "distill"
    base: Config
    method: str = "soft_targets"
    student: str | tuple[int, ...] = "90%"
    teachers: tuple[Config, ...] | None = None
    epochs: int | None = None
    settings: tuple[tuple[str, Any], ...] = ()
    start: Experiment | None = None

    def __post_init__(self) -> None:
        cls = get_distiller(self.method)
        # A list (papermill, JSON) is a grid too; a tuple keeps the config hashable.
        settings = {name: tuple(value) if isinstance(value, list) else value
                    for name, value in dict(self.settings).items()}
        if self.teachers is not None and "teachers" in cls.defaults:
            settings.setdefault("teachers", len(self.teachers))  # the teachers given, not the default
        object.__setattr__(self, "settings", tuple(sorted(settings.items())))
        unknown = sorted(set(settings) - set(cls.defaults))
        if unknown:
            raise ValueError(f"{cls.title} has no setting {', '.join(map(repr, unknown))}; its settings: "
                             f"{', '.join(cls.defaults) or 'none'}")
        grids = sorted(name for name, value in settings.items()
                       if isinstance(value, tuple) and name not in cls.tunable)
        if grids:
            raise ValueError(f"{cls.title} cannot choose {', '.join(grids)} on validation; it can "
                             f"choose: {', '.join(cls.tunable) or 'none'}")
        if self.teachers is not None and settings.get("teachers", len(self.teachers)) != len(self.teachers):
            raise ValueError(f"{cls.title}: the setting teachers={settings['teachers']} contradicts the "
                             f"{len(self.teachers)} teachers given")
        spec = get_model(self.base.model)
        if not spec.prunable:
            raise ValueError(f"model {self.base.model!r} takes no widths: a student needs a network "
                             "with prunable layers (cnn2d)")
        if isinstance(self.student, str) and self.student not in RATIOS:
            raise ValueError(f"unknown student size {self.student!r}; Table 5's: {', '.join(RATIOS)} "
                             "(or explicit widths)")
        if not isinstance(self.student, str):
            object.__setattr__(self, "student", spec.check_widths(self.student))
            teacher = config_widths(self.base.model, self.base.widths)
            if cls.teachers and any(s > t for s, t in zip(self.student, teacher)):
                raise ValueError(f"{cls.title} compresses a teacher into a student: the student "
                                 f"{self.student} must not be wider than its teacher {teacher}")
        if self.epochs is not None and (type(self.epochs) is not int or self.epochs < 1):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.teachers is not None:
            object.__setattr__(self, "teachers", tuple(self.teachers))
        self._check_teachers(cls)
        if self.start is not None and getattr(self.start, "ratio", self.student) != self.student:
            raise ValueError(f"the student ({self.student}) cannot start from a network pruned to "
                             f"{self.start.ratio}: their widths differ")

    def _check_teachers(self, cls: type[Distiller]) -> None:
        teachers = self.teacher_configs()
        if cls.teachers == 0 and self.teachers:
            raise ValueError(f"{cls.title} is {cls.family} distillation: it needs no teacher, got "
                             f"{len(self.teachers)}")
        if cls.teachers and not teachers:
            raise ValueError(f"{cls.title} distils from a trained teacher; none was given")
        if cls.teachers >= 2 and len(teachers) < 2:
            raise ValueError(f"{cls.title} weighs several teachers against each other: it needs at "
                             f"least 2, got {len(teachers)}")
        for teacher in teachers:
            differ = [f for f in SAME_DATA if getattr(teacher, f) != getattr(self.base, f)]
            if differ:
                raise ValueError(f"teacher {teacher.label()} differs from the student's data in "
                                 f"{', '.join(differ)}: a teacher must be trained on the same scene, "
                                 "split, seed and preprocessing")

    def teacher_configs(self) -> tuple[Config, ...]:
        cls = get_distiller(self.method)
        if self.teachers is not None:
            return self.teachers
        count = dict(self.settings).get("teachers", cls.defaults.get("teachers", cls.teachers))
        if cls.teachers == 0:
            return ()
        return (self.base, *[dataclasses.replace(self.base, init_seed=self.base.weight_seed + k)
                             for k in range(1, count)])

    def dependencies(self) -> tuple[Experiment, ...]:
        # The base too: the uncompressed network a student is compared with.
        start = () if self.start is None else (self.start,)
        return tuple(dict.fromkeys((self.base, *self.teacher_configs(), *start)))

    def previous(self) -> Experiment:
        return self.base if self.start is None else self.start

    def key_material(self) -> dict[str, Any]:
        cls = get_distiller(self.method)
        return {"base": self.base.key(), "method": self.method,
                "student": self.student if isinstance(self.student, str) else list(self.student),
                "teachers": [t.key() for t in self.teacher_configs()],
                "epochs": self.training_epochs(),
                "settings": {**cls.defaults, **dict(self.settings)},
                **({} if self.start is None else {"start": self.start.key()})}

    def label(self) -> str:
        size = self.student if isinstance(self.student, str) else "/".join(map(str, self.student))
        start = "" if self.start is None else " from pruned"
        return f"{self.base.label()} {self.method} {size}{start}"

    def training_epochs(self) -> int:
        return self.base.epochs if self.epochs is None else self.epochs

    def candidates(self) -> list[dict[str, Any]]:
        """Every combination of the settings chosen on validation (those
        whose value is a tuple); one empty choice when there are none."""
        settings = {**get_distiller(self.method).defaults, **dict(self.settings)}
        grid = {name: value for name, value in settings.items() if isinstance(value, tuple)}
        return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]

    def student_widths(self, data: ExperimentData) -> tuple[int, ...]:
        if not isinstance(self.student, str):
            return self.student
        return tuple(target_widths(self.base.network(data), self.student).values())

    def _distiller(self, data: ExperimentData, teachers: list[Network], view, choice: dict[str, Any],
                   start: dict | None = None) -> Distiller:
        widths = self.student_widths(data)

        def make_student() -> Network:
            return get_model(self.base.model).make(data.features.shape[2], data.n_classes,
                                                   self.base.patch_size, widths)

        torch.manual_seed(self.base.weight_seed)  # the Scratch student's initial weights
        student = make_student()
        if start is not None:
            student.load_state_dict(start)
        pixels = TrainingPixels(view, data.fit_idx, data.fit_y, data.n_classes, self.base.weight_seed,
                                self.training_epochs())
        return get_distiller(self.method)(student, teachers, pixels, make_student,
                                          **{**dict(self.settings), **choice})

    def network(self, data: ExperimentData) -> nn.Module:
        teachers = [t.network(data) for t in self.teacher_configs()]
        # Tunable settings leave the architecture alone: any candidate builds it.
        return self._distiller(data, teachers, None, self.candidates()[0]).export()

    def _train(self, context: RunContext, teachers: list[Network], choice: dict[str, Any],
               start: dict | None) -> tuple[Distiller, History]:
        config, data, view = self.base, context.data, context.view()
        distiller = self._distiller(data, teachers, view, choice, start).to(context.device)
        history = fit(distiller, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                      epochs=self.training_epochs(), lr=config.lr, batch_size=config.batch_size,
                      seed=config.weight_seed, precision=config.precision, progress=context.progress,
                      objective=_objective, frozen=distiller.frozen(), deployed=distiller.deployed(),
                      callbacks=[distiller], sampler=distiller.sampler or shuffled_batches,
                      transform=distiller.transform, keep_from=distiller.first_kept_epoch())
        return distiller, history

    def execute(self, context: RunContext) -> Outcome:
        start = time.perf_counter()
        config, data, view = self.base, context.data, context.view()
        teachers = [context.trained(t)[0].to(context.device) for t in self.teacher_configs()]
        start_state = None if self.start is None else context.trained(self.start)[0].state_dict()
        candidates = self.candidates()
        runs = [self._train(context, teachers, choice, start_state) for choice in candidates]
        val_oa = [history.val_oa[history.best_epoch - 1] for _, history in runs]
        best = val_oa.index(max(val_oa))  # the first best on ties
        distiller, history = runs[best]
        train_s = time.perf_counter() - start
        network = distiller.export()
        scores = predict_scores(network, view, data.test_idx, precision=config.precision)
        ensemble = distiller.ensemble()
        trainable = sum(p.numel() for p in distiller.parameters() if p.requires_grad)
        cls = type(distiller)

        def test_metrics(model: nn.Module) -> dict:
            return classification_metrics(predict_scores(model, view, data.test_idx,
                                                         precision=config.precision), data.test_y)

        return Outcome(scores, network, {
            "method": self.method, "method_title": cls.title, "family": cls.family,
            "student": self.student if isinstance(self.student, str) else list(self.student),
            "widths": list(self.student_widths(data)), "history": dataclasses.asdict(history),
            "teachers": [t.key() for t in self.teacher_configs()],
            "settings": distiller.settings,
            # Settings chosen on validation: each candidate's validation OA at its kept epoch.
            "selection": None if len(runs) == 1 else {
                "chosen": candidates[best],
                "tried": [{"settings": c, "val_oa": v} for c, v in zip(candidates, val_oa)]},
            "forward_passes": distiller.forward_passes,
            "training_params": trainable,
            "teacher_params": sum(p.numel() for t in teachers for p in t.parameters()),
            "extra_training_params": trainable - sum(p.numel() for p in network.parameters()
                                                     if p.requires_grad),
            "ensemble": None if ensemble is None else {
                "metrics": test_metrics(ensemble),
                "params": sum(measure.parameters_per_layer(ensemble).values())},
            "members": {name: test_metrics(member) for name, member in distiller.members().items()},
            "compress_s": train_s}, training=[history])


def distillation_grid(bases: list[Config], methods: list[str], students: list[str],
                      **settings) -> list[DistillConfig]:
    """Every base distilled by every method into every student size."""
    return [DistillConfig(base, method, student, **settings)
            for base in bases for method in methods for student in students]


def register_methods() -> None:
    """List every registered distiller among the compression methods."""
    for cls in DISTILLERS.values():
        if cls.name not in _registered:
            register_method(Method(cls.name, cls.title, f"distillation ({cls.family})", "distill",
                                   cls.source))
            _registered.add(cls.name)


_registered: set[str] = set()
