"""Training engine: fit and evaluate models on pixel indices.

Torch models are trained by :func:`fit` on batches gathered by a
:class:`~hsilib.data.PatchSampler` view (``sampler.patches`` and so on); by
default with Adam and cross-entropy, and every compression method plugs its
own objective, optimizer, callbacks, batch sampler, input transform and
frozen modules into the same loop. After every epoch the deployed model is
scored on a validation set carved from the *training* pixels, and the
weights of the best epoch are kept. Scikit-learn
models pick their hyperparameters on the same validation set. The test set is
never seen by anything in this module: :func:`predict_scores` is the only way
to score it, after training.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from . import dense

PRECISIONS = ("fp32", "bf16")

View = Callable[[np.ndarray], torch.Tensor]  # pixel indices -> model input batch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else the CPU; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available; use 'cpu' or 'auto'")
    return device


def autocast(device: torch.device | str, precision: str):
    """The context a forward pass runs in: nothing for ``"fp32"``, bfloat16
    autocast on ``device``'s type for ``"bf16"``."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def validation_split(index: np.ndarray, labels: np.ndarray, fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Carve a stratified validation set out of training pixels.

    Each class gives ``round(fraction * n)`` of its ``n`` pixels (at least one
    when it has two or more), drawn with ``seed``. Returns
    ``(fit_index, fit_labels, val_index, val_labels)``; the two parts are
    disjoint and together are exactly the input.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    index, labels = np.asarray(index), np.asarray(labels)
    rng = np.random.default_rng(seed)
    in_val = np.zeros(len(index), dtype=bool)
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        n_val = max(1, round(fraction * len(members))) if len(members) >= 2 else 0
        in_val[rng.choice(members, size=n_val, replace=False)] = True
    return index[~in_val], labels[~in_val], index[in_val], labels[in_val]


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s tensors live; the CPU for a model with none (a
    quantized model keeps its weights in packed objects, and runs on the CPU)."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the block, then every module's own flag back (a model
    may hold modules in mixed modes, e.g. a frozen teacher inside a
    distiller, so ``model.train(flag)`` is not enough)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


# Batches of a few hundred keep a convolution's activations in the CPU's
# caches: CNN2D (fp32) scores 30% faster by 250 than by 1,000, CNN3D 4%.
PREDICT_BATCH = 250


@torch.inference_mode()
def predict_scores(model: nn.Module, view: View, index: np.ndarray, batch_size: int = PREDICT_BATCH,
                   precision: str = "fp32") -> np.ndarray:
    """(N, K) float32 class scores (logits) of ``model`` on pixels ``index``;
    patch networks over the image at once where that is cheaper
    (:mod:`hsilib.dense`), else in batches of patches."""
    device = model_device(model)
    index = np.asarray(index)

    def patchwise(index: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(index), batch_size):
            with autocast(device, precision):
                out.append(model(view(index[start:start + batch_size])).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    with eval_mode(model):
        return dense.scores(model, view, index, patchwise, lambda: autocast(device, precision))


# --------------------------------------------------------------------------
# What fit() plugs in: objectives, optimizers, samplers, callbacks
# --------------------------------------------------------------------------

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor, np.ndarray],
                     tuple[torch.Tensor, dict[str, torch.Tensor]]]
"""``objective(model, x, y, index) -> (logits, {term: loss})``: the batch input,
its labels and its pixel indices in, the logits to score and the named loss
terms out; their sum is minimised. It runs under the precision's autocast:
compute losses on ``.float()`` values."""

OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]
Sampler = Callable[[torch.Generator, np.ndarray, int], Iterable[np.ndarray]]
"""``sampler(generator, labels, batch_size)`` yields each batch of an epoch
as positions into the training pixels."""

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""``transform(x, generator)``: a training batch's input, augmented."""


def cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: np.ndarray
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The default objective: the model's logits and their cross-entropy."""
    logits = model(x)
    return logits, {"ce": F.cross_entropy(logits.float(), y)}


def adam(lr: float) -> OptimizerFactory:
    """Adam at ``lr`` over every parameter that requires a gradient."""
    return lambda model: torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)


def shuffled_batches(generator: torch.Generator, labels: np.ndarray, batch_size: int
                     ) -> Iterator[np.ndarray]:
    """The default sampler: one random permutation a epoch, cut into batches."""
    order = torch.randperm(len(labels), generator=generator).numpy()
    for begin in range(0, len(order), batch_size):
        yield order[begin:begin + batch_size]


class Callback:
    """Hooks into :func:`fit`; override the ones needed. ``model`` is what
    ``fit`` trains; ``epoch`` counts from 1."""

    def epoch_start(self, epoch: int, model: nn.Module) -> None:
        """Before the epoch's first batch."""

    def before_step(self, model: nn.Module) -> None:
        """After ``backward()``, before the optimizer step (gradients can be edited)."""

    def epoch_end(self, epoch: int, model: nn.Module) -> None:
        """After the epoch's last step, before validation."""


