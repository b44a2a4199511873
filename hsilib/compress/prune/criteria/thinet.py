"""ThiNet (Luo, Wu and Lin, "ThiNet: a filter level pruning method for deep
neural network compression", ICCV 2017).

A layer's channels are chosen by how well the *next* layer's output can be
rebuilt without them. On sampled training inputs, each draw picks an output
unit of the consumer (and, for a convolution, a position) and splits that
unit's pre-bias output into one term per input channel: ``x_c = sum over the
kernel of W[o, c, .] * A[c, .]`` (for a linear consumer of a flattened
convolution, over the channel's block of columns), so that ``sum_c x_c = y``,
the consumer's output minus its bias. Greedily, the channel whose removal
adds least to ``sum over draws (sum_{removed} x)^2`` is removed, until the
target width is reached; the kept channels' consumer weights are then
rescaled by the least-squares factors ``w = argmin ||y - X_K w||``
(one per kept channel), as the authors' code does.

Layers are chosen bottom-up, each on the network already pruned and
rescaled below it. Defaults as the authors' Caffe code (``Roll920/ThiNet_Code``):
10 draws per input; here at most 10,000 training inputs, with a fixed seed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ....models.network import Network
from ....train import eval_mode
from ..graph import PrunableLayer, group, prunable_layers, width
from ..surgery import Selection, apply
from . import Criterion, register_criterion

SAMPLES = 10_000
DRAWS = 10
_CHUNK_VALUES = 1 << 24  # floats gathered at once (64 MB)


@dataclass(frozen=True)
class TrainingInputs:
    """Training inputs for a data-driven criterion: ``view`` maps pixel
    indices to an input batch, ``index`` holds the training pixels."""

    view: Callable[[np.ndarray], torch.Tensor]
    index: np.ndarray

    @classmethod
    def of(cls, inputs: torch.Tensor) -> "TrainingInputs":
        """A batch of inputs given as one tensor."""
        return cls(lambda idx: inputs[torch.as_tensor(idx)], np.arange(len(inputs)))


def contributions(model: Network, layer: PrunableLayer, data: TrainingInputs, index: np.ndarray,
                  draws: int, rng: np.random.Generator) -> np.ndarray:
    """``X``: one row per draw, one column per channel of ``layer``, the
    channel's term in the consumer's output at that draw (whose sum is the
    consumer's output minus its bias: checked on the first inputs against
    the consumer itself)."""
    consumer = getattr(model, layer.consumer)
    weight = consumer.weight.detach()
    channels, g = width(getattr(model, layer.name)), group(model, layer)
    kernel = weight.shape[2:]
    per_input = draws * channels * max(g, int(np.prod(kernel)) if len(kernel) else 1)
    chunk = max(1, _CHUNK_VALUES // per_input)
    rows = []
    with torch.no_grad(), eval_mode(model):
        for start in range(0, len(index), chunk):
            inputs = data.view(index[start:start + chunk])
            # The layers below may run in bfloat16 (autocast); the terms are in the weights' dtype.
            a = model.forward_features(inputs, until=layer.consumer_input)[layer.consumer_input]
            a = a.to(weight.dtype)
            units = torch.as_tensor(rng.integers(0, weight.shape[0], size=(len(a), draws)), device=a.device)
            with torch.autocast(a.device.type, enabled=False):
                if isinstance(consumer, nn.Linear):
                    x = (weight.view(weight.shape[0], channels, g)[units]
                         * a.flatten(1).view(len(a), 1, channels, g)).sum(-1)
                    full = a.flatten(1) @ weight.T
                    y = full[torch.arange(len(a), device=a.device)[:, None], units]
                else:
                    x, y = _conv_contributions(consumer, weight, a, units, rng, check=start == 0)
            if start == 0 and not torch.allclose(x.sum(-1), y, rtol=1e-3, atol=1e-3 * (y.abs().max() + 1e-12)):
                raise RuntimeError(f"ThiNet: {layer.name}'s channel terms do not add up to "
                                   f"{layer.consumer}'s output")
            rows.append(x.reshape(-1, channels).double().cpu().numpy())
    return np.concatenate(rows)


def _conv_contributions(consumer: nn.Module, weight: torch.Tensor, a: torch.Tensor,
                        units: torch.Tensor, rng: np.random.Generator, check: bool
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-channel terms of a valid, stride-1 convolution at random positions,
    and (``check``) the convolution's own output there."""
    n, draws = units.shape
    kernel = weight.shape[2:]
    outputs = [size - k + 1 for size, k in zip(a.shape[2:], kernel)]
    starts = [torch.as_tensor(rng.integers(0, o, size=(n, draws)), device=a.device) for o in outputs]
    dims = len(kernel)
    # Index tensors broadcast to (n, draws, channels, *kernel).
    shape = lambda d: [1] * d + [-1] + [1] * (2 + dims - d)  # noqa: E731
    index = [torch.arange(n, device=a.device).view(shape(0)),
             torch.arange(a.shape[1], device=a.device).view(shape(2))]
    for d, (start, k) in enumerate(zip(starts, kernel)):
        offset = torch.arange(k, device=a.device).view([1] * (3 + d) + [-1] + [1] * (dims - d - 1))
        index.append(start.view(n, draws, *([1] * (dims + 1))) + offset)
    windows = a[tuple(index)]  # (n, draws, channels, *kernel)
    x = (windows * weight[units]).flatten(3).sum(-1)
    if not check:
        return x, None
    full = consumer._conv_forward(a, weight, None)  # the consumer's output without bias
    return x, full[(torch.arange(n, device=a.device)[:, None], units, *starts)]


