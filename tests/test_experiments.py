"""Experiments: config validation and keys, the result store, determinism,
no test information in training, and grids that resume and run on executors."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from hsilib import experiments
from hsilib.data import Split, make_split
from hsilib.experiments import Config, ResultStore, data as experiment_data_module, run, run_grid
from hsilib.experiments import runner, training

# Small, fast configs: an MLP on the Indian Pines twin, one or two epochs.
FAST = Config(scene="indian_pines", split="disjoint", model="mlp", epochs=2, data_source="twin")


def drop_seconds(history: dict) -> dict:
    """A training history without its wall time, which no two runs share."""
    return {k: v for k, v in history.items() if k != "seconds"}


def test_config_errors_name_the_bad_value_and_the_accepted_ones():
    cases = [({"model": "resnet"}, "unknown model 'resnet'.*cnn2d"),
             ({"scene": "mars"}, "mars"),
             ({"split": "checkerboard"}, "unknown split 'checkerboard'.*random, disjoint"),
             ({"patch_size": 18}, "patch_size must be an odd integer from 1 to 63"),
             ({"components": 0}, "components must be"),
             ({"epochs": 0}, "epochs must be"),
             ({"data_source": "cloud"}, "unknown data_source 'cloud'.*auto, real, twin")]
    for change, message in cases:
        with pytest.raises((ValueError, KeyError), match=message):
            Config(**change)


def test_key_is_stable_and_changes_with_any_field():
    base = FAST.key()
    assert Config(**dataclasses.asdict(FAST)).key() == base
    assert FAST.resolved().key() == base  # defaults made explicit: same experiment
    assert dataclasses.replace(FAST, lr=1e-3).key() == base  # the paper's IP rate is the default
    for change in ({"seed": 1}, {"epochs": 3}, {"lr": 5e-4}, {"split": "random"},
                   {"components": 40}, {"pca_fit": "image"}, {"precision": "bf16"}):
        assert dataclasses.replace(FAST, **change).key() != base, change


def test_training_fields_do_not_split_scikit_learn_records():
    mlr = dataclasses.replace(FAST, model="mlr")
    assert dataclasses.replace(mlr, epochs=50, precision="bf16", lr=0.1).key() == mlr.key()
    assert dataclasses.replace(mlr, seed=1).key() != mlr.key()


def test_resolved_fills_the_paper_defaults():
    up = Config(scene="pavia_university", model="cnn2d", data_source="twin").resolved()
    assert (up.lr, up.components, up.patch_size, up.data_source) == (8e-4, 40, 19, "twin")
    assert Config(model="mlp", data_source="twin").resolved().components == "all"


def test_same_config_twice_gives_identical_metrics(tmp_path):
    first = run(FAST, tmp_path / "a", device="cpu", progress=False)
    second = run(FAST, tmp_path / "b", device="cpu", progress=False)
    assert first["metrics"] == second["metrics"]
    assert first["test_predictions"] == second["test_predictions"]
    assert drop_seconds(first["history"]) == drop_seconds(second["history"])
    assert first["data_source"] == "twin" and first["config"]["data_source"] == "twin"
    assert first["device"] == "cpu" and first["versions"]["torch"] == torch.__version__
    assert first["wall_s"] > first["history"]["seconds"] > 0
    assert datetime.fromisoformat(first["created"]) <= datetime.now(timezone.utc)
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()
    assert first["git_commit"].startswith(head)


def test_rerun_is_a_cache_hit_and_a_changed_config_is_a_new_record(tmp_path):
    store = ResultStore(tmp_path)
    record = run(FAST, store, device="cpu", progress=False)
    path = store.path(record["key"])
    stamp = path.stat().st_mtime_ns
    assert run(FAST, store, device="cpu", progress=False)["created"] == record["created"]
    assert path.stat().st_mtime_ns == stamp
    other = run(dataclasses.replace(FAST, seed=1), store, device="cpu", progress=False)
    assert other["key"] != record["key"]
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_corrupted_record_is_a_clear_error(tmp_path):
    store = ResultStore(tmp_path)
    store.path(FAST.key()).write_text('{"key": "trunc')
    with pytest.raises(ValueError, match="damaged.*delete it"):
        run(FAST, store, progress=False)


def test_no_test_information_reaches_training(tmp_path, monkeypatch):
    """Scramble the test labels and drop half of the test pixels: training,
    model selection and every prediction on the remaining pixels must not change."""
    honest = run(FAST, tmp_path / "honest", device="cpu", progress=False)
    real_split = make_split(FAST.scene, FAST.split)
    test = real_split.test.copy().ravel()
    test_index = np.flatnonzero(test >= 0)
    rng = np.random.default_rng(0)
    test[test_index] = rng.permutation(test[test_index])
    test[test_index[::2]] = -1
    tampered_split = Split("disjoint", real_split.train, test.reshape(real_split.test.shape))
    monkeypatch.setattr(experiment_data_module, "make_split", lambda *a, **k: tampered_split)
    experiment_data_module._data.cache_clear()  # the honest run's data is cached
    tampered = run(FAST, tmp_path / "tampered", device="cpu", progress=False)
    experiment_data_module._data.cache_clear()
    assert drop_seconds(tampered["history"]) == drop_seconds(honest["history"])
    assert tampered["counts"]["fit"] == honest["counts"]["fit"]
    kept = np.asarray(honest["test_predictions"])[1::2]
    assert np.array_equal(np.asarray(tampered["test_predictions"]), kept)
    assert tampered["metrics"]["top1"] < honest["metrics"]["top1"] - 0.2  # labels were scrambled


def test_sklearn_model_runs_through_the_same_path(tmp_path):
    record = run(dataclasses.replace(FAST, model="mlr"), tmp_path, device="cpu", progress=False)
    assert record["selection"]["chosen"]
    assert record["metrics"]["top1"] > 0.5
    assert record["metrics"]["n"] == len(record["test_predictions"]) == record["counts"]["test"]


GRID_SCRIPT = textwrap.dedent("""
    import sys
    from hsilib.experiments import Config, run_grid
    configs = [Config(scene="indian_pines", split="disjoint", model="mlp", epochs=1,
                      data_source="twin", seed=s) for s in range(6)]
    run_grid(configs, store=sys.argv[1], device="cpu", progress=False)
