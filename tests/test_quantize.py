"""8-bit quantization: what each mode converts, what it saves, how closely it
follows the float model, its errors, and the cached quantization runs.

Expectations come from first principles: an int8 weight is 1 byte where a
float32 one is 4, so an int8 copy of a network whose values are nearly all
weights is about a quarter of its size; quantization changes bytes, never the
number of parameters; and a model quantized from a trained float model should
classify (nearly) every pixel as that model does.
"""

from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from hsilib import measure
from hsilib.compress import QuantConfig
from hsilib.compress import quantization
from hsilib.compress.quantization import LabelledData, layer_dtypes, quantize
from hsilib.data.load import TwinDataWarning
from hsilib.experiments import Config, ResultStore, run, runner
from hsilib.models import get_model
from hsilib.train import predict_scores

MODES = ("dynamic", "static", "qat")
# A cheap base network for the tests of the cached runs.
MLP_BASE = Config(model="mlp", epochs=1, data_source="twin")
BANDS, CLASSES = 200, 16  # Indian Pines' standardized bands and classes


def _state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


# --------------------------------------------------------------------------
# Fixtures: the trained CNN2D and its three int8 copies, made once
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn2d(trained_cnn2d):
    """The session's trained CNN2D (the paper's: 40 PCA components, 19x19
    patches, on the Indian Pines twin), with an example batch and its
    float predictions."""
    view, data = trained_cnn2d["view"], trained_cnn2d["data"]
    return {**trained_cnn2d, "example": view(data.test_idx[:1]),
            "fp32_predictions": predict_scores(trained_cnn2d["model"], view, data.test_idx).argmax(axis=1)}


@pytest.fixture(scope="module")
def quantized(cnn2d):
    """``{mode: Quantized}`` of the trained CNN2D, with the float model's
    state before and after each call (to check it is left untouched)."""
    model, data, view = cnn2d["model"], cnn2d["data"], cnn2d["view"]
    rng = np.random.default_rng(0)
    calibration_idx = rng.permutation(data.fit_idx)[:1000]
    # QAT fine-tunes one epoch on 1,500 of the fitting pixels (a third of them, to save time).
    subset = rng.permutation(len(data.fit_idx))[:1500]
    training = LabelledData(view, data.fit_idx[subset], data.fit_y[subset], data.val_idx, data.val_y)
    before = _state_copy(model)
    flags_before = [(name, m.training, type(m)) for name, m in model.named_modules()]
    out, after, training_flags = {}, {}, {}
    for mode in MODES:
        torch.manual_seed(0)
        out[mode] = quantize(model, mode, cnn2d["example"], calibration=view(calibration_idx),
                             training=training, qat_epochs=1)
        after[mode] = _state_copy(model)
        training_flags[mode] = [(name, m.training, type(m)) for name, m in model.named_modules()]
    return {"models": out, "before": before, "after": after, "flags": training_flags,
            "flags_before": flags_before}


@pytest.fixture
def restore_engine():
    """The process-wide quantized engine, put back after the test."""
    engine = torch.backends.quantized.engine
    try:
        yield engine
    finally:
        torch.backends.quantized.engine = engine


