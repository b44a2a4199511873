"""Result tables: ours beside the paper's, with the difference."""

import numpy as np
import pandas as pd
import pytest

from hsilib import report
from hsilib.compress.prune import get_criterion
from hsilib.data.twin import TWIN_VERSION
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


# ---------------------------------------------------------------- compressed beside its base

def measured(latency, memory, throughput, params=100):
    return {"params": params, "params_all": params, "macs_per_sample": 10, "memory_mb_serialized": memory,
            "memory_mb_theoretical": memory, "latency_ms_median": latency, "throughput_per_s": throughput}


def metrics(top1):
    return {"top1": top1, "top5": 1.0, "oa": top1, "aa": top1, "kappa": 0.5}


def compressed(key, base_key, method, top1, latency, memory, throughput, seed=0, **extra):
    return {"key": key, "base_key": base_key, "method": method, "method_title": method.title(),
            "model_title": "CNN2D", "metrics": metrics(top1), "measure": measured(latency, memory, throughput),
            "agreement": 0.9, "wall_s": 2.0, "compress_s": 1.0,
            "config": {"mode": method, "base": {"model": "cnn2d", "scene": "indian_pines",
                                                 "split": "disjoint", "seed": seed, "data_source": "twin"}},
            **extra}


def test_comparison_frame_puts_each_compressed_network_beside_its_base():
    base = {"key": "b", "metrics": metrics(0.80), "measure": measured(4.0, 2.0, 100.0)}
    same_run = compressed("q1", "b", "static", 0.82, 1.0, 0.5, 400.0,
                          base_metrics=metrics(0.81), base_measure=measured(3.0, 2.0, 80.0))
    from_record = compressed("q2", "b", "dynamic", 0.79, 2.0, 1.0, 150.0)
    frame = report.comparison_frame([same_run, from_record], bases={"b": base}, base_title="float32")
    assert frame["method"].tolist() == ["base", "static", "dynamic"]
    static, dynamic = frame.iloc[1], frame.iloc[2]
    # Measured in the same run: compared with those numbers, not the base record's.
    assert static["latency_speedup"] == pytest.approx(3.0) and static["size_ratio"] == pytest.approx(0.25)
    assert static["throughput_ratio"] == pytest.approx(5.0)
    assert static["top1_change"] == pytest.approx(1.0)
    # Without them, the base's own record.
    assert dynamic["latency_speedup"] == pytest.approx(2.0) and dynamic["size_ratio"] == pytest.approx(0.5)
    assert dynamic["top1_change"] == pytest.approx(-1.0)
    # One base row: the mean of the base's measurements over the runs that name it.
    assert frame.iloc[0]["method_title"] == "float32"
    assert frame.iloc[0]["latency_ms"] == pytest.approx(3.5)
    with pytest.raises(ValueError, match="q2 was not measured beside its base b"):
        report.comparison_frame([from_record])


def test_compression_summary_gives_each_method_its_means_and_ranges():
    base = {"key": "b", "metrics": metrics(0.80), "measure": measured(4.0, 2.0, 100.0)}
    frame = report.comparison_frame(
        [compressed("a", "b", "static", 0.82, 1.0, 0.5, 400.0),
         compressed("c", "b", "static", 0.78, 2.0, 0.5, 200.0, seed=1)], bases={"b": base})
    summary = report.compression_summary(frame)
    assert summary.index.tolist() == ["static"]
    assert summary.loc["static", "speed-up, batch 1"] == "×3.00 (2.00–4.00)"
    assert summary.loc["static", "size"] == "25% of the base"
    assert summary.loc["static", "top-1 change (points)"] == f"0.0 ± {np.std([2.0, -2.0], ddof=1):.1f}"


def test_paper_labels_name_rows_as_the_table_prints_them():
    frame = pd.DataFrame({"method": ["base", "static", "base", "static"],
                          "model": ["cnn2d", "cnn2d", "mlp", "mlp"],
                          "model_title": ["CNN2D (c=40)", "CNN2D (c=40)", "MLP", "MLP"],
                          "method_title": ["float32", "Static Quantization"] * 2})
    assert report.paper_labels(frame, 10, ["cnn2d"]).tolist() == [
        "CNN2D", "Static Quantization", "MLP", "MLP + Static Quantization"]


