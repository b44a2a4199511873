"""Training engine: fit and evaluate models on pixel indices.

Torch models are trained with Adam and cross-entropy on batches gathered by
a :class:`~hsilib.data.PatchSampler` view (``sampler.patches`` and so on);
after every epoch the model is scored on a validation set carved from the
*training* pixels, and the weights of the best epoch are kept. Scikit-learn
models pick their hyperparameters on the same validation set. The test set is
never seen by anything in this module: :func:`predict_scores` is the only way
to score it, after training.
"""

from __future__ import annotations

import copy
import itertools
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

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


def _autocast(device: torch.device, precision: str):
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


@torch.inference_mode()
def predict_scores(model: nn.Module, view: View, index: np.ndarray, batch_size: int = 1000,
                   precision: str = "fp32") -> np.ndarray:
    """(N, K) float32 class scores (logits) of ``model`` on pixels ``index``."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    out = []
    try:
        for start in range(0, len(index), batch_size):
            with _autocast(device, precision):
                out.append(model(view(index[start:start + batch_size])).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@dataclass
class History:
    """What happened during :func:`fit`: per-epoch training loss and validation
    overall accuracy, the epoch whose weights were kept (1-based) and seconds."""

    train_loss: list[float] = field(default_factory=list)
    val_oa: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def fit(model: nn.Module, view: View, train_index: np.ndarray, train_labels: np.ndarray,
        val_index: np.ndarray, val_labels: np.ndarray, *, epochs: int, lr: float,
        batch_size: int = 100, seed: int = 0, precision: str = "fp32",
        progress: bool = True) -> History:
    """Train ``model`` with Adam and cross-entropy; keep the best validation epoch.

    Parameters
    ----------
    view : maps a batch of pixel indices to the model's input (on the model's
        device), e.g. ``sampler.patches``.
    train_index, train_labels : pixels the weights are fitted on.
    val_index, val_labels : pixels used only to choose the epoch whose weights
        are kept (overall accuracy, first best on ties).
    epochs, lr, batch_size : the paper uses batch 100 and lr 1e-3 (Indian
        Pines) or 8e-4 (Pavia University).
    seed : shuffling seed (the model's initial weights are the caller's).
    precision : ``"fp32"`` or ``"bf16"`` (autocast for forward passes).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if len(train_index) == 0 or len(val_index) == 0:
        raise ValueError("fit needs non-empty training and validation sets")
    device = model_device(model)
    targets = torch.as_tensor(np.asarray(train_labels), dtype=torch.int64, device=device)
    val_labels = np.asarray(val_labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    history, best_state, best_oa = History(), None, -1.0
    start = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=f"training {type(model).__name__}", unit="epoch",
               disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(train_index), generator=generator).numpy()
        total, seen = 0.0, 0
        for begin in range(0, len(order), batch_size):
            batch = order[begin:begin + batch_size]
            if len(batch) < 2 and seen:  # batch norm cannot train on one sample
                continue
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, precision):
                logits = model(view(train_index[batch]))
            loss = loss_fn(logits.float(), targets[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        scores = predict_scores(model, view, val_index, precision=precision)
        val_oa = float((scores.argmax(axis=1) == val_labels).mean())
        history.train_loss.append(total / seen)
        history.val_oa.append(val_oa)
        if val_oa > best_oa:
            best_oa, history.best_epoch = val_oa, epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{total / seen:.3f}", val_oa=f"{val_oa:.3f}")
    model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
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
