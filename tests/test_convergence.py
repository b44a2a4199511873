"""Whether networks finished learning: the runner's summary of a record's
training loops, and the marks and counts the chapters show."""

import numpy as np
import pandas as pd
import pytest

from hsilib import report
from hsilib.experiments.runner import convergence
from hsilib.reference import paper_values
from hsilib.train import History


def history(val_oa, max_epochs, converged):
    return History(val_oa=list(val_oa), best_epoch=int(np.argmax(val_oa)) + 1, max_epochs=max_epochs,
                   stopped="plateau" if converged else "max_epochs", converged=converged,
                   val_gain=0.001 if converged else 0.05, patience=4, min_gain=0.005)


def test_a_record_converged_only_when_every_training_loop_did():
    summary = convergence([history([0.5, 0.6], 5, True), history([0.6, 0.7, 0.8], 3, False)])
    assert summary == {"converged": False, "stopped": "max_epochs", "val_gain": 0.05, "best_epoch": 3,
                       "epochs_run": 5, "max_epochs": 8, "loops": 2, "unconverged_loops": 1}
    assert convergence([history([0.5, 0.6, 0.6], 9, True)])["converged"] is True


def test_a_network_that_did_not_train_has_no_convergence():
    assert convergence([]) is None
    assert report.converged({"convergence": None}) is None and report.converged({}) is None


def frame_of(rows):
    return pd.DataFrame(rows, columns=["method", "scene", "split", "seed", "top1", "kappa", "converged",
                                       "epochs_run"])


ROWS = [("MLR", "indian_pines", "disjoint", 0, 80.0, 0.7, None, np.nan),
        ("MLP", "indian_pines", "disjoint", 0, 82.0, 0.8, True, 12),
        ("MLP", "indian_pines", "disjoint", 1, 84.0, 0.8, False, 50),
        ("MLP", "indian_pines", "random", 0, 88.0, 0.9, True, 20),
        ("CNN2D (c=40)", "indian_pines", "disjoint", 0, 86.0, 0.8, False, 5)]


def test_only_cells_with_an_unconverged_run_are_marked():
    table = report.side_by_side(frame_of(ROWS), paper_values(3), "top1",
                                methods=["MLR", "MLP", "CNN2D (c=40)"])
    disjoint, random = table[("Indian Pines", "Disjoint")], table[("Indian Pines", "Random")]
    assert disjoint.loc["MLP", "ours"].endswith(f" {report.MARK}")
    assert disjoint.loc["CNN2D (c=40)", "ours"] == f"86.0 {report.MARK}"
    assert disjoint.loc["MLR", "ours"] == "80.0"  # scikit-learn: nothing trained, nothing to mark
    assert random.loc["MLP", "ours"] == "88.0"
    assert disjoint.loc["MLP", "Δ"] == pytest.approx(83.0 - disjoint.loc["MLP", "paper"])


def test_the_metrics_table_marks_the_rows_of_unconverged_runs():
    frame = frame_of(ROWS).assign(top5=99.0, oa=80.0, aa=70.0)
    table = report.metrics_table(frame)
    methods = [name for _, _, name in table.index]
    assert methods == ["MLR", f"MLP {report.MARK}", f"CNN2D (c=40) {report.MARK}", "MLP"]


def test_the_convergence_table_counts_runs_per_method():
    table = report.convergence_table(frame_of(ROWS))
    assert list(table.index) == ["MLP", "CNN2D (c=40)"]  # MLR did not train
    assert table.loc["MLP"].tolist() == [3, 2, 1, 20]
    assert table.loc["CNN2D (c=40)"].tolist() == [1, 0, 1, 5]


def test_the_summary_counts_converged_runs_and_explains_the_mark():
    text = report.convergence_summary(frame_of(ROWS))
    assert text.startswith("2 of 4 trained networks stopped on a plateau")
    assert f"marked {report.MARK}" in text
    done = frame_of([r for r in ROWS if r[6] is not False])
    assert report.convergence_summary(done).startswith("All 2 trained networks stopped on a plateau")


def test_the_precision_of_training_is_named_per_model():
    def record(model_title, precision, trained=True):
        return {"model_title": model_title, "config": {"precision": precision},
                "convergence": {"converged": True} if trained else None}

    assert report.training_precision([record("MLP", "fp32"), record("RF", "fp32", trained=False)]) == \
        "fp32 arithmetic"
    assert report.training_precision([record("MLP", "bf16"), record("CNN2D", "fp32"),
                                      record("CNN3D", "bf16")]) == "bf16 for MLP, CNN3D; fp32 for CNN2D"
