"""Classification metrics of the paper and of the HSI literature.

Top-1 and top-5 accuracy (the paper's Tables 6-13), overall accuracy (OA,
the same as top-1), average accuracy (AA, the mean of per-class recalls) and
Cohen's kappa, from class scores and true labels.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.shape != predicted.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} differ in shape")
    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes
                       ).reshape(n_classes, n_classes)


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the ``k`` highest scores
    (every class counts when there are fewer than ``k``)."""
    scores = np.asarray(scores)
    k = min(k, scores.shape[1])
    # argpartition gives the k largest in any order, enough for membership.
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float((top == np.asarray(labels)[:, None]).any(axis=1).mean())


def classification_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """Metrics of class ``scores`` (N, K; logits, probabilities or decision
    values: only their order matters) against true ``labels`` (N,).

    Returns a JSON-serializable dict: ``top1``, ``top5``, ``oa``, ``aa``,
    ``kappa`` (fractions in [0, 1]), ``per_class`` accuracy (recall; ``None``
    for a class absent from ``labels``), ``confusion`` (K x K nested lists) and
    ``n`` (samples).
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores must be (N, K) with N = len(labels); got {scores.shape} and {labels.shape}")
    if len(labels) == 0:
        raise ValueError("no samples to evaluate")
    n_classes = scores.shape[1]
    cm = confusion_matrix(labels, scores.argmax(axis=1), n_classes)
    support = cm.sum(axis=1)
    recall = np.divide(np.diag(cm), support, out=np.full(n_classes, np.nan), where=support > 0)
    n = cm.sum()
    observed = np.trace(cm) / n
    expected = float(cm.sum(axis=0) @ support) / n**2
    kappa = 1.0 if expected == 1 else (observed - expected) / (1 - expected)
    return {
        "top1": float(observed),
        "top5": top_k_accuracy(scores, labels, 5),
        "oa": float(observed),
        "aa": float(np.nanmean(recall)),
        "kappa": float(kappa),
        "per_class": [None if np.isnan(r) else float(r) for r in recall],
        "confusion": cm.tolist(),
        "n": int(n),
    }
