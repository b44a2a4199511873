"""The one runner: a new method plugs in as a kind without touching runner
code; dependencies run first; failures are collected; records and weights
are checked when read; every record is measured the same way."""

import dataclasses
import json
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hsilib.data import TwinDataWarning
from hsilib.experiments import (KINDS, Config, CorruptRecordError, Experiment, GridError, Outcome,
                                ResultStore, register_kind, run, run_grid, trained_model)
from hsilib.train import fit, predict_scores

BASE = Config(model="mlp", epochs=2, data_source="twin")


# ---------------------------------------------------------------- a toy method

@register_kind
@dataclass(frozen=True)
class LabelSmoothing(Experiment):
    """Fine-tune a trained network with label-smoothed cross-entropy."""

    kind: ClassVar[str] = "toy_label_smoothing"
    base: Config
    smoothing: float = 0.1
    epochs: int = 1

    def key_material(self):
        return {"base": self.base.key(), "smoothing": self.smoothing, "epochs": self.epochs}

    def label(self):
        return f"{self.base.label()} smoothing {self.smoothing}"

    def network(self, data):
        return self.base.network(data)

    def execute(self, context):
        model, _ = context.trained(self.base)
        view, data = context.view(), context.data

        def smoothed(net, x, y, index):
            logits = net(x)
            return logits, {"ce": F.cross_entropy(logits.float(), y, label_smoothing=self.smoothing)}

        history = fit(model.train(), view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                      epochs=self.epochs, lr=1e-4, objective=smoothed, progress=False)
        return Outcome(predict_scores(model, view, data.test_idx), model,
                       {"history": dataclasses.asdict(history)})


def test_a_new_kind_runs_through_run_grid_with_caching_and_provenance(tmp_path):
    configs = [LabelSmoothing(BASE, s) for s in (0.1, 0.2)]
    records = run_grid(configs, store=tmp_path, device="cpu", progress=False)
    assert [r["kind"] for r in records] == ["toy_label_smoothing"] * 2
    assert [r["config"]["smoothing"] for r in records] == [0.1, 0.2]
    base = ResultStore(tmp_path).get(BASE)
    assert base is not None and base["kind"] == "train"  # the dependency ran first
    for record in records:
        assert record["base_key"] == base["key"] and record["dependencies"] == [base["key"]]
        assert record["data_source"] == "twin" and record["wall_s"] > 0
        for field in ("cpu", "threads", "versions", "git_commit", "created", "device"):
            assert record[field] is not None, field
        assert record["measure"]["params"] == base["measure"]["params"]
        assert record["history"]["terms"].keys() == {"ce"}
        # agreement with the base record's predictions, computed by the runner
        same = np.asarray(record["test_predictions"]) == np.asarray(base["test_predictions"])
        assert record["agreement"] == pytest.approx(same.mean())
        # the fine-tuned weights are kept and verified
        model, stored, _ = trained_model(LabelSmoothing(BASE, record["config"]["smoothing"]), tmp_path,
                                         progress=False)
        assert stored == record and not model.training
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")}
    again = run_grid(configs, store=tmp_path, device="cpu", progress=False)
    assert again == records
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json")} == stamps  # cache hits
    assert KINDS["toy_label_smoothing"] is LabelSmoothing


def test_a_kind_name_is_registered_once():
    with pytest.raises(ValueError, match="'train' is already registered"):
        @register_kind
        @dataclass(frozen=True)
        class Other(Config):
            pass


def test_a_failed_dependency_is_reported_and_its_dependents_skipped(tmp_path, monkeypatch):
    from hsilib.experiments import training

    def broken(config, context):
        if config.seed == 1:
            raise RuntimeError("no convergence")
        return real(config, context)

    real = training.train_torch
    monkeypatch.setitem(training.TRAINERS, "torch", broken)
    good, bad = BASE, dataclasses.replace(BASE, seed=1)
    with pytest.raises(GridError) as info:
        run_grid([LabelSmoothing(good), LabelSmoothing(bad)], store=tmp_path, device="cpu",
                 progress=False)
    failures = {e.label(): str(err) for e, err in info.value.failures}
    assert failures == {bad.label(): "no convergence",
                        LabelSmoothing(bad).label(): f"not run: {bad.resolved().label()} failed"}
    assert "2 of 4 runs failed" in str(info.value)
    assert ResultStore(tmp_path).get(LabelSmoothing(good)) is not None  # the others finished


# ---------------------------------------------------------------- the store checks what it reads

