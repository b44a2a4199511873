"""Result tables: ours beside the paper's, with the difference."""

import numpy as np
import pandas as pd
import pytest

from hsilib import report
from hsilib.reference import paper_values


def frame_of(rows):
    return pd.DataFrame(rows, columns=["method", "scene", "split", "seed", "top1"])


def test_side_by_side_shows_mean_std_paper_and_difference():
    frame = frame_of([("MLR", "indian_pines", "disjoint", 0, 80.0),
                      ("MLR", "indian_pines", "disjoint", 1, 82.0),
                      ("MLR", "indian_pines", "random", 0, 90.0),
                      ("SVM", "indian_pines", "disjoint", 0, 70.0)])
    table = report.side_by_side(frame, paper_values(3), "top1", methods=["MLR", "SVM"])
    paper_mlr = paper_values(3, "top1", method="MLR", dataset="indian_pines", split="disjoint")["value"].item()
    disjoint = table[("Indian Pines", "Disjoint")]
    assert disjoint.loc["MLR", "ours"] == f"81.0 ± {np.std([80.0, 82.0], ddof=1):.1f}"
    assert disjoint.loc["MLR", "paper"] == paper_mlr
    assert disjoint.loc["MLR", "Δ"] == pytest.approx(81.0 - paper_mlr)
    assert disjoint.loc["SVM", "ours"] == "70.0"  # one seed: no ± part
    random = table[("Indian Pines", "Random")]
    assert random.loc["SVM", "ours"] == "-" and np.isnan(random.loc["SVM", "Δ"])


def test_method_the_paper_lacks_has_no_paper_value():
    frame = frame_of([("Mine", "pavia_university", "random", 0, 50.0)])
    table = report.side_by_side(frame, paper_values(3), "top1")
    assert np.isnan(table.loc["Mine", ("Pavia University", "Random", "paper")])
    assert table.loc["Mine", ("Pavia University", "Random", "ours")] == "50.0"


def test_prediction_map_places_predictions_and_leaves_the_rest_unlabelled():
    labels = report.prediction_map((2, 3), np.array([1, 5]), np.array([4, 0]))
    assert labels.tolist() == [[-1, 4, -1], [-1, -1, 0]]