@dataclass(frozen=True)
class Plateau:
    """When training has stopped learning: the best validation accuracy of
    the last ``window`` epochs is less than ``min_gain`` (a fraction, like
    the accuracy) above the best before them, where the window is
    ``patience`` epochs or ``fraction`` of the epochs run so far, whichever
    is longer (networks that learn slowly over many cheap epochs, like the
    spectral ones, then are not stopped on a short flat stretch).

    The defaults were chosen by measurement (``benchmarks/plateau.py``, real
    Indian Pines, both splits, trained 30 to 200 epochs without a rule, the
    rule replayed on the curves): CNN2D stops about 4 epochs after its best;
    MLP, CNN-1D and LSTM, which still creep up after 100 epochs, stop after
    13 to 119 epochs, giving up 2.8 points of validation accuracy on average
    (at most 4.7) against training all 200, where a fixed patience of 4
    epochs gave up 4.9. One validation pixel of that scene is 0.18 points.
    A curve that reaches 100% stops there (common on the disjoint splits,
    whose validation pixels come from the training fields: the quick
    profile's CNN3D reached it after 1-2 of its 3 epochs on both scenes).
    """

    patience: int = 4
    min_gain: float = 0.005
    fraction: float = 0.3

    def __post_init__(self) -> None:
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"patience must be a positive integer, got {self.patience!r}")
        if not 0.0 <= self.min_gain < 1.0:
            raise ValueError(f"min_gain must be in [0, 1), got {self.min_gain!r}")
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"fraction must be in [0, 1), got {self.fraction!r}")

    def window(self, epochs: int) -> int:
        """Epochs whose gain is judged after ``epochs`` epochs."""
        return max(self.patience, math.ceil(self.fraction * epochs))

    def gain(self, val_oa: Sequence[float]) -> float | None:
        """How much the last :meth:`window` epochs improved on the best
        before them (``None`` while there are no epochs before them)."""
        window = self.window(len(val_oa))
        if len(val_oa) <= window:
            return None
        return max(val_oa[-window:]) - max(val_oa[:-window])

    def reached(self, val_oa: Sequence[float]) -> bool:
        """Whether the curve ``val_oa`` (one value an epoch) has stalled, or
        has reached 100%: no later epoch could then be kept (the first best
        is), so training on changes nothing of the result."""
        if len(val_oa) and max(val_oa) >= 1.0:
            return True
        gain = self.gain(val_oa)
        return gain is not None and gain < self.min_gain


PLATEAU = Plateau()
STOPPED = ("plateau", "max_epochs")


@dataclass
class History:
    """What happened during :func:`fit`: per-epoch training loss (the sum of
    the objective's terms, sample-weighted), each term on its own, validation
    overall accuracy of the deployed model, the epoch whose weights were kept
    (1-based) and seconds; and why it stopped: ``stopped`` is ``"plateau"``
    (:class:`Plateau` reached: ``converged``) or ``"max_epochs"`` (the budget
    ran out while validation accuracy still rose, or without a rule),
    ``val_gain`` the gain of the rule's last window (see :meth:`Plateau.gain`)
    and ``patience``, ``min_gain``, ``fraction`` the rule's settings (``None``:
    no rule)."""

    train_loss: list[float] = field(default_factory=list)
    val_oa: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    terms: dict[str, list[float]] = field(default_factory=dict)
    max_epochs: int = 0
    stopped: str = "max_epochs"
    converged: bool = False
    val_gain: float | None = None
    patience: int | None = None
    min_gain: float | None = None
    fraction: float | None = None