@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("engine-store"))
    return store, run(BASE, store, device="cpu", progress=False)


def copied(stored, tmp_path) -> ResultStore:
    store, record = stored
    copy = ResultStore(tmp_path / "copy")
    copy.root.mkdir()
    for suffix in (".json", ".pt"):
        (copy.root / f"{record['key']}{suffix}").write_bytes(
            (store.root / f"{record['key']}{suffix}").read_bytes())
    return copy


@pytest.mark.parametrize("damage, message", [
    ("{}", "its key is None"),
    ("[]", "holds a list, not a record"),
    ("drop metrics", "lacks metrics"),
    ("drop top5", "its metrics lack top5"),
    ("bad kind", "its kind 'mystery' is not one of"),
    (b"\xff\xfe\x00garbage", "UnicodeDecodeError"),
])
def test_a_damaged_record_is_an_error_naming_its_file(stored, tmp_path, damage, message):
    store = copied(stored, tmp_path)
    record = json.loads(store.path(stored[1]["key"]).read_text())
    if damage == "drop metrics":
        del record["metrics"]
        damage = json.dumps(record)
    elif damage == "drop top5":
        del record["metrics"]["top5"]
        damage = json.dumps(record)
    elif damage == "bad kind":
        damage = json.dumps({**record, "kind": "mystery"})
    path = store.path(stored[1]["key"])
    path.write_bytes(damage if isinstance(damage, bytes) else damage.encode())
    with pytest.raises(CorruptRecordError, match=f"{path}.*{message}.*delete it"):
        run(BASE, store, device="cpu", progress=False)
    with pytest.raises(GridError, match="damaged"):
        run_grid([BASE], store=store, device="cpu", progress=False)


@pytest.mark.parametrize("damage", ["flip a byte", "zeros"])
def test_changed_weights_are_detected_before_use(stored, tmp_path, damage):
    store = copied(stored, tmp_path)
    path = store.weights_path(stored[1]["key"])
    data = bytearray(path.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0x01
    else:
        data[:] = bytes(len(data))
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=f"{path}.*do not match their record"):
        trained_model(BASE, store, device="cpu", progress=False)


def test_weights_of_the_wrong_shape_are_a_clear_error(stored, tmp_path):
    store = copied(stored, tmp_path)
    key = stored[1]["key"]
    record = json.loads(store.path(key).read_text())
    record["weights_sha256"] = store.put_weights(key, {"fc1.weight": torch.zeros(3, 3)})
    store.put(record)
    with pytest.raises(ValueError, match=f"{store.weights_path(key)} do not fit .*delete them"):
        trained_model(BASE, store, device="cpu", progress=False)


def test_every_kind_is_measured_on_the_cpu_with_the_same_keys(stored):
    _, record = stored
    measured = record["measure"]
    assert measured["params"] == 31_047 and measured["params_all"] == 31_047
    assert measured["threads"] == 1
    assert measured["macs_per_sample"] == 200 * 143 + 143 * 16


def test_resolving_a_config_loads_no_data(monkeypatch):
    from hsilib.experiments import config as config_module

    def no_loading(*args, **kwargs):
        raise AssertionError("resolved() loaded data")

    monkeypatch.setattr(config_module, "load_scene", no_loading)
    resolved = Config(model="cnn2d", data_source="auto").resolved()
    assert resolved.data_source == "auto" and resolved.patch_size == 19 and resolved.lr == 1e-3


def test_auto_data_resolves_to_the_twin_key_without_a_cube(no_cube_here):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TwinDataWarning)
        auto = Config(model="mlp", data_source="auto")
        assert auto.key() == Config(model="mlp", data_source="twin").key()
        assert auto.key() != Config(model="mlp", data_source="real").key()


def test_auto_data_resolves_to_the_real_key_with_the_cube(real_cube_here):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TwinDataWarning)  # no fallback: the cube is there
        auto = Config(model="mlp", data_source="auto")
        assert auto.key() == Config(model="mlp", data_source="real").key()
        assert auto.key() != Config(model="mlp", data_source="twin").key()


def test_a_record_says_whether_its_network_finished_learning(stored):
    _, record = stored
    # Two epochs cannot show a plateau of the default rule: the run is not converged.
    assert record["convergence"]["converged"] is False
    assert record["convergence"]["stopped"] == "max_epochs"
    assert (record["convergence"]["epochs_run"], record["convergence"]["max_epochs"]) == (2, 2)
    assert record["history"]["stopped"] == "max_epochs" and record["config"]["precision"] == "fp32"
