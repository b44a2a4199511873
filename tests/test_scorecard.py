"""The reproduction scorecard: which published cell a run is, how close it
comes, and that twin cells are counted apart and never scored."""

import pytest

from hsilib import report
from hsilib.reference import paper_value

IP, PU = "indian_pines", "pavia_university"


def trained(key, model, title, scene, top1, source="real", converged=True, widths=None):
    return {"key": key, "kind": "train", "model_title": title, "data_source": source,
            "config": {"model": model, "scene": scene, "split": "disjoint", "seed": 0,
                       "pca_fit": "train", "widths": widths},
            "metrics": {"top1": top1 / 100, "top5": 0.99}, "convergence": {"converged": converged}}


def pruned(key, base, method, strategy, ratio, top1):
    return {"key": key, "kind": "prune", "base_key": base["key"], "method": method,
            "method_title": method, "strategy": strategy, "ratio": ratio, "model_title": "CNN2D (c=40)",
            "data_source": "real", "config": {"base": base["config"]},
            "metrics": {"top1": top1 / 100, "top5": 0.99}, "convergence": {"converged": False}}


@pytest.fixture
def cells():
    cnn2d_paper = paper_value(3, "CNN2D (c=40)", "top1", IP, "disjoint")
    mlp_paper = paper_value(3, "MLP", "top1", IP, "disjoint")
    cnn2d = trained("a", "cnn2d", "CNN2D (c=40)", IP, cnn2d_paper + 1.5)  # within 2 points, not 1
    mlp = trained("b", "mlp", "MLP", IP, mlp_paper + 3.0)  # beyond 2, within 5
    twin = trained("c", "mlp", "MLP", PU, 50.0, source="twin")  # counted apart
    leak = {**trained("d", "mlr", "MLR", IP, 10.0), "config": {**cnn2d["config"], "model": "mlr",
                                                                  "pca_fit": "image"}}
    l1 = pruned("e", cnn2d, "l1", "I", "90%", paper_value(6, "L1-norm pruning", "top1", IP, "disjoint",
                                                           "90%") - 7.0)
    return report.paper_cells([cnn2d, mlp, twin, leak, l1])


def test_each_run_is_the_published_cells_it_describes(cells):
    table3 = cells[(cells["table"] == 3)].set_index(["method", "dataset"])
    assert sorted(table3.index) == [("CNN2D (c=40)", IP), ("MLP", IP), ("MLP", PU)]  # not the leak run
    assert table3.loc[("CNN2D (c=40)", IP), "difference"] == pytest.approx(1.5)
    # The baselines sit in Tables 6-8, 10 and 11-13 too; the L1 run in Table 6 and in Table 9 (strategy I).
    l1 = cells[(cells["method"].isin(["L1-norm pruning", "I"])) & (cells["metric"] == "top1")]
    assert sorted(zip(l1["table"], l1["setting"])) == [(6, "90%"), (9, "90%")]
    assert l1.loc[l1["table"] == 6, "difference"].item() == pytest.approx(-7.0)
    assert set(cells.loc[cells["table"] == 10, "method"]) == {"CNN2D", "MLP"}


def test_within_two_points_is_counted_and_beyond_is_not_and_the_twin_is_left_out(cells):
    card = report.scorecard(cells)
    assert card.loc[3, "real cells"] == 2 and card.loc[3, "twin cells (excluded)"] == 1
    assert card.loc[3, "within ±1"] == 0.0
    assert card.loc[3, "within ±2"] == 0.5
    assert card.loc[3, "within ±5"] == 1.0
    assert card.loc[3, "mean difference"] == pytest.approx(2.25)
    assert card.loc[6, "unconverged"] == 2  # the L1 run's top-1 and top-5 cells


def test_the_largest_deviation_comes_first_with_its_convergence(cells):
    worst = report.largest_deviations(cells, 1).iloc[0]
    assert worst["difference"] == pytest.approx(-7.0) and not worst["converged"]


def test_the_summary_says_what_share_is_within_two_points(cells):
    text = report.scorecard_summary(cells)["scorecard_text"]
    assert "twin and are not scored" in text and "stopped at their maximum" in text


def test_without_real_cells_nothing_is_called_a_reproduction():
    twin = trained("c", "mlp", "MLP", PU, 50.0, source="twin")
    cells = report.paper_cells([twin])
    assert report.scorecard(cells).loc[3, "real cells"] == 0
    assert report.scorecard_summary(cells)["scorecard_text"].startswith("No cell of this run was computed")