""")


@pytest.mark.slow
def test_killed_grid_resumes_without_recomputing(tmp_path):
    store = tmp_path / "store"
    script = tmp_path / "grid.py"
    script.write_text(GRID_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(store)], env=os.environ.copy())
    deadline = time.time() + 120
    while time.time() < deadline and len(list(store.glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in store.glob("*.json")}
    assert 2 <= len(finished) < 6, "the grid should have been killed midway"
    for p in store.glob("*.json"):
        json.loads(p.read_text())  # every record on disk is complete
    configs = [Config(scene="indian_pines", split="disjoint", model="mlp", epochs=1,
                      data_source="twin", seed=s) for s in range(6)]
    records = run_grid(configs, store=store, device="cpu", progress=False)
    assert [r["config"]["seed"] for r in records] == list(range(6))
    for name, stamp in finished.items():
        assert (store / name).stat().st_mtime_ns == stamp, "a finished run was recomputed"
    assert len(list(store.glob("*.json"))) == 6


@pytest.mark.slow
def test_grid_on_a_local_process_pool(tmp_path):
    configs = [dataclasses.replace(FAST, epochs=1, seed=s) for s in range(2)]
    with experiments.local_pool(workers=2) as pool:
        records = run_grid(configs, executor=pool, store=tmp_path, device="cpu", progress=False)
    assert [r["config"]["seed"] for r in records] == [0, 1]
    assert records[0]["threads"] == max(1, (os.cpu_count() or 1) // 2)
    # The same configs in this process give the same numbers.
    local = run(configs[1], tmp_path / "local", device="cpu", progress=False)
    assert local["test_predictions"] == records[1]["test_predictions"]


@pytest.mark.slow
def test_workers_run_a_grid_on_its_own_pool_that_ends_with_it(tmp_path):
    import multiprocessing

    configs = [dataclasses.replace(FAST, epochs=1, seed=s) for s in range(2)]
    records = run_grid(configs, store=tmp_path, device="cpu", progress=False, workers=2)
    assert [r["config"]["seed"] for r in records] == [0, 1]
    assert records[0]["threads"] == max(1, (os.cpu_count() or 1) // 2)  # a pool worker's share
    assert not multiprocessing.active_children()
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="workers must be a positive integer"):
            run_grid(configs, store=tmp_path, workers=bad)


@pytest.mark.slow
def test_grid_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    configs = [dataclasses.replace(FAST, epochs=1, seed=s) for s in range(2)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        records = run_grid(configs, executor=client.get_executor(), store=tmp_path, device="cpu",
                           progress=False)
    assert sorted(p.stem for p in Path(tmp_path).glob("*.json")) == sorted(r["key"] for r in records)
    # The same configs in this process give the same predictions.
    local = run(configs[1], tmp_path / "local", device="cpu", progress=False)
    assert local["test_predictions"] == records[1]["test_predictions"]


def test_failed_runs_are_reported_after_the_others_finish(tmp_path, monkeypatch):
    configs = [dataclasses.replace(FAST, epochs=1, seed=s) for s in range(2)]
    real_run = runner.run

    def flaky(config, *args, **kwargs):
        if config.seed == 0:
            raise RuntimeError("boom")
        return real_run(config, *args, **kwargs)

    monkeypatch.setattr(runner, "run", flaky)
    with pytest.raises(RuntimeError, match="1 of 2 runs failed: mlp/indian_pines/disjoint/seed 0"):
        run_grid(configs, store=tmp_path, device="cpu", progress=False)
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_config_grid_crosses_list_axes_and_fixes_the_rest():
    configs = experiments.config_grid(scene="indian_pines", model=["mlp", "cnn2d"], seed=[0, 1],
                                      epochs=3, data_source="twin")
    assert [(c.model, c.seed) for c in configs] == [("mlp", 0), ("mlp", 1), ("cnn2d", 0), ("cnn2d", 1)]
    assert {c.epochs for c in configs} == {3}
    assert experiments.config_grid(model=[], seed=[0]) == []
    with pytest.raises(KeyError, match="unknown model .nope."):
        experiments.config_grid(model=["mlp", "nope"])


def test_per_model_grid_gives_each_model_its_epochs():
    configs = experiments.per_model_grid(["mlp", "cnn2d"], 5, {"mlp": 50}, scene="indian_pines",
                                         seed=[0, 1])
    assert [(c.model, c.epochs, c.seed) for c in configs] == [
        ("mlp", 50, 0), ("mlp", 50, 1), ("cnn2d", 5, 0), ("cnn2d", 5, 1)]
    with pytest.raises(KeyError, match="unknown model 'mpl'"):
        experiments.per_model_grid(["mlp"], 5, {"mpl": 50})


# ---------------------------------------------------------------- stored weights

import shutil  # noqa: E402

import torch  # noqa: E402

from hsilib.models import get_model  # noqa: E402
from hsilib.train import predict_scores  # noqa: E402


@pytest.fixture(scope="module")
def weights_run(tmp_path_factory):
    """One torch run (bf16, so the record's precision matters) in a store of
    its own; tests that damage the store work on a copy."""
    config = dataclasses.replace(FAST, epochs=1, precision="bf16")
    store = ResultStore(tmp_path_factory.mktemp("weights-store"))
    record = run(config, store, device="cpu", progress=False)
    return config, store, record


def copy_store(store: ResultStore, tmp_path: Path) -> ResultStore:
    shutil.copytree(store.root, tmp_path / "store")
    return ResultStore(tmp_path / "store")


def no_training(*args, **kwargs):
    raise AssertionError("the stored weights should have been loaded, not retrained")


def test_torch_run_stores_weights_that_reproduce_its_predictions(weights_run, monkeypatch):
    config, store, record = weights_run
    state = store.load_weights(record["key"], record["weights_sha256"])
    data = experiments.experiment_data(config.resolved())
    fresh = get_model("mlp").build(data.features.shape[2], data.n_classes, 1)
    assert list(state) == list(fresh.state_dict())
    assert all(state[k].shape == v.shape and state[k].device.type == "cpu"
               for k, v in fresh.state_dict().items())
    monkeypatch.setattr(training, "fit", no_training)
    monkeypatch.setattr(runner, "_execute", no_training)
    model, loaded_record, loaded_data = experiments.trained_model(config, store, device="cpu",
                                                                 progress=False)
    assert loaded_record == record
    assert not model.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    view = experiments.model_view(get_model("mlp"), loaded_data.features, 1)
    scores = predict_scores(model, view, loaded_data.test_idx, precision=record["config"]["precision"])
    assert scores.argmax(axis=1).tolist() == record["test_predictions"]


def test_corrupted_weights_are_a_clear_error(weights_run, tmp_path):
    config, store, record = weights_run
    store = copy_store(store, tmp_path)
    store.weights_path(record["key"]).write_bytes(b"PK\x03\x04 not a torch archive" * 10)
    with pytest.raises(ValueError, match="do not match their record.*delete both"):
        store.load_weights(record["key"], record["weights_sha256"])
    with pytest.raises(ValueError, match="do not match their record"):
        experiments.trained_model(config, store, device="cpu", progress=False)


def test_record_without_weights_is_retrained_and_its_weights_stored(weights_run, tmp_path, monkeypatch):
    config, store, record = weights_run
    store = copy_store(store, tmp_path)
    path = store.weights_path(record["key"])
    path.unlink()
    assert store.load_weights(record["key"], record["weights_sha256"]) is None
    assert store.load(record["key"]) is not None
    calls = []
    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    model, new_record, _ = experiments.trained_model(config, store, device="cpu", progress=False)
    assert len(calls) == 1
    assert path.is_file()
    assert new_record["test_predictions"] == record["test_predictions"]  # same seed, same model
    stored = store.load_weights(record["key"], new_record["weights_sha256"])
    assert all(torch.equal(stored[k], v) for k, v in model.state_dict().items())


def test_trained_model_of_a_scikit_learn_model_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="'mlr' is a scikit-learn model"):
        experiments.trained_model(dataclasses.replace(FAST, model="mlr"), tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing stored


def test_put_weights_is_atomic(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    first = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    sha = store.put_weights("k", first)
    assert sorted(os.listdir(tmp_path)) == ["k.pt"]  # no temporary file left behind
    assert all(torch.equal(store.load_weights("k", sha)[n], t) for n, t in first.items())

    def disk_full(fd):  # the bytes are in the temporary file, not yet on disk
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError, match="disk full"):
            store.put_weights("k", {"w": torch.zeros(2, 3), "b": torch.zeros(2)})
    assert sorted(os.listdir(tmp_path)) == ["k.pt"]
    kept = store.load_weights("k", sha)
    assert list(kept) == ["w", "b"] and all(torch.equal(kept[n], t) for n, t in first.items())