# ---------------------------------------------------------------- the pruning chapter's tables

def train_record(key, model, top1, widths=None, scene="indian_pines", split="disjoint", seed=0):
    config = {"model": model, "scene": scene, "split": split, "seed": seed, "data_source": "twin",
              "epochs": 5, "widths": widths}
    return {"key": key, "kind": "train", "config": config, "model_title": model.upper(),
            "metrics": metrics(top1), "measure": {**measured(1.0, 0.2, 100.0), "params_all": 100},
            "wall_s": 1.0}


def prune_record(key, method, ratio, strategy, top1, kept=None, **setting):
    base = train_record("b", "cnn2d", 0.9, **setting)["config"]
    return {**train_record(key, "cnn2d", top1, **setting), "kind": "prune", "method": method,
            "method_title": get_criterion(method).title, "ratio": ratio,
            "strategy": strategy, "total_epochs": 2, "kept": kept, "agreement": 0.9,
            "config": {"base": base, "criterion": method, "ratio": ratio, "strategy": strategy}}


def test_networks_frame_labels_groups_and_ratios_as_tables_6_to_8_print_them():
    from hsilib.reference import PRUNING_TABLES
    from hsilib.report import networks

    frame = networks.networks_frame([
        train_record("a", "mlp", 0.80), train_record("c", "cnn2d", 0.85),
        train_record("s", "cnn2d", 0.78, widths=[5, 10, 10]),
        prune_record("p", "l1", "98%", "I", 0.82)])
    assert frame[["method", "group", "ratio"]].values.tolist() == [
        ["MLP", "baseline", ""], ["CNN-2D", "baseline", ""], ["Pruned CNN2D", "scratch", "98%"],
        ["L1-norm pruning", "prune", "98%"]]
    table = networks.ratio_table(frame, "98%", "top1",
                                 ["MLP", "CNN-1D", "CNN-2D", "Pruned CNN2D", "L1-norm pruning"],
                                 PRUNING_TABLES)
    assert table.index.tolist() == ["MLP", "CNN-2D", "Pruned CNN2D", "L1-norm pruning"]
    cell = table.loc["L1-norm pruning", ("Indian Pines", "Disjoint")]
    paper = paper_values(8, "top1", method="L1-norm pruning", dataset="indian_pines",
                         split="disjoint", setting="98%")["value"].item()
    assert cell["ours"] == "82.0" and cell["paper"] == paper and cell["Δ"] == pytest.approx(82.0 - paper)


def test_kept_overlap_is_the_mean_jaccard_index_over_settings():
    from hsilib.report import pruning

    records = [prune_record("a", "l1", "90%", "I", 0.8, kept={"conv1": [0, 1, 2, 3]}),
               prune_record("b", "thinet", "90%", "I", 0.8, kept={"conv1": [2, 3, 4, 5]}),
               prune_record("c", "l1", "90%", "I", 0.8, kept={"conv1": [0, 1]}, seed=1),
               prune_record("d", "thinet", "90%", "I", 0.8, kept={"conv1": [0, 1]}, seed=1)]
    table = pruning.kept_overlap(records, "conv1")
    assert table.loc["L1-norm pruning", "ThiNet"] == pytest.approx((2 / 6 + 1.0) / 2)
    assert table.loc["ThiNet", "ThiNet"] == 1.0