def fit(model: nn.Module, view: View, train_index: np.ndarray, train_labels: np.ndarray,
        val_index: np.ndarray, val_labels: np.ndarray, *, epochs: int, lr: float | None = None,
        batch_size: int = 100, seed: int = 0, precision: str = "fp32", progress: bool = True,
        objective: Objective = cross_entropy, optimizer: OptimizerFactory | None = None,
        callbacks: Sequence[Callback] = (), sampler: Sampler = shuffled_batches,
        transform: Transform | None = None, frozen: Sequence[nn.Module] = (),
        deployed: nn.Module | None = None, keep_from: int = 1,
        stop: Plateau | None = PLATEAU) -> History:
    """Train ``model`` until validation accuracy stops improving (or for
    ``epochs``); keep the epoch whose deployed model scores best on validation.

    Parameters
    ----------
    model : everything that trains: one network, or a module holding
        several (peers, branches, a distiller's student and projector). Its
        parameters that require a gradient are optimized.
    view : maps a batch of pixel indices to the input (on the model's
        device), e.g. ``sampler.patches``.
    train_index, train_labels : pixels the weights are fitted on.
    val_index, val_labels : pixels used only to choose the epoch whose weights
        are kept (overall accuracy of ``deployed``, first best on ties).
    epochs, lr, batch_size : ``epochs`` is the most epochs trained; the
        paper uses batch 100 and lr 1e-3 (Indian Pines) or 8e-4 (Pavia
        University); ``lr`` sets the default optimizer.
    seed : seeds the batch order and the transforms (the model's initial
        weights are the caller's).
    precision : ``"fp32"`` or ``"bf16"`` (autocast for forward passes).
    objective : the loss (:data:`Objective`); cross-entropy by default. An
        objective that is also a :class:`Callback` gets its hooks.
    optimizer : builds the optimizer from ``model`` (parameter groups are
        its choice); Adam at ``lr`` by default.
    callbacks : :class:`Callback` s (pruning masks, penalties, targets).
    sampler : the batches of an epoch (:data:`Sampler`); a fresh random
        order by default.
    transform : training-time input augmentation (:data:`Transform`).
    frozen : modules that never train: put in eval mode (batch-norm
        statistics fixed) and without gradients, whatever the loop does to
        ``model``, even when they are inside it.
    deployed : the network that is validated (default ``model``).
    keep_from : the first epoch whose weights may be kept (a staged
        method's first epochs train part of the network); at most ``epochs``.
    stop : when to stop before ``epochs`` (:class:`Plateau`, counted on the
        epochs from ``keep_from`` on); ``None`` trains all ``epochs``. The
        history records why training stopped.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if len(train_index) == 0 or len(val_index) == 0:
        raise ValueError("fit needs non-empty training and validation sets")
    if optimizer is None and lr is None:
        raise ValueError("fit needs lr (for the default Adam optimizer) or an optimizer factory")
    if not 1 <= keep_from <= epochs:
        raise ValueError(f"keep_from must be an epoch from 1 to {epochs}, got {keep_from}")
    deployed = model if deployed is None else deployed
    for module in frozen:
        module.eval().requires_grad_(False)
    hooks = [*callbacks, *([objective] if isinstance(objective, Callback) else [])]
    device = model_device(model)
    train_labels = np.asarray(train_labels)
    targets = torch.as_tensor(train_labels, dtype=torch.int64, device=device)
    val_labels = np.asarray(val_labels)
    step = (optimizer or adam(lr))(model)
    generator = torch.Generator().manual_seed(seed)
    history, best_state, best_oa = History(), None, -1.0
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=f"training {type(model).__name__}", unit="epoch",
               disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        for module in frozen:
            module.eval()
        for hook in hooks:
            hook.epoch_start(epoch, model)
        sums: dict[str, float] = {}
        seen = 0
        for batch in sampler(generator, train_labels, batch_size):
            if len(batch) < 2 and seen:  # batch norm cannot train on one sample
                continue
            step.zero_grad(set_to_none=True)
            x = view(train_index[batch])
            if transform is not None:
                x = transform(x, generator)
            with autocast(device, precision):
                _, terms = objective(model, x, targets[batch], train_index[batch])
            loss = sum(terms.values())
            loss.backward()
            for hook in hooks:
                hook.before_step(model)
            step.step()
            for name, term in terms.items():
                sums[name] = sums.get(name, 0.0) + term.item() * len(batch)
            seen += len(batch)
        for hook in hooks:
            hook.epoch_end(epoch, model)
        scores = predict_scores(deployed, view, val_index, precision=precision)
        val_oa = float((scores.argmax(axis=1) == val_labels).mean())
        for name, total in sums.items():
            history.terms.setdefault(name, []).append(total / seen)
        history.train_loss.append(sum(sums.values()) / seen)
        history.val_oa.append(val_oa)
        if val_oa > best_oa and epoch >= keep_from:
            best_oa, history.best_epoch = val_oa, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", val_oa=f"{val_oa:.3f}")
        if stop is not None and stop.reached(history.val_oa[keep_from - 1:]):
            history.stopped, history.converged = "plateau", True
            break
    bar.close()
    model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    history.max_epochs = epochs
    if stop is not None:
        history.patience, history.min_gain, history.fraction = stop.patience, stop.min_gain, stop.fraction
        history.val_gain = stop.gain(history.val_oa[keep_from - 1:])
    return history


def estimator_scores(estimator, features: np.ndarray) -> np.ndarray:
    """(N, K) class scores of a fitted scikit-learn classifier: probabilities
    where it has them, else its decision values."""
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(features)
    return estimator.decision_function(features)


def fit_estimator(build: Callable[[], object], grid: dict[str, list], train_x: np.ndarray,
                  train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, seed: int = 0
                  ) -> tuple[object, dict]:
    """Fit a scikit-learn model for every combination of ``grid``, keep the one
    with the best validation accuracy (first best on ties).

    Returns the fitted estimator and a record of the selection: the chosen
    parameters and every combination's validation accuracy.
    """
    names = sorted(grid)
    best, tried = None, []
    for values in itertools.product(*(grid[n] for n in names)):
        params = dict(zip(names, values))
        estimator = build()
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=seed)
        estimator.set_params(**params).fit(train_x, train_y)
        oa = float((estimator.predict(val_x) == val_y).mean())
        tried.append({"params": params, "val_oa": oa})
        if best is None or oa > best[1]:
            best = (estimator, oa, params)
    return best[0], {"chosen": best[2], "val_oa": best[1], "tried": tried}