def _small(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return get_model(name).build(BANDS, CLASSES, 1).eval()


def _spectra(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, BANDS, generator=torch.Generator().manual_seed(seed))


def _weight_and_bias_counts(model: nn.Module) -> tuple[int, int]:
    """Weight and bias values of the conv and linear layers of a float model."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    return (sum(m.weight.numel() for m in layers),
            sum(m.bias.numel() for m in layers if m.bias is not None))


# --------------------------------------------------------------------------
# 1. What each mode converts
# --------------------------------------------------------------------------

def test_fp32_model_is_float32_everywhere(cnn2d):
    rows = layer_dtypes(cnn2d["model"], cnn2d["example"])
    assert [row.layer for row in rows] == ["conv1", "bn1", "conv2", "bn2", "fc1", "fc2"]
    for row in rows:
        assert (row.weight, row.input, row.output) == ("float32", "float32", "float32"), row


@pytest.mark.parametrize("mode", ["static", "qat"])
def test_static_and_qat_are_int8_end_to_end_with_fused_layers(cnn2d, quantized, mode):
    rows = layer_dtypes(quantized["models"][mode].model, cnn2d["example"])
    assert [row.layer for row in rows] == ["conv1", "conv2", "fc1", "fc2"]
    for row in rows:
        assert (row.weight, row.input, row.output) == ("qint8", "quint8", "quint8"), row
    types = {row.layer: row.type for row in rows}
    assert types["conv1"] == types["conv2"] == "ConvReLU2d"  # conv + batch norm + ReLU fused
    assert types["fc1"] == "LinearReLU"
    assert not any("BatchNorm" in row.type or row.layer.startswith("bn") for row in rows)


def test_dynamic_quantizes_only_the_linear_layers(cnn2d, quantized):
    rows = {row.layer: row for row in layer_dtypes(quantized["models"]["dynamic"].model,
                                                   cnn2d["example"])}
    for name in ("conv1", "conv2"):  # PyTorch's dynamic mode has no quantized convolution
        assert (rows[name].weight, rows[name].input, rows[name].output) == \
            ("float32", "float32", "float32")
    for name in ("fc1", "fc2"):  # int8 weights; inputs quantized inside the call
        assert (rows[name].weight, rows[name].input, rows[name].output) == \
            ("qint8", "float32", "float32")


# --------------------------------------------------------------------------
# 2. Size and parameter count
# --------------------------------------------------------------------------

def test_cnn2d_has_the_papers_parameter_count(cnn2d):
    # Table 3: 426,866 parameters (batch norm left out).
    per_layer = measure.parameters_per_layer(cnn2d["model"])
    assert per_layer == {"conv1": 50_050, "conv2": 125_100, "fc1": 250_100, "fc2": 1_616}


@pytest.mark.parametrize("mode", MODES)
def test_quantization_changes_bytes_not_the_parameter_count(cnn2d, quantized, mode):
    assert measure.parameters_per_layer(quantized["models"][mode].model) == \
        measure.parameters_per_layer(cnn2d["model"])


@pytest.mark.parametrize("mode", ["static", "qat"])
def test_static_and_qat_are_about_a_quarter_of_the_float_size(cnn2d, quantized, mode):
    fp32, q = cnn2d["model"], quantized["models"][mode].model
    assert measure.serialized_memory_mb(q) <= 0.30 * measure.serialized_memory_mb(fp32)
    assert measure.theoretical_memory_mb(q) <= 0.30 * measure.theoretical_memory_mb(fp32)
    # Derived: 1 byte per weight, biases kept in float32 (4 bytes); batch norm
    # folded into the convolutions; 5% for activation scales and zero points.
    weights, biases = _weight_and_bias_counts(fp32)
    assert weights * 1 <= measure.theoretical_memory_mb(q) * 1e6 <= (weights + 4 * biases) * 1.05


def test_dynamic_shrinks_only_the_linear_layers(cnn2d, quantized):
    fp32, q = cnn2d["model"], quantized["models"]["dynamic"].model
    ratio = measure.serialized_memory_mb(q) / measure.serialized_memory_mb(fp32)
    assert 0.30 < ratio < 1.0
    # Convolutions (and batch norm) stay at 4 bytes a value, the linear weights take 1.
    conv_and_bn = sum(p.numel() for name, p in fp32.named_parameters() if not name.startswith("fc"))
    fc = fp32.fc1.weight.numel() + fp32.fc2.weight.numel()
    assert measure.theoretical_memory_mb(q) * 1e6 >= 4 * conv_and_bn + fc
    # Each linear weight goes from 4 bytes to 1; everything else is as it was.
    saved = (measure.theoretical_memory_mb(fp32) - measure.theoretical_memory_mb(q)) * 1e6
    assert saved == pytest.approx(3 * fc, rel=0.01)


# --------------------------------------------------------------------------
# 3. Agreement with the float model
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_predictions_agree_with_the_float_model(cnn2d, quantized, mode):
    view, test_idx = cnn2d["view"], cnn2d["data"].test_idx
    fp32 = cnn2d["fp32_predictions"]
    int8 = predict_scores(quantized["models"][mode].model, view, test_idx).argmax(axis=1)
    assert len(int8) == len(test_idx)
    assert (int8 == fp32).mean() >= 0.95


def test_qat_keeps_the_float_models_accuracy(cnn2d, quantized):
    """QAT goes on training the (one-epoch) float network, so its predictions
    may move; what it must not do is lose accuracy to quantization."""
    data, view = cnn2d["data"], cnn2d["view"]
    int8 = predict_scores(quantized["models"]["qat"].model, view, data.test_idx).argmax(axis=1)
    assert len(int8) == len(data.test_idx)
    assert (int8 == data.test_y).mean() >= (cnn2d["fp32_predictions"] == data.test_y).mean() - 0.02


def test_qat_fine_tunes_for_the_requested_epochs(quantized):
    history = quantized["models"]["qat"].history
    assert len(history.train_loss) == len(history.val_oa) == 1 and history.best_epoch == 1
    assert quantized["models"]["static"].history is None
    assert quantized["models"]["dynamic"].calibration_used is None


# --------------------------------------------------------------------------
# 4. The float model is untouched
# --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_quantize_leaves_the_float_model_untouched(quantized, mode):
    before, after = quantized["before"], quantized["after"][mode]
    assert list(after) == list(before)
    for name, tensor in before.items():
        assert after[name].dtype == tensor.dtype and torch.equal(after[name], tensor), name
    # No layer fused or swapped in place, no train/eval flag changed (QAT trains a copy).
    assert quantized["flags"][mode] == quantized["flags_before"]


# --------------------------------------------------------------------------
# 5. Errors
# --------------------------------------------------------------------------

def test_unknown_mode_names_the_accepted_ones():
    with pytest.raises(ValueError, match="unknown quantization mode 'int4'.*dynamic, static, qat"):
        quantize(_small("mlp"), "int4")


def test_unknown_engine_is_a_value_error():
    with pytest.raises(ValueError, match="unknown quantization engine 'tpu'.*x86, fbgemm, qnnpack"):
        quantize(_small("mlp"), "dynamic", engine="tpu")


def test_engine_missing_from_this_torch_build_is_named(monkeypatch, restore_engine):
    # supported_engines is a read-only property of torch's module object: patch its class.
    monkeypatch.setattr(type(torch.backends.quantized), "supported_engines", ["x86", "fbgemm"])
    with pytest.raises(RuntimeError, match="'qnnpack' is not available"):
        quantize(_small("mlp"), "dynamic", engine="qnnpack")
    with pytest.raises(RuntimeError, match="'qnnpack' is not available"):
        QuantConfig(MLP_BASE, "dynamic", engine="qnnpack")


def test_qat_needs_labelled_data():
    model, x = _small("mlp"), _spectra(20)
    view = lambda idx: x[torch.as_tensor(idx)]  # noqa: E731
    idx, y = np.arange(10), np.arange(10) % CLASSES
    with pytest.raises(ValueError, match="labelled"):
        quantize(model, "qat", x[:1], training=None)
    unlabelled = LabelledData(view, idx, None, idx + 10, y)
    with pytest.raises(ValueError, match="labelled"):
        quantize(model, "qat", x[:1], training=unlabelled)
    with pytest.raises(ValueError, match="labelled"):
        quantize(model, "qat", x[:1], training=LabelledData(view, idx, y, idx + 10, None))


def test_static_needs_calibration_inputs():
    model, x = _small("mlp"), _spectra(20)
    with pytest.raises(ValueError, match="calibration_samples must be at least 1, got 0"):
        quantize(model, "static", x[:1], calibration=x, calibration_samples=0)
    with pytest.raises(ValueError, match="calibration inputs"):
        quantize(model, "static", x[:1], calibration=None)
    with pytest.raises(ValueError, match="calibration inputs"):
        quantize(model, "static", x[:1], calibration=torch.empty(0, BANDS))
    with pytest.raises(ValueError, match="example input"):
        quantize(model, "static", None, calibration=x)


def test_unknown_observer_names_the_accepted_ones():
    x = _spectra(20)
    with pytest.raises(ValueError, match="unknown observer 'median'.*histogram, minmax, moving_average"):
        quantize(_small("mlp"), "static", x[:1], calibration=x, observer="median")


def test_quant_config_errors():
    with pytest.raises(ValueError, match="unknown quantization mode 'int4'"):
        QuantConfig(MLP_BASE, "int4")
    with pytest.raises(ValueError, match="calibration_samples must be at least 1, got 0"):
        QuantConfig(MLP_BASE, "static", calibration_samples=0)
    with pytest.raises(ValueError, match="'svm' is not a torch network"):
        QuantConfig(Config(model="svm", data_source="twin"), "dynamic")
    with pytest.raises(ValueError, match="unknown observer"):
        QuantConfig(MLP_BASE, "static", observer="median")
    with pytest.raises(ValueError, match="qat_epochs must be >= 1"):
        QuantConfig(MLP_BASE, "qat", qat_epochs=0)


# --------------------------------------------------------------------------
# 6. Warnings
# --------------------------------------------------------------------------

def test_quantize_raises_no_warning_and_restores_the_filters():
    torch.manual_seed(0)
    model = get_model("cnn2d").build(40, CLASSES, 11).eval()
    x = torch.randn(60, 40, 11, 11, generator=torch.Generator().manual_seed(0))
    labels = np.arange(60) % CLASSES
    view = lambda idx: x[torch.as_tensor(idx)]  # noqa: E731
    training = LabelledData(view, np.arange(40), labels[:40], np.arange(40, 60), labels[40:], 20)
    for mode in MODES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any warning is an exception
            filters = list(warnings.filters)
            q = quantize(model, mode, x[:2], calibration=x, training=training, qat_epochs=1)
            assert warnings.filters == filters, f"{mode}: quantize left its filters behind"
            out = q.model(x[:3])
        assert out.shape == (3, CLASSES) and out.dtype == torch.float32


# --------------------------------------------------------------------------
# 7. Engine
# --------------------------------------------------------------------------

def test_quantize_selects_the_engine_and_the_model_runs_on_it(restore_engine):
    model, x = _small("mlp"), _spectra(200)
    q = quantize(model, "static", x[:1], engine="qnnpack", calibration=x)
    assert q.engine == "qnnpack"
    assert torch.backends.quantized.engine == "qnnpack"
    probe = _spectra(200, seed=1)
    out = q.model(probe)
    assert out.shape == (200, CLASSES) and torch.isfinite(out).all()
    with torch.no_grad():
        assert (out.argmax(1) == model(probe).argmax(1)).float().mean() >= 0.9


def test_a_rejected_call_does_not_change_the_engine(restore_engine):
    # The engine is process-wide: a call that fails its argument checks
    # should leave it as it was.
    x = _spectra(20)
    torch.backends.quantized.engine = "x86"
    with pytest.raises(ValueError, match="unknown observer"):
        quantize(_small("mlp"), "static", x[:1], engine="qnnpack", calibration=x, observer="median")
    assert torch.backends.quantized.engine == "x86"


# --------------------------------------------------------------------------
# 8. Calibration
# --------------------------------------------------------------------------

def test_calibration_used_is_what_was_available_up_to_the_limit():
    model, x = _small("mlp"), _spectra(50)
    assert quantize(model, "static", x[:1], calibration=x, calibration_samples=1000).calibration_used == 50
    assert quantize(model, "static", x[:1], calibration=x, calibration_samples=10).calibration_used == 10
    assert quantize(model, "dynamic").calibration_used is None


def test_calibration_sets_the_activation_ranges():
    model, x = _small("mlp"), _spectra(500)
    # minmax: the range of 500 samples contains that of the first one, so its scale is larger.
    one = quantize(model, "static", x[:1], calibration=x, calibration_samples=1, observer="minmax")
    many = quantize(model, "static", x[:1], calibration=x, calibration_samples=500, observer="minmax")
    assert float(many.model.fc1.scale) > float(one.model.fc1.scale)
    probe = _spectra(100, seed=1)
    assert not torch.equal(one.model(probe), many.model(probe))
    # The default (histogram) observer too gives different models.
    one = quantize(model, "static", x[:1], calibration=x, calibration_samples=1)
    many = quantize(model, "static", x[:1], calibration=x, calibration_samples=500)
    assert not torch.equal(one.model(probe), many.model(probe))


# --------------------------------------------------------------------------
# 9. The spectral models
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mlp", "cnn1d"])
def test_static_quantizes_every_layer_of_the_spectral_models(name):
    model, x = _small(name), _spectra(300)
    q = quantize(model, "static", x[:1], calibration=x).model
    weighted = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d))]
    rows = {row.layer: row for row in layer_dtypes(q, x[:2])}
    for layer in weighted:
        assert rows[layer].weight == "qint8", rows[layer]
        assert rows[layer].input == rows[layer].output == "quint8", rows[layer]
    assert measure.parameters_per_layer(q) == measure.parameters_per_layer(model)
    # The values: 1 byte a weight (biases stay float32) against 4.
    assert measure.theoretical_memory_mb(q) <= 0.30 * measure.theoretical_memory_mb(model)
    # The file adds fixed costs the float file has less of: the archive itself
    # (torch.save of an empty dict) and the per-channel weight scale (float64)
    # and zero point (int64) of every output channel.
    empty = io.BytesIO()
    torch.save({}, empty)
    channels = sum(m.out_features if isinstance(m, nn.Linear) else m.out_channels
                   for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d)))
    bound = 0.30 * measure.serialized_memory_mb(model) * 1e6 + empty.getbuffer().nbytes + 16 * channels
    assert measure.serialized_memory_mb(q) * 1e6 <= bound


def test_cnn1d_file_is_under_a_third_of_the_float_file():
    model, x = _small("cnn1d"), _spectra(300)
    q = quantize(model, "static", x[:1], calibration=x).model
    assert measure.serialized_memory_mb(q) <= 0.30 * measure.serialized_memory_mb(model)


# --------------------------------------------------------------------------
# 10. Cached quantization runs
# --------------------------------------------------------------------------

def test_quantization_runs_through_the_runner_and_is_cached(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    config = QuantConfig(MLP_BASE, "static")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TwinDataWarning)
        record = run(config, store, device="cpu", progress=False)
        base_model, base_record, data = runner.trained_model(MLP_BASE, store, progress=False)
    assert record["key"] == config.key() and record["kind"] == "quantize"
    assert record["base_key"] == MLP_BASE.key() == base_record["key"]
    assert record["dependencies"] == [MLP_BASE.key()]
    # Agreement: the share of test pixels where int8 and float32 predictions match.
    view = runner.config_view(MLP_BASE.resolved(), data)
    fp32 = predict_scores(base_model, view, data.test_idx).argmax(axis=1)
    assert record["agreement"] == pytest.approx((np.asarray(record["test_predictions"]) == fp32).mean())
    assert record["base_metrics"]["top1"] == pytest.approx((fp32 == data.test_y).mean())
    assert record["calibration_used"] == min(1000, record["counts"]["fit"])
    assert record["measure"]["params"] == record["base_measure"]["params"] == 31_047
    assert record["measure"]["memory_mb_serialized"] < 0.5 * record["base_measure"]["memory_mb_serialized"]
    assert {row["weight"] for row in record["layer_dtypes"]} == {"qint8"}
    assert len(record["test_predictions"]) == record["counts"]["test"] == len(data.test_idx)
    assert not store.weights_path(record["key"]).exists()  # packed int8 weights are not kept
    path = store.path(record["key"])
    stamp = path.stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("a cached quantization run was recomputed")

    monkeypatch.setattr(quantization, "quantize", boom)
    monkeypatch.setattr(runner, "trained_model", boom)
    assert run(config, store, device="cpu", progress=False) == record
    assert path.stat().st_mtime_ns == stamp


def test_quant_config_key_follows_the_settings_each_mode_uses():
    def key(mode, base=MLP_BASE, **settings):
        return QuantConfig(base, mode, **settings).key()

    assert key("static") == key("static")
    assert len({key(mode) for mode in MODES}) == 3
    assert key("static", calibration_samples=10) != key("static")
    assert key("static", observer="minmax") != key("static")
    assert key("dynamic", calibration_samples=10) == key("dynamic")
    assert key("qat", calibration_samples=10) == key("qat")
    assert key("qat", qat_epochs=1) != key("qat")
    assert key("static", qat_epochs=1) == key("static")
    assert key("dynamic", qat_epochs=1) == key("dynamic")
    other_seed = dataclasses.replace(MLP_BASE, seed=1)
    for mode in MODES:
        assert key(mode, other_seed) != key(mode), mode
        assert key(mode, engine="qnnpack") != key(mode), mode
