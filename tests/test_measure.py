"""Measurements of models: MACs per layer, memory, latency and throughput."""

import copy
import json
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from hsilib import measure
from hsilib.measure import (LatencyStats, LayerRow, latency_ms, layer_summary, macs_per_sample,
                            measure_estimator, measure_model, serialized_memory_mb,
                            theoretical_memory_mb, throughput)
from hsilib.models import CNN2D


@pytest.fixture(scope="module")
def cnn2d() -> CNN2D:
    torch.manual_seed(0)
    return CNN2D(40, 16)


# ---------------------------------------------------------------- layer summary

def test_cnn2d_layer_shapes_params_and_macs(cnn2d):
    rows = {row.name: row for row in layer_summary(cnn2d, torch.zeros(2, 40, 19, 19))}
    assert list(rows) == ["conv1", "bn1", "conv2", "bn2", "pool", "fc1", "fc2"]  # call order
    shapes = {name: row.output_shape for name, row in rows.items()}
    assert shapes["conv1"] == (50, 15, 15)
    assert shapes["conv2"] == (100, 11, 11)
    assert shapes["pool"] == (100, 5, 5)
    assert shapes["fc1"] == (100,)
    assert shapes["fc2"] == (16,)
    # MACs from the definitions: output elements x inputs per output.
    assert rows["conv1"].macs == 50 * 15 * 15 * (40 * 5 * 5)
    assert rows["conv2"].macs == 100 * 11 * 11 * (50 * 5 * 5)
    assert rows["fc1"].macs == 2500 * 100
    assert rows["fc2"].macs == 100 * 16
    assert rows["bn1"].macs == rows["pool"].macs == 0
    # Parameters: the paper's counts, batch norm present but flagged.
    assert rows["conv1"].params == 50_050 and not rows["conv1"].is_norm
    assert rows["bn1"].params == 100 and rows["bn1"].is_norm
    assert rows["bn1"].kind == "BatchNorm2d" and rows["fc1"].kind == "Linear"
    assert all(row.calls == 1 for row in rows.values())
    assert isinstance(rows["fc2"], LayerRow)


def test_macs_per_sample_is_the_sum_and_independent_of_batch_size(cnn2d):
    rows = layer_summary(cnn2d, torch.zeros(1, 40, 19, 19))
    total = macs_per_sample(cnn2d, torch.zeros(1, 40, 19, 19))
    assert total == sum(row.macs for row in rows)
    assert total == macs_per_sample(cnn2d, torch.zeros(3, 40, 19, 19))
    assert total == 11_250_000 + 15_125_000 + 250_000 + 1_600


def test_linear_on_a_sequence_counts_every_position():
    rows = layer_summary(nn.Linear(8, 4), torch.zeros(2, 5, 8))
    assert rows[0].output_shape == (5, 4)
    assert rows[0].macs == 5 * 8 * 4


