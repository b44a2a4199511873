"""The quantization chapter's tables and text, on hand-made records."""

import numpy as np
import pandas as pd
import pytest

from hsilib import report
from hsilib.compress import MODES, layer_dtypes
from hsilib.data import get_scene
from hsilib.models import build_model, example_input, get_model
from hsilib.reference import paper_name, paper_values
from hsilib.report import quantization


def measured(latency, memory, throughput):
    return {"params": 100, "params_all": 100, "macs_per_sample": 10, "memory_mb_serialized": memory,
            "memory_mb_theoretical": memory / 2, "latency_ms_median": latency, "throughput_per_s": throughput}


def metrics(top1):
    return {"top1": top1, "top5": 1.0, "oa": top1, "aa": top1, "kappa": 0.5}


def float32(key, top1, latency, memory, throughput=100.0):
    return {"key": key, "metrics": metrics(top1), "measure": measured(latency, memory, throughput)}


def int8(base_key, model, mode, top1, latency, memory, throughput=100.0, scene="indian_pines",
         split="disjoint", seed=0, layers=()):
    return {"key": f"{base_key}-{mode}-{seed}", "base_key": base_key, "method": mode,
            "method_title": MODES[mode].title, "model_title": get_model(model).title,
            "metrics": metrics(top1), "measure": measured(latency, memory, throughput),
            "agreement": 0.9, "wall_s": 2.0, "compress_s": 1.0, "layer_dtypes": list(layers),
            "config": {"mode": mode, "base": {"model": model, "scene": scene, "split": split,
                                               "seed": seed, "data_source": "twin"}}}


def frame_of(records, bases):
    return report.comparison_frame(records, bases={b["key"]: b for b in bases}, base_title="float32")


def layer(name, type_, weight, input_, output):
    return {"layer": name, "type": type_, "weight": weight, "input": input_, "output": output}


def test_dtype_table_shows_each_layer_per_mode_and_marks_fused_ones():
    info = get_scene("indian_pines")
    channels = get_model("cnn1d").components or info.n_bands
    float_layers = layer_dtypes(build_model("cnn1d", channels, info.n_classes), example_input("cnn1d", channels))
    static = [layer("conv1", "ConvReLU1d", "qint8", "quint8", "quint8"),
              layer("fc1", "LinearReLU", "qint8", "quint8", "quint8"),
              layer("fc2", "Linear", "qint8", "quint8", "quint8")]
    dynamic = [layer(r.layer, "DynamicLinear" if r.type == "Linear" else r.type,
                     "qint8" if r.type == "Linear" else "float32", "float32", "float32") for r in float_layers]
    decoy = [layer("conv1", "Wrong", "x", "x", "x")]
    records = [int8("m", "mlp", "static", 0.8, 1.0, 1.0, layers=decoy),  # another network: not shown
               int8("c", "cnn1d", "static", 0.8, 1.0, 1.0, layers=static),
               int8("c", "cnn1d", "dynamic", 0.8, 1.0, 1.0, layers=dynamic)]
    table = quantization.dtype_table(records, "cnn1d", "indian_pines", ["static", "dynamic"])
    assert table.columns.tolist() == ["float32", MODES["static"].title, MODES["dynamic"].title]
    assert table.index.name == f"{get_model('cnn1d').title} layer"
    assert table.index.tolist() == [r.layer for r in float_layers]
    for r in float_layers:
        assert table.loc[r.layer, "float32"] == f"{r.type}: {r.weight} ({r.input} → {r.output})"
    static_column = table[MODES["static"].title]
    assert static_column["conv1"] == "ConvReLU1d: qint8 (quint8 → quint8)"
    assert static_column["bn1"] == quantization.FOLDED  # fused into conv1
    assert (table[MODES["dynamic"].title] != quantization.FOLDED).all()
    assert table.loc["fc1", MODES["dynamic"].title] == "DynamicLinear: qint8 (float32 → float32)"


def table10_frame():
    bases = [float32("b0", 0.80, 4.0, 2.0, 100.0), float32("b1", 0.82, 6.0, 2.0, 120.0),
]
    records = [int8("b0", "cnn2d", "static", 0.81, 1.0, 0.5, 400.0, seed=0),
               int8("b1", "cnn2d", "static", 0.79, 2.0, 0.5, 300.0, seed=1),
               int8("b0", "cnn2d", "dynamic", 0.80, 2.0, 1.0, 150.0, seed=0)]
    frame = frame_of(records, bases)
    frame["label"] = report.paper_labels(frame, 10, ["cnn2d"])
    return frame