def test_validation_by_epoch_averages_the_first_steps_history_per_criterion():
    from hsilib.report import pruning

    def with_history(record, *steps):
        return {**record, "steps": [{"history": {"val_oa": list(v)}} for v in steps]}

    records = [with_history(prune_record("a", "l1", "90%", "I", 0.8), (0.5, 0.9)),
               with_history(prune_record("b", "l1", "98%", "I", 0.8), (0.3, 0.7)),
               with_history(prune_record("c", "thinet", "90%", "I", 0.8), (0.2, 0.4)),
               with_history(prune_record("d", "thinet", "90%", "II", 0.8), (0.0, 0.0), (1.0, 1.0))]
    table = pruning.validation_by_epoch(records)
    assert list(table.columns) == ["epoch 1", "epoch 2"]
    assert table.loc["L1-norm pruning"].tolist() == [40.0, 80.0]
    assert table.loc["ThiNet"].tolist() == [20.0, 40.0]  # strategy II's run is not strategy I's
    assert pruning.validation_by_epoch(records, "II").loc["ThiNet"].tolist() == [0.0, 0.0]
    # Runs stopped at their own plateau: a later epoch is the mean of the runs that reached it.
    records.append(with_history(prune_record("e", "l1", "95%", "I", 0.8), (0.6, 0.8, 0.9)))
    table = pruning.validation_by_epoch(records)
    assert table.loc["L1-norm pruning"].tolist() == [pytest.approx(46.7), pytest.approx(80.0), 90.0]
    assert np.isnan(table.loc["ThiNet", "epoch 3"])


def test_table_4_and_table_5_follow_from_the_widths():
    from hsilib.report import pruning

    table4 = pruning.parameter_table("indian_pines")
    for ratio, total in (("90%", 49_321), ("95%", 25_386), ("98%", 8_951)):
        row = table4.loc[f"Prune ({ratio})"]
        assert row["total"] == row["total (paper)"] == total
        assert row["MB, checkpoint with Adam"] == pytest.approx(row["MB (paper)"], abs=0.015)
    assert table4.loc["CNN2D", "fc2"] == 1_616 and table4.loc["CNN2D", "fc2 (paper)"] == 909
    widths = pruning.width_table()
    assert (widths.xs("ours", axis=1, level=1).to_numpy() == widths.xs("paper", axis=1, level=1).to_numpy()).all()


# ---------------------------------------------------------------- the frontier

def frontier_rows(points):
    return pd.DataFrame([{"scene": "indian_pines", "split": "disjoint", "label": label, "top1": top1,
                          "memory_kb": kb} for label, top1, kb in points])


def test_a_dominated_point_leaves_the_front_unchanged_and_a_dominating_one_changes_it():
    from hsilib.report.frontier import pareto_front

    frame = frontier_rows([("big", 90.0, 1700.0), ("small", 80.0, 40.0), ("middle", 85.0, 200.0),
                           ("bad", 70.0, 500.0)])
    front = set(frame["label"][pareto_front(frame, "memory_kb")])
    assert front == {"big", "small", "middle"}
    dominated = pd.concat([frame, frontier_rows([("worse", 84.0, 300.0)])], ignore_index=True)
    assert set(dominated["label"][pareto_front(dominated, "memory_kb")]) == front
    dominating = pd.concat([frame, frontier_rows([("better", 86.0, 150.0)])], ignore_index=True)
    assert set(dominating["label"][pareto_front(dominating, "memory_kb")]) == {"big", "small", "better"}


def test_best_under_a_budget_picks_the_most_accurate_network_that_fits():
    from hsilib.report.frontier import best_under

    frame = frontier_rows([("big", 90.0, 1700.0), ("small", 80.0, 40.0), ("middle", 85.0, 200.0)])
    table = best_under(frame, "memory_kb", [50.0, 250.0, 10.0])
    assert table["best network"].tolist() == ["small", "middle", "-"]


def test_family_means_and_gains_over_scratch_follow_the_rows():
    from hsilib.report import distillation

    rows = []
    for seed in (0, 1, 2, 3):
        common = {"scene": "indian_pines", "split": "disjoint", "seed": seed, "ratio": "90%"}
        rows += [{**common, "method": "Pruned CNN2D", "group": "scratch", "top1": 80.0 + seed},
                 {**common, "method": "DML", "group": "online", "top1": 82.0 + seed + 0.1 * seed},
                 {**common, "method": "Soft targets", "group": "offline", "top1": 79.0 + seed + 0.05 * seed}]
    frame = pd.DataFrame(rows)
    means = distillation.family_means(frame)
    assert means.loc["online", "ours"] == pytest.approx(np.mean([82.0 + 1.1 * s for s in range(4)]))
    assert means.loc["online", "paper"] == pytest.approx(
        distillation.paper_family_means().loc["online", "all cells"])
    gains = distillation.gains_over_scratch(frame)
    assert gains.loc["DML", "better than Scratch?"] == "holds"
    assert gains.loc["Soft targets", "better than Scratch?"] == "fails"
    assert gains.loc["DML", "paired runs gaining"] == "4 of 4"


