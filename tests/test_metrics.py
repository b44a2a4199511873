"""Metrics against scikit-learn's independent implementations and hand counts."""

import numpy as np
import pytest
from sklearn.metrics import (balanced_accuracy_score, cohen_kappa_score,
                             confusion_matrix as sk_confusion, top_k_accuracy_score)

from hsilib.metrics import classification_metrics, confusion_matrix, top_k_accuracy


@pytest.fixture
def scored():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 9, size=500)
    scores = rng.normal(size=(500, 9))
    scores[np.arange(500), labels] += rng.normal(1.0, 1.0, size=500)  # better than chance
    return scores, labels


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_metrics_agree_with_sklearn(scored):
    scores, labels = scored
    m = classification_metrics(scores, labels)
    predicted = scores.argmax(axis=1)
    assert m["top1"] == m["oa"] == pytest.approx((predicted == labels).mean())
    assert m["aa"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert m["kappa"] == pytest.approx(cohen_kappa_score(labels, predicted))
    assert m["top5"] == pytest.approx(top_k_accuracy_score(labels, scores, k=5))
    assert m["confusion"] == sk_confusion(labels, predicted).tolist()
    assert m["n"] == 500
    assert 0.2 < m["top1"] < m["top5"] < 1.0


def test_top_k_with_fewer_classes_than_k_is_one():
    assert top_k_accuracy(np.random.default_rng(1).normal(size=(10, 3)), np.zeros(10, int), 5) == 1.0


def test_absent_class_has_no_per_class_accuracy_and_aa_ignores_it():
    scores = np.eye(3)[[0, 0, 1]]  # class 2 never occurs
    m = classification_metrics(scores, np.array([0, 0, 1]))
    assert m["per_class"] == [1.0, 1.0, None]
    assert m["aa"] == 1.0


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="scores must be"):
        classification_metrics(np.zeros(4), np.zeros(4, int))
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics(np.zeros((0, 3)), np.zeros(0, int))