def test_cost_table_gives_ours_beside_the_papers_memory_and_speed_up():
    rows = table10_frame()
    base, static, dynamic = (paper_name(10, m) for m in ("cnn2d", "static", "dynamic"))
    order = [base, static, dynamic]
    table = quantization.cost_table(rows, order, "cnn2d")
    assert table.index.tolist() == order and table.index.name == "method"
    # Ours: the mean over the two seeds; the speed-up is each run's base latency / int8 latency.
    assert table.loc[static, "speed-up"] == pytest.approx(np.mean([4.0 / 1.0, 6.0 / 2.0]))
    assert table.loc[static, "latency ms"] == pytest.approx(1.5)
    assert table.loc[static, "memory MB, theoretical"] == pytest.approx(0.25)
    assert table.loc[base, "latency ms"] == pytest.approx(np.mean([4.0, 6.0]))
    assert table.loc[static, "throughput ratio"] == pytest.approx(np.mean([400 / 100, 300 / 120]))
    latency = paper_values(10, "latency_ms").set_index("method")["value"]
    memory = paper_values(10, "memory_mb").set_index("method")["value"]
    assert table.loc[static, "memory MB (paper)"] == memory[static]
    assert table.loc[dynamic, "latency ms (paper)"] == latency[dynamic]
    # The paper's speed-up is its float32 latency over the mode's; no speed-up for the base itself.
    assert table.loc[static, "speed-up (paper)"] == pytest.approx(latency[base] / latency[static])
    assert table.loc[dynamic, "speed-up (paper)"] == pytest.approx(latency[base] / latency[dynamic])
    assert pd.isna(table.loc[base, "speed-up (paper)"])


def test_mode_table_summarises_the_quantized_networks_with_the_data_each_mode_needs():
    bases = [float32("c", 0.80, 4.0, 2.0), float32("m", 0.70, 1.0, 0.2)]
    frame = frame_of([int8("c", "cnn2d", "static", 0.81, 1.0, 0.5),
                      int8("c", "cnn2d", "dynamic", 0.80, 2.0, 1.0),
                      int8("m", "mlp", "static", 0.70, 2.0, 0.1)], bases)  # a preview network: left out
    table = quantization.mode_table(frame, ["cnn2d"])
    assert table.index.tolist() == [MODES["static"].title, MODES["dynamic"].title]
    assert table.columns[0] == "data needed"
    assert table["data needed"].tolist() == ["unlabeled data", "no data"]  # the paper's Table 2 words
    speed = 4.0 / 1.0
    assert table.loc[MODES["static"].title, "speed-up, batch 1"] == f"×{speed:.2f} ({speed:.2f}–{speed:.2f})"
    assert table.loc[MODES["static"].title, "size"] == f"{100 * 0.5 / 2.0:.0f}% of float32"


def preview_frame():
    bases = [float32("big", 0.90, 4.0, 2.0), float32("mlp", 0.70, 0.2, 0.2),
             float32("cnn1d", 0.75, 0.4, 0.3), float32("other", 0.5, 1.0, 1.0)]
    records = [int8("big", "cnn2d", "static", 0.89, 1.0, 0.5),
               int8("mlp", "mlp", "dynamic", 0.69, 0.4, 0.08),
               int8("mlp", "mlp", "static", 0.68, 0.5, 0.06, seed=0),
               int8("mlp", "mlp", "static", 0.66, 0.3, 0.07, seed=1),
               int8("cnn1d", "cnn1d", "static", 0.74, 0.2, 0.1),
               int8("other", "mlp", "static", 0.1, 0.1, 0.01, split="random")]  # another split: left out
    return frame_of(records, bases)


def test_preview_table_orders_networks_and_modes_as_asked_for_one_setting():
    frame = preview_frame()
    table = quantization.preview_table(frame, ["cnn1d", "mlp"], ["static", "dynamic"], "indian_pines",
                                       "disjoint")
    mlp, cnn1d = get_model("mlp").title, get_model("cnn1d").title
    static, dynamic = MODES["static"].title, MODES["dynamic"].title
    assert table.index.names == ["network", "mode"]
    assert table.index.tolist() == [(cnn1d, "float32"), (cnn1d, static),
                                    (mlp, "float32"), (mlp, static), (mlp, dynamic)]
    assert table.loc[(mlp, static), "latency ms"] == pytest.approx(np.mean([0.5, 0.3]))
    assert table.loc[(mlp, static), "speed-up, batch 1"] == pytest.approx(np.mean([0.2 / 0.5, 0.2 / 0.3]))
    assert table.loc[(mlp, static), "top-1 (%)"] == pytest.approx(100 * np.mean([0.68, 0.66]))
    assert table.loc[(cnn1d, "float32"), "memory MB"] == pytest.approx(0.3)


