"""Pruning as experiments: the three fine-tuning strategies of the paper's
Fig. 4 (Section 3.2.1) for every criterion, and the sparsity training that
Network Slimming starts from.

* **I, one-shot**: every layer pruned to its target at once, then fine-tuned
  for ``E`` epochs.
* **II, iterative**: one layer at a time, bottom-up (conv1, conv2, fc1), each
  followed by ``E`` epochs of fine-tuning (``3E`` in all for CNN2D).
* **III, multi-pass**: ``passes`` rounds over every layer, each to a
  narrower width on a geometric schedule ending at the target (for 50
  filters to 15 in 3 passes: 33, 22, 15), each followed by ``E`` epochs.

Each step's selection is made on the current network. Fine-tuning is Adam at
the base network's learning rate, the best validation epoch kept. Criteria
add their own: ThiNet samples training inputs; Slimming starts from
sparsity-trained networks (:class:`SparsityConfig`, one per penalty of the
sweep; the penalty whose network, pruned to the target, scores best on
validation is used), keeps training under the penalty (and the weight decay
on gated layers) during intermediate fine-tunes and folds its gates at the
end; SFP's steps are soft-pruning phases that end in hard removal (no
fine-tuning after it).

The *Scratch* baseline is the same narrow architecture trained from random
initialisation: a plain :class:`~hsilib.experiments.Config` with ``widths``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ...experiments import Config, Experiment, Outcome, RunContext, register_kind
from ...models import MODELS, get_model
from ...models.network import Network
from ...train import History, autocast, fit, predict_scores
from ..methods import Method, register_method
from . import select
from .criteria import CRITERIA, get_criterion
from .criteria.sfp import SoftPruning
from .criteria.slimming import SparsityPenalty
from .criteria.thinet import DRAWS, SAMPLES, TrainingInputs
from .gates import add_gates, fold_gates, gated
from .graph import prunable_layers, width
from .surgery import apply
from .widths import NOMINAL_KEEP, RATIOS, config_widths, kept_width, pass_widths, target_widths

STRATEGIES = ("I", "II", "III")
STRATEGY_TITLES = {"I": "one-shot", "II": "iterative", "III": "multi-pass"}
PENALTIES = (1e-5, 1e-4, 1e-3)  # Slimming's sweep: the authors' 1e-4 and a decade either side
GATE_WEIGHT_DECAY = 1e-4  # on gated layers' weights, so a gate cannot shrink for free
FOLD_EXAMPLES = 256  # training inputs on which soft pruning reads its constants


def schedule(strategy: str, original: dict[str, int], target: dict[str, int], passes: int
             ) -> list[dict[str, int]]:
    """The widths each step prunes to: one step (I), one per layer (II), or
    ``passes`` geometric steps over every layer (III)."""
    if strategy == "I":
        return [dict(target)]
    if strategy == "II":
        return [{name: width} for name, width in target.items()]
    if strategy == "III":
        return [pass_widths(original, target, passes, step) for step in range(1, passes + 1)]
    raise ValueError(f"unknown strategy {strategy!r}; accepted: {', '.join(STRATEGIES)}")


def _check_prunable(config: Config) -> None:
    spec = get_model(config.network_config().model)
    if not spec.prunable:
        raise ValueError(f"model {spec.name!r} has no prunable layers; prunable models: "
                         f"{', '.join(n for n, s in MODELS.items() if s.prunable)}")


# --------------------------------------------------------------------------
# Sparsity training (Network Slimming's starting point)
# --------------------------------------------------------------------------

@register_kind
@dataclass(frozen=True)
class SparsityConfig(Experiment):
    """A network trained from scratch with an L1 penalty on its batch-norm
    scales and on gates of its prunable layers without batch norm (kind
    ``sparsity``; Liu et al. 2017's sparsity training), with its base's
    recipe and epochs."""

    kind: ClassVar[str] = "sparsity"
    base: Config
    penalty: float = 1e-4

    def __post_init__(self) -> None:
        _check_prunable(self.base)
        if type(self.penalty) is not float or not self.penalty >= 0:
            raise ValueError(f"penalty must be a float >= 0, got {self.penalty!r}")

    def key_material(self) -> dict[str, Any]:
        return {"base": self.base.key(), "penalty": self.penalty}

    def label(self) -> str:
        return f"{self.base.label()} sparsity {self.penalty:g}"

    def network(self, data) -> Network:
        model = self.base.network(data)
        add_gates(model)
        return model

    def execute(self, context: RunContext) -> Outcome:
        config, data, view = self.base, context.data, context.view()
        torch.manual_seed(config.weight_seed)
        model = self.network(data)
        model = model.to(context.device, memory_format=model.memory_format)
        history = fit(model, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                      epochs=config.epochs, batch_size=config.batch_size, seed=config.weight_seed,
                      precision=config.precision, progress=context.progress,
                      **sparsity_training(self.penalty, config.lr))
        scores = predict_scores(model, view, data.test_idx, precision=config.precision)
        return Outcome(scores, model, {"history": dataclasses.asdict(history)}, training=[history])


def sparsity_training(penalty: float, lr: float) -> dict[str, Any]:
    """``fit``'s arguments for training under Slimming's penalty (sparsity
    training and the fine-tunes between strategy II's and III's steps):
    the penalty's subgradient, and Adam at ``lr`` with weight decay on the
    weights of gated layers only."""
    def build(model: torch.nn.Module) -> torch.optim.Optimizer:
        decayed = [m.weight for m in model.modules() if gated(m)]
        ids = {id(p) for p in decayed}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
        return torch.optim.Adam([{"params": rest}, {"params": decayed, "weight_decay": GATE_WEIGHT_DECAY}],
                                lr=lr)
    return {"optimizer": build, "callbacks": [SparsityPenalty(penalty)]}


# --------------------------------------------------------------------------
# Pruning runs
# --------------------------------------------------------------------------

@register_kind
@dataclass(frozen=True)
class PruneConfig(Experiment):
    """One pruning experiment (kind ``prune``): a trained network (``base``)
    pruned by ``criterion`` to the widths of ``ratio`` with ``strategy``.

    Parameters
    ----------
    base : the trained network (a torch CNN).
    criterion : ``"l1"``, ``"thinet"``, ``"slimming"`` or ``"sfp"``.
    ratio : the paper's nominal ratio, ``"90%"``, ``"95%"`` or ``"98%"`` (Table 5).
    strategy : ``"I"`` (one-shot), ``"II"`` (iterative) or ``"III"`` (multi-pass).
    finetune_epochs : ``E``, epochs after each step.
    passes : strategy III's rounds.
    greedy : L1 scores a layer over the inputs its predecessor keeps.
    samples, draws : ThiNet's training inputs (at most) and draws per input.
    penalties : Slimming's sweep of sparsity penalties.
    """

    kind: ClassVar[str] = "prune"
    base: Config
    criterion: str = "l1"
    ratio: str = "90%"
    strategy: str = "I"
    finetune_epochs: int = 10
    passes: int = 3
    greedy: bool = False
    samples: int = SAMPLES
    draws: int = DRAWS
    penalties: tuple[float, ...] = PENALTIES

    def __post_init__(self) -> None:
        get_criterion(self.criterion)
        _check_prunable(self.base)
        if self.ratio not in RATIOS:
            raise ValueError(f"unknown pruning ratio {self.ratio!r}; the paper's: {', '.join(RATIOS)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; accepted: {', '.join(STRATEGIES)} "
                             "(one-shot, iterative, multi-pass)")
        for name in ("finetune_epochs", "passes", "samples", "draws"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        object.__setattr__(self, "penalties", tuple(self.penalties))
        if not self.penalties or not all(type(p) is float and p >= 0 for p in self.penalties):
            raise ValueError(f"penalties must be floats >= 0, got {self.penalties!r}")

    def dependencies(self) -> tuple[Experiment, ...]:
        if self.criterion == "slimming":
            return (self.base, *self.sparsity())
        return (self.base,)

    def sparsity(self) -> list[SparsityConfig]:
        return [SparsityConfig(self.base, penalty) for penalty in self.penalties]

    def key_material(self) -> dict[str, Any]:
        options = {"l1": {"greedy": self.greedy}, "thinet": {"samples": self.samples, "draws": self.draws},
                   "slimming": {"penalties": list(self.penalties)},
                   "sfp": {"batch_norm": "recalibrated"}}[self.criterion]
        return {"base": self.base.key(), "criterion": self.criterion, "ratio": self.ratio,
                "strategy": self.strategy, "finetune_epochs": self.finetune_epochs,
                **({"passes": self.passes} if self.strategy == "III" else {}), **options}

    def label(self) -> str:
        return f"{self.base.label()} {self.criterion} {self.ratio} {self.strategy}"

    def network(self, data) -> Network:
        model = self.base.network(data)
        return get_model(self.base.model).make(data.features.shape[2], data.n_classes,
                                               self.base.patch_size,
                                               tuple(target_widths(model, self.ratio).values()))

    def execute(self, context: RunContext) -> Outcome:
        start = time.perf_counter()
        config, data = self.base, context.data
        view = context.view()
        model, penalty, sweep = self._start(context)
        original = {layer.name: width(getattr(model, layer.name)) for layer in prunable_layers(model)}
        target = target_widths(model, self.ratio)
        steps = schedule(self.strategy, original, target, self.passes)
        inputs = TrainingInputs(view, data.fit_idx)
        records, histories, first = [], [], None
        for number, widths in enumerate(steps):
            final = number == len(steps) - 1
            if self.criterion == "sfp":
                model, step, history = self._soft_phase(model, widths, context, number)
            else:
                with autocast(context.device, config.precision):  # ThiNet's forward passes
                    selection = select(model, self.criterion, widths, data=inputs,
                                       seed=config.weight_seed + number, **self._options())
                model = apply(model, selection)
                # Slimming's gates stay under the penalty until the last step (folded after it).
                recipe = (sparsity_training(penalty, config.lr) if penalty is not None and not final
                          else {"lr": config.lr})
                history = fit(model, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                              epochs=self.finetune_epochs, batch_size=config.batch_size,
                              seed=config.weight_seed + number, precision=config.precision,
                              progress=context.progress, **recipe)
                step = {"widths": widths, "history": dataclasses.asdict(history),
                        "kept": {k: v.tolist() for k, v in selection.items()},
                        "errors": selection.errors}
            first = first or step
            records.append(step)
            histories.append(history)
        fold_gates(model)
        model = model.to(memory_format=model.memory_format)
        scores = predict_scores(model, view, data.test_idx, precision=config.precision)
        criterion = get_criterion(self.criterion)
        return Outcome(scores, model, {
            "method": self.criterion, "method_title": criterion.title, "strategy": self.strategy,
            "ratio": self.ratio, "widths": dict(zip(original, model.widths)),
            "total_epochs": self.finetune_epochs * len(steps), "steps": records,
            # Strategy I's selection is of the base network's own filters: criteria compare there.
            "kept": first["kept"] if self.strategy == "I" else None,
            "slimming": None if penalty is None else {"penalty": penalty, "val_oa_by_penalty": sweep},
            "compress_s": time.perf_counter() - start}, training=histories)

    def _options(self) -> dict:
        return {"l1": {"greedy": self.greedy}, "thinet": {"samples": self.samples, "draws": self.draws},
                "slimming": {}, "sfp": {}}[self.criterion]

    def _start(self, context: RunContext) -> tuple[Network, float | None, dict | None]:
        """The network pruning starts from (on the training device): the
        trained base, or Slimming's sparsity-trained network of the penalty
        that keeps the best validation accuracy once pruned to the target."""
        if self.criterion != "slimming":
            model, _ = context.trained(self.base)
            return model.to(context.device, memory_format=model.memory_format), None, None
        view, data = context.view(), context.data
        candidates, sweep = {}, {}
        for config in self.sparsity():
            model, _ = context.trained(config)
            model = model.to(context.device, memory_format=model.memory_format)
            pruned = apply(model, select(model, "slimming", target_widths(model, self.ratio)))
            fold_gates(pruned)
            scores = predict_scores(pruned, view, data.val_idx, precision=self.base.precision)
            sweep[config.penalty] = float((scores.argmax(1) == data.val_y).mean())
            candidates[config.penalty] = model
        best = max(sweep, key=lambda p: (sweep[p], -p))  # the smaller penalty on ties
        return candidates[best], best, {str(p): oa for p, oa in sweep.items()}

    def _soft_phase(self, model: Network, widths: dict[str, int], context: RunContext,
                    number: int) -> tuple[Network, dict, History]:
        """SFP: fine-tune while zeroing the smallest filters of ``widths``'
        layers each epoch, then remove them, folding their constant outputs."""
        config, data, view = self.base, context.data, context.view()
        soft = SoftPruning(widths, TrainingInputs(view, data.fit_idx))
        history = fit(model, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                      epochs=self.finetune_epochs, lr=config.lr, batch_size=config.batch_size,
                      seed=config.weight_seed + number, precision=config.precision,
                      progress=context.progress, callbacks=[soft])
        selection = select(model, "sfp", widths)
        pruned = apply(model, selection, example=view(data.fit_idx[:FOLD_EXAMPLES]))
        return pruned, {"widths": widths, "history": dataclasses.asdict(history),
                        "kept": {k: v.tolist() for k, v in selection.items()},
                        "errors": {}, "changes": soft.changes, "regrowth": soft.regrowth}, history


def pruning_grid(bases: list[Config], criteria: list[str], ratios: list[str], strategies: list[str],
                 **settings) -> list[PruneConfig]:
    """Every base pruned by every criterion to every ratio with every strategy."""
    return [PruneConfig(base, criterion, ratio, strategy, **settings)
            for base in bases for criterion in criteria for ratio in ratios for strategy in strategies]


def scratch_config(base: Config, ratio: str) -> Config:
    """The Scratch baseline: ``base``'s recipe on the narrow architecture of ``ratio``."""
    full = config_widths(base.model, base.widths)
    return dataclasses.replace(base, widths=tuple(kept_width(w, NOMINAL_KEEP[ratio]) for w in full))


for _criterion in CRITERIA.values():
    register_method(Method(_criterion.name, _criterion.title, "pruning", "prune", _criterion.source))
