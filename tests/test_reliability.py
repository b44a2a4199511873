"""Nothing lost, nothing silently wrong, every bad input a clear error: the
faults a user meets (numbers as in the reliability report), each tested."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hsilib.data import PatchSampler, make_split
from hsilib.data import files as files_module
from hsilib.experiments import Config, ResultStore, run, run_grid, training

FAST = Config(scene="indian_pines", split="disjoint", model="mlp", epochs=1, data_source="twin")
ROOT = Path(__file__).resolve().parents[1]


def python(script: str, *args: str, **kwargs) -> subprocess.Popen:
    """Start ``script`` in a fresh interpreter (this repository importable)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], env=env, **kwargs)


# 3 ------------------------------------------------------------ unwritable store

def test_an_unwritable_store_is_found_before_training(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(tmp_path)) and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    def no_training(*args, **kwargs):
        raise AssertionError("training started although nothing could be stored")

    monkeypatch.setattr(os, "open", read_only)
    monkeypatch.setattr(training, "fit", no_training)
    with pytest.raises(PermissionError, match=f"{tmp_path}.*not writable.*HSILIB_RESULTS_DIR"):
        run(FAST, tmp_path, device="cpu", progress=False)


# 4 ------------------------------------------------------------ interrupts and orphans

GRID = """
    import signal, sys, threading
    from hsilib.experiments import Config, local_pool, run_grid
    # Ctrl-C as at a terminal: a shell starts background jobs with SIGINT
    # ignored, and the test may run in one.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    configs = [Config(model="mlp", epochs=3, data_source="twin", seed=s) for s in range(40)]
    with local_pool(workers=2, threads_per_worker=1) as pool:
        # The pool starts its workers with the first tasks: name them a moment later.
        threading.Timer(3, lambda: print("workers", *pool._processes, flush=True)).start()
        run_grid(configs, executor=pool, store=sys.argv[1], device="cpu", progress=False)
"""


