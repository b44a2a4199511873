"""Combined compression, the paper's future work: pipelines of the book's
experiment kinds, each stage its own cached experiment.

A pipeline is a chain of configs, each wrapping the one before
(``QuantConfig(PruneConfig(base))``), so the runner stores every stage,
measures it like any network, records its agreement with the stage before
and reuses a stage another chapter already ran (the pruning chapter's
one-shot L1 network, the distillation chapter's student).

* ``prune_quantize``: prune, fine-tune, quantize;
* ``distill_quantize``: distil a student, quantize it;
* ``prune_distill_quantize``: prune, distil with the pruned network as the
  student's starting weights, quantize.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from ..experiments import Config, Experiment
from ..registry import Registry
from .distill import DistillConfig
from .prune.strategies import PruneConfig
from .quantization import QuantConfig


@dataclass(frozen=True)
class PipelineSettings:
    """The stages' settings, shared by every pipeline.

    ratio : Table 5's size of the pruned network and of the student.
    criterion, strategy, finetune_epochs : the pruning stage (``PruneConfig``).
    method : the distillation stage's method (``DistillConfig``).
    mode : the quantization stage's mode; ``quantization``: its other
        settings (``QuantConfig``'s keywords).
    """

    ratio: str = "90%"
    criterion: str = "l1"
    strategy: str = "I"
    finetune_epochs: int = 10
    method: str = "soft_targets"
    mode: str = "static"
    quantization: tuple[tuple[str, object], ...] = ()

    def pruned(self, base: Config) -> PruneConfig:
        return PruneConfig(base, self.criterion, self.ratio, self.strategy,
                           finetune_epochs=self.finetune_epochs)

    def distilled(self, base: Config, start: Experiment | None = None) -> DistillConfig:
        return DistillConfig(base, self.method, self.ratio, start=start)

    def quantized(self, network: Experiment) -> QuantConfig:
        return QuantConfig(network, self.mode, **dict(self.quantization))


@dataclass(frozen=True)
class Pipeline:
    name: str
    title: str
    build: Callable[[PipelineSettings, Config], Experiment]


PIPELINES: Registry[Pipeline] = Registry("pipeline", items=(
    Pipeline("prune_quantize", "prune → fine-tune → quantize",
             lambda s, base: s.quantized(s.pruned(base))),
    Pipeline("distill_quantize", "distil → quantize",
             lambda s, base: s.quantized(s.distilled(base))),
    Pipeline("prune_distill_quantize", "prune → distil from the pruned network → quantize",
             lambda s, base: s.quantized(s.distilled(base, start=s.pruned(base)))),
))


get_pipeline = PIPELINES.find


def pipeline_grid(bases: list[Config], names: list[str], settings: PipelineSettings | None = None,
                  **changes) -> list[Experiment]:
    """The final config of every pipeline of ``names`` from every base;
    ``changes`` replace fields of ``settings`` (``ratio="98%"``)."""
    settings = dataclasses.replace(settings or PipelineSettings(), **changes)
    pipelines = [get_pipeline(name) for name in names]
    return [p.build(settings, base) for base in bases for p in pipelines]



def pipeline_stages(experiment: Experiment) -> list[Experiment]:
    """The configs a network goes through, from the one trained from
    scratch to ``experiment`` itself (each one's ``previous()``)."""
    chain = [experiment]
    while chain[0].previous() is not None:
        chain.insert(0, chain[0].previous())
    return chain