def test_metrics_table_gives_mean_and_spread_over_seeds_and_agreement_where_there_is_one():
    from hsilib.report import metrics_table

    rows = pd.DataFrame({"scene": "indian_pines", "split": "disjoint", "method": ["A", "A", "B"],
                         "top1": [80.0, 82.0, 70.0], "top5": [99.0, 99.0, 98.0], "aa": [70.0, 72.0, 60.0],
                         "kappa": [0.8, 0.82, 0.7]})
    table = metrics_table(rows)
    assert list(table.columns) == ["OA (%)", "top-5 (%)", "AA (%)", "kappa"]
    assert table.loc[("indian_pines", "disjoint", "A"), "OA (%)"] == "81.0 ± 1.4"
    assert table.loc[("indian_pines", "disjoint", "B"), "kappa"] == "0.700"
    compared = metrics_table(rows.assign(agreement=[0.95, 0.97, 0.9], label=["a", "a", "b"]), by="label")
    assert compared.loc[("indian_pines", "disjoint", "a"), "agreement (%)"] == "96.0 ± 1.4"
    assert compared.index.names == ["scene", "split", "method"]


def test_a_chapter_names_twin_data_loudly_and_real_data_plainly():
    from types import SimpleNamespace

    from hsilib.report import DataSourceNote

    def scene(title, twin):
        return SimpleNamespace(scene=SimpleNamespace(title=title), is_twin=twin)

    mixed = DataSourceNote.of({"a": scene("Indian Pines", True), "b": scene("Pavia University", False)})
    assert mixed.twin and mixed.label.startswith("TWIN DATA") and mixed.words == "the offline twin"
    # A caption names which scene is the twin and which is real.
    assert mixed.label.startswith("TWIN DATA for Indian Pines (") and mixed.label.endswith(
        "; real data for Pavia University")
    note = mixed.note("pruning behaves", "3 runs.")
    assert note.startswith(f"**Data source: Indian Pines: TWIN v{TWIN_VERSION} (synthetic spectra); "
                           "Pavia University: real cube.**")
    assert "how pruning behaves" in note and "**not** a reproduction" in note and note.endswith(" 3 runs.")
    assert "Results on Indian Pines come from the offline twin" in note
    assert "Results on Pavia University are on the real published cube." in note
    twin = DataSourceNote.of({"a": scene("Indian Pines", True)})
    assert twin.label == "TWIN DATA (synthetic spectra over the real ground truth)"
    assert "These results come from the offline twin" in twin.note("pruning behaves")
    real = DataSourceNote.of({"b": scene("Pavia University", False)})
    assert (real.label, real.words) == ("real data", "the real cubes")
    assert "reproduction" not in real.note("pruning behaves") and "TWIN" not in real.note("pruning behaves")


def test_sfp_regrowth_averages_each_runs_epochs_then_the_runs():
    from hsilib.report import pruning

    def sfp(key, strategy, regrowth):
        return {**prune_record(key, "sfp", "90%", strategy, 0.8), "steps": [{"regrowth": list(regrowth)}]}

    # Runs stopped after different numbers of epochs: 3 and 1 (a pooled mean of the epochs would be 0.15).
    records = [sfp("a", "I", (0.1, 0.1, 0.1)), sfp("b", "I", (0.3,)), sfp("c", "II", (0.9, 0.9)),
               prune_record("d", "l1", "90%", "I", 0.8)]
    assert pruning.sfp_regrowth(records) == pytest.approx(0.2)
    assert pruning.sfp_regrowth(records, "II") == pytest.approx(0.9)
    assert pruning.sfp_regrowth(records[3:]) is None
