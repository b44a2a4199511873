"""Low-rank approximation (the paper's limitation 1): each prunable layer
replaced by a product of smaller ones, sized to the parameter budget of a
pruned network of Table 5, then fine-tuned like pruning.

* A linear layer ``W`` (out x in) becomes ``in -> r -> out``: the truncated
  SVD ``W ~ (U_r S_r^1/2)(S_r^1/2 V_r^T)``, ``r * (in + out) + out``
  parameters (the bias stays on the second factor).
* A convolution ``W`` (O x I x kernel) becomes a Tucker-2 decomposition
  (Kim et al., "Compression of deep convolutional neural networks for fast
  and low power mobile applications", ICLR 2016): a 1x1 convolution to
  ``r_in`` channels, the original kernel from ``r_in`` to ``r_out``
  channels, and a 1x1 convolution back to ``O``; the factors are the leading
  singular vectors of the weight's two channel unfoldings (HOSVD) and the
  core its projection on them. At full ranks both are exact.

Ranks follow one shared fraction of each layer's full rank, chosen so that
the network's parameters (the paper's count) come within
:data:`BUDGET_TOLERANCE` of the budget, then adjusted rank by rank.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .. import measure
from ..experiments import Config, Experiment, Outcome, RunContext, register_kind
from ..models import get_model
from ..models.network import Network
from ..train import fit, predict_scores
from .methods import Method, register_method
from .prune.graph import prunable_layers
from .prune.widths import RATIOS, target_widths

BUDGET_TOLERANCE = 0.02
RANK_SEARCH = 2  # bumped when ranks_for_budget chooses differently
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def svd_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """``layer`` as two linear layers through ``rank`` units (truncated SVD)."""
    weight = layer.weight.detach().double()
    u, s, vt = torch.linalg.svd(weight, full_matrices=False)
    root = s[:rank].sqrt()
    like = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    first = nn.Linear(layer.in_features, rank, bias=False, **like)
    second = nn.Linear(rank, layer.out_features, bias=layer.bias is not None, **like)
    with torch.no_grad():
        first.weight.copy_(root[:, None] * vt[:rank])
        second.weight.copy_(u[:, :rank] * root)
        if layer.bias is not None:
            second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def tucker_conv(layer: nn.Module, ranks: tuple[int, int]) -> nn.Sequential:
    """A valid, stride-1 convolution as 1x1 -> kernel -> 1x1 convolutions
    through ``ranks = (r_out, r_in)`` channels (Tucker-2 by HOSVD)."""
    weight = layer.weight.detach().double()  # (O, I, *kernel)
    out_channels, in_channels = weight.shape[:2]
    r_out, r_in = ranks
    u_out = torch.linalg.svd(weight.reshape(out_channels, -1), full_matrices=False)[0][:, :r_out]
    u_in = torch.linalg.svd(weight.transpose(0, 1).reshape(in_channels, -1), full_matrices=False)[0][:, :r_in]
    core = torch.einsum("oi...,or,is->rs...", weight, u_out, u_in)  # (r_out, r_in, *kernel)
    ones = (1,) * (weight.dim() - 2)
    conv, like = type(layer), {"device": layer.weight.device, "dtype": layer.weight.dtype}
    reduce = conv(in_channels, r_in, ones, bias=False, **like)
    middle = conv(r_in, r_out, layer.kernel_size, bias=False, **like)
    expand = conv(r_out, out_channels, ones, bias=layer.bias is not None, **like)
    with torch.no_grad():
        reduce.weight.copy_(u_in.T.reshape(r_in, in_channels, *ones))
        middle.weight.copy_(core)
        expand.weight.copy_(u_out.reshape(out_channels, r_out, *ones))
        if layer.bias is not None:
            expand.bias.copy_(layer.bias)
    return nn.Sequential(reduce, middle, expand)


def full_ranks(model: Network) -> dict[str, tuple[int, ...]]:
    """Each prunable layer's full ranks: ``(O, I)`` of a convolution,
    ``(min(out, in),)`` of a linear layer."""
    ranks = {}
    for layer in prunable_layers(model):
        module = getattr(model, layer.name)
        ranks[layer.name] = ((module.out_channels, module.in_channels) if isinstance(module, _CONV)
                             else (min(module.in_features, module.out_features),))
    return ranks


def decompose(model: Network, ranks: dict[str, tuple[int, ...]]) -> Network:
    """A copy of ``model`` whose named layers are replaced by their low-rank
    factors (``model`` is untouched)."""
    decomposed = copy.deepcopy(model)
    for name, rank in ranks.items():
        module = getattr(decomposed, name)
        factors = tucker_conv(module, rank) if isinstance(module, _CONV) else svd_linear(module, rank[0])
        setattr(decomposed, name, factors)
    return decomposed


def decomposed_parameters(model: Network, ranks: dict[str, tuple[int, ...]]) -> int:
    """The paper's parameter count of ``decompose(model, ranks)``, computed
    from the shapes: ``I r_in + r_in r_out K + r_out O`` (+ bias) for a
    convolution with ``K`` kernel positions, ``r (in + out)`` (+ bias) for a
    linear layer."""
    total = sum(count for name, count in measure.parameters_per_layer(model).items()
                if name not in ranks)
    for name, rank in ranks.items():
        module = getattr(model, name)
        bias = 0 if module.bias is None else module.weight.shape[0]
        if isinstance(module, _CONV):
            r_out, r_in = rank
            kernel = int(np.prod(module.kernel_size))
            total += module.in_channels * r_in + r_in * r_out * kernel + r_out * module.out_channels
        else:
            total += rank[0] * (module.in_features + module.out_features)
        total += bias
    return total


def ranks_for_budget(model: Network, budget: int, tolerance: float = BUDGET_TOLERANCE
                     ) -> dict[str, tuple[int, ...]]:
    """Ranks whose decomposed network has ``budget`` parameters (the paper's
    count) within ``tolerance``. A linear layer's rank moves the count in
    large steps and a convolution's in small ones, so convolutions and
    linear layers each keep a shared fraction of their full ranks, then
    single ranks move by one while that brings the count closer; of the
    ranks that hit the budget, those that cut no layer far more than the
    others."""
    full = full_ranks(model)

    def miss(ranks: dict[str, tuple[int, ...]]) -> int:
        return abs(decomposed_parameters(model, ranks) - budget)

    def scaled(conv: float, linear: float) -> dict[str, tuple[int, ...]]:
        return {n: tuple(max(1, round((conv if len(rank) == 2 else linear) * r)) for r in rank)
                for n, rank in full.items()}

    def refined(ranks: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        while miss(ranks) > tolerance * budget:
            moves = [{**ranks, name: tuple(r + (step if i == which else 0) for i, r in enumerate(rank))}
                     for name, rank in ranks.items() for which in range(len(rank)) for step in (-1, 1)]
            moves = [m for m in moves if all(1 <= r <= f for n in m for r, f in zip(m[n], full[n]))]
            best = min(moves, key=miss)
            if miss(best) >= miss(ranks):
                break
            ranks = best
        return ranks

    def smallest_share(ranks: dict[str, tuple[int, ...]]) -> float:
        return min(r / f for name, rank in ranks.items() for r, f in zip(rank, full[name]))

    # For each convolution fraction, the linear one that comes closest; the
    # most even split of the cuts (no layer cut far more than others) first.
    fractions = np.linspace(0.01, 1.0, 100)
    starts = {str(s): s for s in (min((scaled(c, f) for f in fractions), key=miss) for c in fractions)}
    closest = None
    for start in sorted(starts.values(), key=smallest_share, reverse=True):
        ranks = refined(start)
        if miss(ranks) <= tolerance * budget:
            return ranks
        closest = ranks if closest is None or miss(ranks) < miss(closest) else closest
    raise ValueError(f"no ranks give {budget:,} parameters within {tolerance:.0%}; the "
                     f"closest give {decomposed_parameters(model, closest):,} ({closest})")


@register_kind
@dataclass(frozen=True)
class LowRankConfig(Experiment):
    """A trained network (``base``) decomposed to the parameter budget of
    Table 5's pruned network of ``ratio`` and fine-tuned (kind ``lowrank``)."""

    kind: ClassVar[str] = "lowrank"
    base: Config
    ratio: str = "90%"
    finetune_epochs: int = 10

    def __post_init__(self) -> None:
        if self.ratio not in RATIOS:
            raise ValueError(f"unknown ratio {self.ratio!r}; the paper's: {', '.join(RATIOS)}")
        if type(self.finetune_epochs) is not int or self.finetune_epochs < 1:
            raise ValueError(f"finetune_epochs must be a positive integer, got {self.finetune_epochs!r}")
        if not get_model(self.base.model).prunable:
            raise ValueError(f"model {self.base.model!r} has no layers to decompose")

    def key_material(self) -> dict[str, Any]:
        return {"base": self.base.key(), "ratio": self.ratio, "finetune_epochs": self.finetune_epochs,
                "tolerance": BUDGET_TOLERANCE, "rank_search": RANK_SEARCH}

    def label(self) -> str:
        return f"{self.base.label()} low-rank {self.ratio}"

    def budget(self, model: Network) -> int:
        """The paper's parameter count of the pruned network of ``ratio``."""
        spec = get_model(self.base.model)
        pruned = spec.make(_in_channels(model), _classes(model), self.base.patch_size,
                           tuple(target_widths(model, self.ratio).values()))
        return sum(measure.parameters_per_layer(pruned).values())

    def network(self, data) -> nn.Module:
        model = self.base.network(data)
        return decompose(model, ranks_for_budget(model, self.budget(model)))

    def execute(self, context: RunContext) -> Outcome:
        start = time.perf_counter()
        config, data, view = self.base, context.data, context.view()
        model, _ = context.trained(self.base)
        ranks = ranks_for_budget(model, self.budget(model))
        network = decompose(model, ranks).to(context.device)
        # What the decomposition alone keeps, before fine-tuning.
        before = predict_scores(network, view, data.val_idx, precision=config.precision)
        history = fit(network, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                      epochs=self.finetune_epochs, lr=config.lr, batch_size=config.batch_size,
                      seed=config.weight_seed, precision=config.precision, progress=context.progress)
        scores = predict_scores(network, view, data.test_idx, precision=config.precision)
        return Outcome(scores, network, {
            "method": "lowrank", "method_title": "Low-rank (SVD, Tucker-2)", "ratio": self.ratio,
            "ranks": {n: list(r) for n, r in ranks.items()}, "budget": self.budget(model),
            "val_oa_before_finetuning": float((before.argmax(1) == data.val_y).mean()),
            "history": dataclasses.asdict(history), "total_epochs": self.finetune_epochs,
            "compress_s": time.perf_counter() - start}, training=[history])


def _in_channels(model: Network) -> int:
    first = getattr(model, prunable_layers(model)[0].name)
    return first.in_channels if isinstance(first, _CONV) else first.in_features


def _classes(model: Network) -> int:
    return getattr(model, model.classifier).out_features


register_method(Method("lowrank", "Low-rank (SVD, Tucker-2)", "low-rank", "lowrank",
                       "Kim et al., ICLR 2016 (Tucker-2); truncated SVD"))