def test_smallest_network_text_picks_the_least_memory_and_says_whether_int8_is_faster():
    frame = preview_frame()
    mlp, cnn1d, cnn2d, static = (get_model("mlp").title, get_model("cnn1d").title, get_model("cnn2d").title,
                                 MODES["static"].title)
    text = quantization.smallest_network_text(frame, "cnn2d", ["cnn1d", "mlp"], ["static", "dynamic"],
                                              "indian_pines", "disjoint")
    # The MLP's static copy of seed 0 is smallest (the other split's is not this setting), and
    # slower than its float32 network at batch 1.
    assert text == (f"The smallest network of this run, {mlp} + {static}, takes {0.06:.3f} MB, "
                    f"{2.0 / 0.06:.0f} times less than float32 {cnn2d}, with top-1 {68.0:.1f}% against "
                    f"{90.0:.1f}%. But int8 does not make a tiny network faster for free: at batch 1 its "
                    f"int8 copy runs at ×{0.2 / 0.5:.2f} the float32 speed, because converting the input "
                    "to int8 and the output back, a fixed cost per call, weighs as much as the few "
                    "multiplications of such a small network. Combined compression has to be measured, "
                    "not multiplied.")
    faster = quantization.smallest_network_text(frame, "cnn2d", ["cnn1d"], ["static"], "indian_pines",
                                                "disjoint")
    assert faster == (f"The smallest network of this run, {cnn1d} + {static}, takes {0.1:.3f} MB, "
                      f"{2.0 / 0.1:.0f} times less than float32 {cnn2d}, with top-1 {74.0:.1f}% against "
                      f"{90.0:.1f}%. At batch 1 its int8 copy runs at ×{0.4 / 0.2:.2f} the float32 speed.")
    assert quantization.smallest_network_text(frame, "cnn2d", [], ["static"], "indian_pines", "disjoint") is None
    assert quantization.smallest_network_text(frame, "cnn3d", ["mlp"], ["static", "dynamic"], "indian_pines",
                                              "disjoint") is None


def test_found_numbers_formats_each_modes_mean_over_the_quantized_networks():
    bases = [float32("b0", 0.80, 4.0, 2.0, 100.0), float32("b1", 0.80, 6.0, 2.0, 100.0),
             float32("m", 0.70, 1.0, 0.2)]
    frame = frame_of([int8("b0", "cnn2d", "static", 0.83, 1.0, 0.5, 300.0, seed=0),
                      int8("b1", "cnn2d", "static", 0.81, 4.0, 0.7, 250.0, seed=1),
                      int8("b0", "cnn2d", "dynamic", 0.7900, 3.0, 1.1, 90.0),
                      int8("m", "mlp", "qat", 0.9, 1.0, 0.1)], bases)  # not a quantized Table 10 network
    numbers = quantization.found_numbers(frame, ["cnn2d"])
    assert set(numbers) == {"static_speedup_b1", "static_speedup_b1000", "static_size", "static_change",
                            "dynamic_speedup_b1", "dynamic_size"}  # no QAT run of CNN2D: no qat_change
    assert numbers["static_speedup_b1"] == f"{np.mean([4.0 / 1.0, 6.0 / 4.0]):.2f}"
    assert numbers["static_speedup_b1000"] == f"{np.mean([3.0, 2.5]):.2f}"
    assert numbers["static_size"] == f"{100 * np.mean([0.5 / 2.0, 0.7 / 2.0]):.0f}"
    assert numbers["static_change"] == f"{100 * np.mean([0.83 - 0.80, 0.81 - 0.80]):+.2f}"
    assert numbers["static_change"].startswith("+")  # a gain is signed, as the findings print it
    assert numbers["dynamic_speedup_b1"] == f"{4.0 / 3.0:.2f}"
    assert numbers["dynamic_size"] == f"{100 * 1.1 / 2.0:.0f}"
    qat = frame_of([int8("b0", "cnn2d", "qat", 0.79, 1.0, 0.5)], bases)
    assert quantization.found_numbers(qat, ["cnn2d"]) == {"qat_change": f"{100 * (0.79 - 0.80):+.2f}"}