def test_grouped_and_transposed_convolutions():
    model = nn.Sequential(nn.Conv2d(4, 8, kernel_size=3, groups=4),  # depthwise-like
                          nn.ConvTranspose2d(8, 6, kernel_size=3, groups=2))
    rows = layer_summary(model, torch.zeros(2, 4, 7, 7))
    assert rows[0].output_shape == (8, 5, 5) and rows[1].output_shape == (6, 7, 7)
    assert rows[0].macs == 8 * 5 * 5 * (4 // 4 * 3 * 3)
    # Transposed: every input value is spread over out_channels / groups x kernel outputs.
    assert rows[1].macs == 8 * 5 * 5 * (6 // 2 * 3 * 3)


def test_reused_module_has_one_row_with_the_macs_of_all_calls():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            return self.fc(torch.relu(self.fc(x)))  # functional relu: no row

    rows = layer_summary(Twice(), torch.zeros(3, 6))
    assert [(row.name, row.calls, row.macs) for row in rows] == [("fc", 2, 2 * 6 * 6)]


class _Recurrent(nn.Module):
    def __init__(self, **lstm):
        super().__init__()
        self.lstm = nn.LSTM(**lstm)
        self.head = nn.Linear(lstm["hidden_size"] * (2 if lstm.get("bidirectional") else 1), 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        last = out[:, -1] if self.lstm.batch_first else out[-1]
        return self.head(last)


def test_lstm_macs_follow_the_gate_formula():
    steps, features, hidden = 7, 6, 4
    model = _Recurrent(input_size=features, hidden_size=hidden, num_layers=2, batch_first=True)
    rows = {row.name: row for row in layer_summary(model, torch.zeros(3, steps, features))}
    per_step = 4 * (features * hidden + hidden * hidden) + 4 * (hidden * hidden + hidden * hidden)
    assert rows["lstm"].macs == steps * per_step
    assert rows["lstm"].output_shape == (steps, hidden)
    assert rows["lstm"].params == sum(p.numel() for p in model.lstm.parameters())
    assert rows["head"].macs == hidden * 3


def test_time_major_bidirectional_lstm():
    steps, features, hidden = 5, 3, 2
    model = _Recurrent(input_size=features, hidden_size=hidden, num_layers=2, bidirectional=True)
    rows = {row.name: row for row in layer_summary(model, torch.zeros(steps, 4, features),
                                                   batch_dim=1)}
    layer1 = 4 * (features * hidden + hidden * hidden)
    layer2 = 4 * (2 * hidden * hidden + hidden * hidden)  # input: both directions
    assert rows["lstm"].macs == steps * 2 * (layer1 + layer2)
    assert rows["lstm"].output_shape == (steps, 2 * hidden)


def test_summary_restores_training_flags(cnn2d):
    model = copy.deepcopy(cnn2d).train()
    model.bn1.eval()  # mixed modes come back as they were
    layer_summary(model, torch.zeros(2, 40, 19, 19))
    assert model.training and model.conv1.training and not model.bn1.training


# ----------------------------------------------------------------------- memory

def test_theoretical_memory_counts_values_times_bytes():
    assert theoretical_memory_mb(nn.Linear(10, 5)) == pytest.approx(55 * 4 / 1e6)
    assert theoretical_memory_mb(nn.Linear(10, 5), bytes_per_value=1) == pytest.approx(55 / 1e6)
    # Buffers count too: running mean and variance (float32), the int64 counter.
    with_norm = nn.Sequential(nn.Linear(10, 5), nn.BatchNorm1d(5))
    assert theoretical_memory_mb(with_norm) == pytest.approx(((55 + 10 + 10) * 4 + 8) / 1e6)
    assert theoretical_memory_mb(with_norm, bytes_per_value=1) == pytest.approx(76 / 1e6)


def test_cnn2d_theoretical_memory_against_table_4(cnn2d):
    # 426,866 counted parameters x 4 B = 1.71 MB (Table 4); batch norm adds
    # 300 parameters, 300 running statistics and two int64 counters.
    assert theoretical_memory_mb(cnn2d) == pytest.approx((426_866 + 600) * 4 / 1e6 + 16 / 1e6)
    assert round(theoretical_memory_mb(cnn2d), 2) == 1.71


def test_serialized_size_is_close_to_the_values_and_halves_in_float16(cnn2d):
    theoretical = theoretical_memory_mb(cnn2d)
    serialized = serialized_memory_mb(cnn2d)
    assert theoretical <= serialized <= 1.2 * theoretical + 0.01
    half = serialized_memory_mb(copy.deepcopy(cnn2d).half())
    assert half == pytest.approx(serialized / 2, rel=0.1)


def test_quantized_layers_count_their_packed_weights():
    with warnings.catch_warnings():  # eager-mode quantization warns it is deprecated
        warnings.simplefilter("ignore")
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
        model = nn.Sequential(DynamicLinear(10, 5), nn.ReLU())
        rows = layer_summary(model, torch.zeros(2, 10))
    assert [(row.name, row.params, row.macs) for row in rows] == [("0", 55, 50), ("1", 0, 0)]
    # int8 weights, float32 bias; the parameters() of the module are empty.
    assert theoretical_memory_mb(model) == pytest.approx((50 * 1 + 5 * 4) / 1e6)
    assert serialized_memory_mb(model) >= (50 * 1 + 5 * 4) / 1e6


# ---------------------------------------------------------------------- latency

def test_latency_of_a_sleeping_predict_is_in_milliseconds():
    stats = latency_ms(lambda x: time.sleep(0.005), None, runs=5, warmup=1)
    assert isinstance(stats, LatencyStats) and stats.runs == 5
    assert 4.5 <= stats.median_ms <= stats.p95_ms <= 30
    assert 4.5 <= stats.mean_ms <= 30


@pytest.fixture(params=["threadpoolctl", "torch only"])
def thread_control(request, monkeypatch):
    """Run a test with and without threadpoolctl: its exit also resets the
    OpenMP threads torch uses, which would hide a missing restore of ours."""
    if request.param == "torch only":
        monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    return request.param


def test_latency_sets_threads_and_inference_mode_then_restores_threads(thread_control):
    seen = []

    def predict(x):
        seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled()))
        return x * 2

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        stats = latency_ms(predict, torch.ones(1, 4), runs=10, warmup=2, threads=1)
        assert torch.get_num_threads() == 3
        assert seen == [(1, True)] * 12
        assert 0 < stats.median_ms <= stats.p95_ms
    finally:
        torch.set_num_threads(before)


def test_latency_restores_threads_when_predict_raises(thread_control):
    def predict(x):
        raise RuntimeError("broken model")

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        with pytest.raises(RuntimeError, match="broken model"):
            latency_ms(predict, None, runs=3, warmup=0, threads=1)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_throughput_is_batch_size_over_call_time():
    per_second = throughput(lambda x: time.sleep(0.01), np.zeros((100, 3)), runs=3, warmup=0)
    assert per_second == pytest.approx(10_000, rel=0.3)


# ------------------------------------------------------------------ all at once

KEYS = {"params_per_layer", "params", "norm_params", "params_all", "macs_per_sample", "memory_mb_theoretical",
        "memory_mb_serialized", "latency_ms_median", "latency_ms_p95", "throughput_per_s",
        "threads"}


def test_measure_model_is_json_ready_and_restores_training_mode(cnn2d, monkeypatch):
    timed = []
    monkeypatch.setattr(measure, "throughput",
                        lambda predict, batch, threads: timed.append((len(batch), threads)) or 123.0)
    model = copy.deepcopy(cnn2d).train()
    result = measure_model(model, torch.zeros(1, 40, 19, 19),
                           throughput_batch=torch.zeros(4, 40, 19, 19), runs=3, warmup=1)
    assert set(result) == KEYS
    assert json.loads(json.dumps(result)) == result
    assert model.training and all(m.training for m in model.modules())
    assert result["params"] == 426_866 and result["norm_params"] == 300
    assert result["params_per_layer"]["fc2"] == 1_616
    assert result["macs_per_sample"] == 26_626_600
    assert result["threads"] == 1
    assert 0 < result["latency_ms_median"] <= result["latency_ms_p95"]
    assert result["throughput_per_s"] == 123.0 and timed == [(4, 1)]


def test_measure_model_without_throughput_batch_keeps_eval_mode(cnn2d):
    model = copy.deepcopy(cnn2d).eval()
    result = measure_model(model, torch.zeros(1, 40, 19, 19), runs=2, warmup=0)
    assert result["throughput_per_s"] is None
    assert not model.training


def test_measure_estimator_has_the_same_keys_and_times_predict(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    timed = []
    monkeypatch.setattr(measure, "throughput", lambda predict, batch, threads: timed.append(
        (predict.__name__, len(batch), threads)) or 321.0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 5)), np.repeat([0, 1, 2], 20)
    estimator = LogisticRegression(max_iter=200).fit(x, y)
    result = measure_estimator(estimator, x[:1], throughput_batch=x, runs=3, warmup=1)
    assert set(result) == KEYS
    assert json.loads(json.dumps(result)) == result
    assert result["params"] is None and result["macs_per_sample"] is None
    # The pickle holds at least the 3 x 5 coefficients and 3 intercepts in float64.
    assert result["memory_mb_serialized"] >= 18 * 8 / 1e6
    assert 0 < result["latency_ms_median"] <= result["latency_ms_p95"]
    assert result["throughput_per_s"] == 321.0 and timed == [("predict", 60, 1)]
