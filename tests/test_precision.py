"""``precision="auto"``: bf16 only where the device runs it natively and a
cached micro-benchmark measures it faster; fp32 otherwise. Keys and records
hold the resolved precision."""

import json

import pytest
import torch

from hsilib import precision as precision_module
from hsilib.experiments import Config
from hsilib.precision import choose, resolve_precision, step_seconds


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine whose bf16 support and benchmark timings the test sets;
    counts benchmark calls; the cache in a fresh results directory."""
    monkeypatch.setenv("HSILIB_RESULTS_DIR", str(tmp_path / "results"))
    state = {"native": False, "seconds": {"fp32": 1.0, "bf16": 0.5}, "benchmarks": 0}

    def benchmark(model_name, device):
        state["benchmarks"] += 1
        return dict(state["seconds"])

    monkeypatch.setattr(precision_module, "native_bf16", lambda device: state["native"])
    monkeypatch.setattr(precision_module, "benchmark", benchmark)
    return state


def test_auto_is_fp32_without_native_bf16_and_runs_no_benchmark(machine):
    assert resolve_precision("auto", "cnn2d", "cpu") == "fp32"
    assert machine["benchmarks"] == 0
    assert not precision_module.cache_path().exists()


def test_auto_is_bf16_with_native_bf16_when_it_is_faster(machine):
    machine["native"] = True
    assert resolve_precision("auto", "cnn2d", "cpu") == "bf16"
    assert choose("cnn2d", "cpu") == {"precision": "bf16", "native_bf16": True,
                                      "seconds": {"fp32": 1.0, "bf16": 0.5}}


def test_auto_is_fp32_with_native_bf16_when_it_is_not_faster(machine):
    machine["native"] = True
    machine["seconds"] = {"fp32": 1.0, "bf16": 0.95}  # within the noise margin
    assert resolve_precision("auto", "cnn2d", "cpu") == "fp32"


def test_the_benchmark_runs_once_per_machine_and_model(machine):
    machine["native"] = True
    for _ in range(3):
        resolve_precision("auto", "cnn2d", "cpu")
    resolve_precision("auto", "mlp", "cpu")
    assert machine["benchmarks"] == 2
    cache = json.loads(precision_module.cache_path().read_text())
    assert sorted(entry.split("/")[1] for entry in cache) == ["cnn2d", "mlp"]


def test_a_damaged_cache_is_measured_again(machine):
    machine["native"] = True
    path = precision_module.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert resolve_precision("auto", "cnn2d", "cpu") == "bf16"
    assert machine["benchmarks"] == 1 and json.loads(path.read_text())


def test_explicit_precisions_are_kept_and_unknown_ones_refused(machine):
    machine["native"] = True
    assert resolve_precision("fp32", "cnn2d", "cpu") == "fp32"
    assert resolve_precision("bf16", "cnn2d", "cpu") == "bf16"
    assert machine["benchmarks"] == 0
    with pytest.raises(ValueError, match="unknown precision 'fp16'; accepted: auto, fp32, bf16"):
        resolve_precision("fp16", "cnn2d", "cpu")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        Config(precision="fp16")


def test_scikit_learn_models_need_no_precision(machine):
    machine["native"] = True
    assert resolve_precision("auto", "svm", "cpu") == "fp32" and machine["benchmarks"] == 0


@pytest.mark.parametrize("native", [False, True])
def test_the_key_hashes_the_resolved_precision(machine, native):
    machine["native"] = native
    chosen = "bf16" if native else "fp32"
    auto = Config(model="cnn2d", data_source="twin")
    assert auto.precision == "auto"
    assert auto.key() == Config(model="cnn2d", data_source="twin", precision=chosen).key()
    other = "fp32" if native else "bf16"
    assert auto.key() != Config(model="cnn2d", data_source="twin", precision=other).key()


def test_a_compression_resolves_its_networks_precision(machine):
    from hsilib.compress import QuantConfig
    from hsilib.experiments.config import resolve

    machine["native"] = True
    resolved = resolve(QuantConfig(Config(model="cnn2d", data_source="twin"), "static"), "cpu")
    assert resolved.base.precision == "bf16"


def test_the_benchmark_times_real_training_steps_for_long_enough(monkeypatch):
    # An MLP step takes about a millisecond: three would time scheduler noise.
    seconds = step_seconds("mlp", "fp32", torch.device("cpu"))
    assert len(seconds) >= precision_module.BENCH_STEPS and all(s > 0 for s in seconds)
    assert sum(seconds) >= precision_module.BENCH_MIN_SECONDS or len(seconds) == precision_module.BENCH_MAX_STEPS
    monkeypatch.setattr(precision_module, "BENCH_MIN_SECONDS", 0.0)
    assert len(step_seconds("mlp", "fp32", torch.device("cpu"))) == precision_module.BENCH_STEPS


def test_the_benchmark_reports_the_fastest_step(monkeypatch):
    # Other work on the machine only adds time: a slow step says nothing of the network.
    steps = iter([[0.9, 0.3, 0.4], [0.2, 0.6, 0.5], [0.35, 0.3], [0.25, 0.7]])
    monkeypatch.setattr(precision_module, "step_seconds", lambda model, precision, device: next(steps))
    assert precision_module.benchmark("cnn2d", torch.device("cpu")) == {"fp32": 0.3, "bf16": 0.2}


@pytest.mark.parametrize(("value", "native"), [("0", False), ("1", True)])
def test_the_environment_can_deny_or_grant_native_bf16(monkeypatch, value, native):
    monkeypatch.setenv("HSILIB_NATIVE_BF16", value)
    assert precision_module.native_bf16(torch.device("cpu")) is native


def test_a_wrong_override_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HSILIB_NATIVE_BF16", "yes")
    with pytest.raises(ValueError, match="HSILIB_NATIVE_BF16='yes'; accepted: 0, 1 or unset"):
        precision_module.native_bf16(torch.device("cpu"))