def wait_for_records(store: Path, count: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and len(list(store.glob("*.json"))) < count:
        time.sleep(0.05)
    assert len(list(store.glob("*.json"))) >= count, "the grid did not start"


@pytest.mark.slow
def test_an_interrupted_grid_stops_and_writes_nothing_more(tmp_path):
    store = tmp_path / "store"
    proc = python(GRID, str(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_records(store, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    stopped = sorted(p.name for p in store.glob("*.json"))
    time.sleep(3)  # queued or running work would have finished some more by now
    assert sorted(p.name for p in store.glob("*.json")) == stopped
    assert len(stopped) < 40
    assert not list(store.glob("*.lock"))


@pytest.mark.slow
def test_workers_end_when_their_parent_is_killed(tmp_path):
    proc = python(GRID, str(tmp_path / "store"), stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line[:1] == ["workers"] and len(line) == 3, line
    workers = [int(pid) for pid in line[1:]]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    alive = workers
    while time.time() < deadline and alive:
        alive = [pid for pid in workers if _alive(pid)]
        time.sleep(0.2)
    assert not alive, f"workers {alive} outlived their parent"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")  # a zombie is dead


# 5 ------------------------------------------------------------ one key, two processes

SAME_KEY = """
    import sys
    from hsilib.experiments import Config, run, training
    real_fit = training.fit
    def counted(*args, **kwargs):
        with open(sys.argv[2], "a") as fh:
            fh.write("trained\\n")
        return real_fit(*args, **kwargs)
    training.fit = counted
    record = run(Config(model="cnn2d", epochs=1, data_source="twin", patch_size=11),
                 sys.argv[1], device="cpu", progress=False)
    print(record["key"], record["created"], record["wall_s"])
"""


@pytest.mark.slow
def test_one_key_run_by_two_processes_trains_once(tmp_path):
    store, marks = tmp_path / "store", tmp_path / "trained.txt"
    first = python(SAME_KEY, str(store), str(marks), stdout=subprocess.PIPE, text=True)
    while not list(store.glob("*.lock")):  # the first holds the key ...
        assert first.poll() is None, "the first process ended before claiming the key"
        time.sleep(0.01)
    second = python(SAME_KEY, str(store), str(marks), stdout=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=300)[0].split() for p in (first, second)]
    assert first.returncode == second.returncode == 0
    assert outputs[0] == outputs[1]  # ... and the second returns the very same record
    assert marks.read_text().splitlines() == ["trained"]


def test_a_claim_whose_owner_died_is_broken(tmp_path):
    store = ResultStore(tmp_path)
    store.root.mkdir(exist_ok=True)
    dead = python("pass")
    dead.wait()
    (tmp_path / "k.lock").write_text(f"{os.uname().nodename} {dead.pid}")
    start = time.time()
    with store.claim("k"):
        assert (tmp_path / "k.lock").read_text().split()[1] == str(os.getpid())
    assert time.time() - start < 5 and not (tmp_path / "k.lock").exists()


# 6 ------------------------------------------------------------ downloads

def test_a_failed_download_leaves_no_partial_file(tmp_data_dir, monkeypatch):
    from hsilib.data import get_scene

    scene = get_scene("pavia_university")
    remote = dataclasses.replace(scene.gt, url="http://127.0.0.1:9/PaviaU_gt.mat")
    monkeypatch.setenv("HSILIB_OFFLINE", "0")

    def interrupted(url, known_hash, fname, path, **kwargs):
        (Path(path) / "tmpabc123").write_bytes(b"half a file")  # as pooch leaves it
        raise ConnectionError("connection reset mid-download")

    monkeypatch.setattr(files_module.pooch, "retrieve", interrupted)
    with pytest.raises(files_module.DataNotFoundError, match="connection reset"):
        files_module.download(remote, files_module.local_path(scene, remote))
    leftovers = [p for p in tmp_data_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def test_partial_downloads_of_dead_processes_are_removed(tmp_data_dir, monkeypatch):
    from hsilib.data import get_scene

    scene = get_scene("pavia_university")
    dead = python("pass")
    dead.wait()
    abandoned = tmp_data_dir / files_module.DOWNLOADS / f"{dead.pid}-xyz"
    abandoned.mkdir(parents=True)
    (abandoned / "tmpdef456").write_bytes(b"killed midway")
    monkeypatch.setenv("HSILIB_OFFLINE", "0")
    monkeypatch.setattr(files_module.pooch, "retrieve",
                        lambda url, known_hash, fname, path, **kw: (Path(path) / fname).write_bytes(b"ok"))
    remote = dataclasses.replace(scene.gt, sha256=None)
    with pytest.warns(UserWarning, match="no published checksum"):
        files_module.fetch(dataclasses.replace(scene, gt=remote), remote)
    assert not abandoned.exists()
    assert (tmp_data_dir / scene.folder / remote.name).read_bytes() == b"ok"


def test_data_list_calls_a_corrupted_cube_corrupt_not_real(labels_only_data_dir, capsys):
    from hsilib.cli import main
    from hsilib.data import get_scene

    scene = get_scene("pavia_university")
    (labels_only_data_dir / scene.folder / scene.cube.name).write_bytes(b"not the cube")
    assert main(["data", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("pavia_university "))
    assert row.split()[-2:] == ["corrupt", "twin"]


# 7, 8 -------------------------------------------------------- inputs checked when built

@pytest.mark.parametrize("change, error, message", [
    ({"components": True}, ValueError, "components must be an integer from 1 to 200"),
    ({"components": 201}, ValueError, "components must be an integer from 1 to 200"),
    ({"seed": "0"}, TypeError, "seed must be int, got '0'"),
    ({"seed": 1.5}, TypeError, "seed must be int, got 1.5"),
    ({"epochs": 1.5}, TypeError, "epochs must be int"),
    ({"patch_size": 5.0}, ValueError, "patch_size must be an odd integer from 1 to 63, got 5.0"),
    ({"patch_size": 201}, ValueError, "patch_size must be an odd integer from 1 to 63, got 201"),
    ({"lr": "0.1"}, TypeError, "lr must be int or float, got '0.1'"),
    ({"val_fraction": 1}, TypeError, "val_fraction must be float"),
])
def test_a_config_checks_types_and_ranges_when_built(change, error, message):
    with pytest.raises(error, match=message):
        dataclasses.replace(FAST, **change)


def test_components_beyond_the_scenes_bands_are_refused_for_that_scene():
    assert Config(scene="indian_pines", components=150).components == 150
    with pytest.raises(ValueError, match="from 1 to 103 .*pavia_university"):
        Config(scene="pavia_university", components=150)


def test_a_disjoint_split_refuses_a_training_fraction():
    with pytest.raises(ValueError, match="train_fraction applies to random splits only"):
        make_split("indian_pines", "disjoint", train_fraction=0.5)


def test_float_pixel_indices_are_refused():
    sampler = PatchSampler(np.zeros((10, 10, 3), np.float32), patch_size=3)
    with pytest.raises(TypeError, match="pixel indices must be integers, got torch.float64"):
        sampler.patches(np.array([1.7, 2.0]))
    assert sampler.patches(np.array([1, 2], dtype=np.int32)).shape == (2, 3, 3, 3)


# 9 ------------------------------------------------------------ quantization inputs

@pytest.fixture(scope="module")
def cnn2d_model():
    from hsilib.models import build_model

    torch.manual_seed(0)
    return build_model("cnn2d", 40, 16).eval()


@pytest.mark.parametrize("shape", [(1, 40, 11, 11), (1, 30, 19, 19), (1, 40)])
def test_quantize_checks_the_example_against_the_model(cnn2d_model, shape):
    from hsilib.compress import quantize

    good = torch.randn(50, 40, 19, 19)
    with pytest.raises(ValueError, match=rf"example inputs of shape {re_shape(shape)} do not fit the model"):
        quantize(cnn2d_model, "static", torch.randn(shape), calibration=good)


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_quantize_takes_numpy_calibration_and_refuses_a_model_name(cnn2d_model):
    from hsilib.compress import quantize

    calibration = np.random.default_rng(0).normal(size=(20, 40, 19, 19)).astype(np.float32)
    q = quantize(cnn2d_model, "static", calibration[:1], calibration=calibration)
    assert q.calibration_used == 20
    with pytest.raises(TypeError, match="model must be a trained torch.nn.Module, got str"):
        quantize("cnn2d", "dynamic")
    with pytest.raises(TypeError, match="calibration must be a float tensor .* got list"):
        quantize(cnn2d_model, "static", calibration[:1], calibration=[[0.0]])


# 10 ----------------------------------------------------------- threads

@pytest.mark.slow
def test_thread_count_changes_predictions_only_within_the_documented_tolerance(tmp_path):
    """The key leaves threads out (they change where, not what, is computed);
    the record names them. Sums in another order make the weights drift apart
    over training, so the networks differ pixel by pixel, but a network
    trained to its plateau scores the same OA within THREAD_TOLERANCE."""
    from hsilib.experiments.runner import THREAD_TOLERANCE

    config = dataclasses.replace(FAST, model="cnn1d", epochs=30)
    records = {}
    for threads in (1, 2):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            records[threads] = run(config, tmp_path / str(threads), device="cpu", progress=False)
        finally:
            torch.set_num_threads(previous)
    assert records[1]["key"] == records[2]["key"]
    assert (records[1]["threads"], records[2]["threads"]) == (1, 2)
    assert all(r["convergence"]["stopped"] == "plateau" for r in records.values())
    assert abs(records[1]["metrics"]["oa"] - records[2]["metrics"]["oa"]) <= THREAD_TOLERANCE


# 11 ----------------------------------------------------------- offline switch

@pytest.mark.parametrize("value, offline", [("1", True), ("on", True), ("TRUE", True), ("yes", True),
                                            ("off", False), ("0", False), ("", False), ("No", False)])
def test_offline_switch_reads_on_and_off(monkeypatch, value, offline):
    monkeypatch.setenv("HSILIB_OFFLINE", value)
    assert files_module.offline() is offline


def test_an_unclear_offline_switch_is_an_error(monkeypatch):
    monkeypatch.setenv("HSILIB_OFFLINE", "maybe")
    with pytest.raises(ValueError, match="HSILIB_OFFLINE='maybe' is neither on nor off"):
        files_module.offline()


# 12 ----------------------------------------------------------- papermill's text parameters

def test_list_parameters_arrive_as_text_from_papermill():
    from hsilib.profiles import as_list, parameter

    assert as_list('["indian_pines"]') == ["indian_pines"]
    assert as_list("indian_pines") == ["indian_pines"]
    assert as_list(["a", "b"]) == ["a", "b"] and as_list("[0, 1, 2]") == [0, 1, 2]
    assert parameter('{"mlp": 50}') == {"mlp": 50} and parameter("twin") == "twin"
    with pytest.raises(ValueError, match="looks like a list or dict but is not one"):
        parameter("[indian_pines")


# 13 ----------------------------------------------------------- data verify

def test_verify_counts_a_shared_file_once_and_goes_on_past_an_unreadable_one(
        labels_only_data_dir, capsys, monkeypatch):
    from hsilib.cli import main

    real = files_module.sha256sum
    unreadable = labels_only_data_dir / "pavia_university" / "TRpavia_fixed.mat"

    def flaky(path, *args, **kwargs):
        if Path(path) == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(files_module, "sha256sum", flaky)
    assert main(["data", "verify"]) == 1
    out = capsys.readouterr()
    paths = [line.split()[-1] for line in out.out.splitlines() if line.startswith(("OK", "UNREADABLE"))]
    assert len(paths) == len(set(paths))  # Indian Pines' folder serves two scenes: once each file
    assert f"UNREADABLE (Permission denied)  {unreadable}" in out.out
    assert "0 corrupted, 1 unreadable" in out.out
    assert "1 file(s)" in out.err


def test_verify_of_a_missing_data_directory_fails(tmp_path, monkeypatch, capsys):
    from hsilib.cli import main

    monkeypatch.setenv("HSILIB_DATA_DIR", str(tmp_path / "nowhere"))
    assert main(["data", "verify"]) == 1
    assert f"data directory {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err


def test_a_read_only_data_directory_is_named_not_blamed_on_the_network(tmp_data_dir, monkeypatch):
    from hsilib.data import get_scene

    scene = get_scene("pavia_university")
    monkeypatch.setenv("HSILIB_OFFLINE", "0")
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if str(self).startswith(str(tmp_data_dir)):
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(PermissionError, match=f"cannot write to the data directory {tmp_data_dir}"):
        files_module.download(scene.gt, files_module.local_path(scene, scene.gt))


# 2 (grid) ------------------------------------------------------ a damaged record among good ones

def test_a_grid_reports_a_damaged_record_and_finishes_the_others(tmp_path):
    from hsilib.experiments import GridError

    configs = [dataclasses.replace(FAST, seed=s) for s in range(2)]
    store = ResultStore(tmp_path)
    store.path(configs[0].key()).write_text("[]")
    with pytest.raises(GridError, match="1 of 2 runs failed.*damaged"):
        run_grid(configs, store=store, device="cpu", progress=False)
    assert store.load(configs[1].key())["config"]["seed"] == 1
    assert json.loads(store.path(configs[0].key()).read_text()) == []  # left for the user to see