def greedy_keep(x: np.ndarray, k: int) -> np.ndarray:
    """ThiNet's greedy removal: repeatedly drop the channel that adds least to
    the squared sum of the dropped channels' terms (the higher index on
    ties); the sorted kept channels.

    With ``r`` the summed terms of the channels dropped so far, dropping ``j``
    next costs ``||r + x_j||^2 = ||r||^2 + 2 r.x_j + ||x_j||^2``; ``r.x_j`` is a
    sum of entries of the Gram matrix ``X^T X``, so each step is a vector
    update instead of a pass over every draw."""
    gram = x.T @ x
    n = gram.shape[0]
    available = np.ones(n, dtype=bool)
    cross = np.zeros(n)  # r . x_j for every j
    for _ in range(n - k):
        error = 2 * cross + np.diag(gram)
        error[~available] = np.inf
        # The last on ties, so that the lower index is kept, as every criterion keeps it (top()).
        j = n - 1 - int(np.argmin(error[::-1]))
        available[j] = False
        cross += gram[:, j]
    return np.flatnonzero(available)


def rescale(x: np.ndarray, y: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The least-squares factor of each kept channel: ``argmin ||y - X_K w||``."""
    return np.linalg.lstsq(x[:, kept], y, rcond=None)[0]


def choose(model: Network, widths: dict[str, int], data: TrainingInputs | None = None,
           seed: int = 0, samples: int = SAMPLES, draws: int = DRAWS) -> Selection:
    if data is None:
        raise ValueError("ThiNet chooses channels on training inputs: pass data= (a batch of inputs "
                         "or TrainingInputs(view, pixel indices))")
    rng = np.random.default_rng(seed)
    index = rng.permutation(np.asarray(data.index))[:samples]
    current = copy.deepcopy(model)
    kept, scales, errors = {}, {}, {}
    for layer in prunable_layers(model):
        if layer.name not in widths:
            continue
        x = contributions(current, layer, data, index, draws, rng)
        y = x.sum(1)  # the consumer's output minus its bias, at every draw
        keep = greedy_keep(x, widths[layer.name])
        factors = rescale(x, y, keep)
        kept[layer.name], scales[layer.name] = keep, factors
        energy = float(y @ y)
        errors[layer.name] = {"removed": float(np.square(y - x[:, keep].sum(1)).sum() / energy),
                              "rescaled": float(np.square(y - x[:, keep] @ factors).sum() / energy)}
        current = apply(current, Selection({layer.name: keep}, {layer.name: factors}))
    return Selection(kept, scales, errors=errors)


register_criterion(Criterion(
    "thinet", "ThiNet", "Luo et al., ICCV 2017 (the paper's ref. [58])", "training inputs", choose))
