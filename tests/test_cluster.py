"""Grids on a Dask cluster whose worker processes share no store with the
client: every record and its weights come back to the client's store, a
second run is all cache hits, and an interrupt leaves no partial record."""

import hashlib
import os
import signal
import threading
from pathlib import Path

import pytest

from hsilib import book
from hsilib.cli import main
from hsilib.compress import PruneConfig
from hsilib.experiments import Config, ResultStore, run_grid
from hsilib.experiments.store import check_record

distributed = pytest.importorskip("distributed")

BASE = Config(scene="indian_pines", split="disjoint", model="cnn2d", epochs=1, data_source="twin", precision="fp32")
CHAPTER = """\
from hsilib.compress import PruneConfig
from hsilib.experiments import Config, run_grid

base = Config(scene="indian_pines", split="disjoint", model="cnn2d", epochs=1, data_source="twin",
              precision="fp32")
mlp = Config(scene="indian_pines", split="disjoint", model="mlp", epochs=1, data_source="twin", precision="fp32")
records = run_grid([base, mlp, PruneConfig(base, "l1", "90%", "I", finetune_epochs=1)], progress=False,
                   scheduler=scheduler)
"""


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def assert_complete(store: Path) -> list[dict]:
    """Every record in ``store`` is whole, with weights whose sha256 match; no file half written."""
    assert not list(store.glob("*.tmp")) and not list(store.glob(".*"))
    records = [check_record(__import__("json").loads(p.read_text()), p.stem, p) for p in store.glob("*.json")]
    for record in records:
        if "weights_sha256" in record:
            data = (store / f"{record['key']}.pt").read_bytes()
            assert hashlib.sha256(data).hexdigest() == record["weights_sha256"]
    return records


@pytest.mark.slow
def test_a_chapter_runs_on_the_cluster_and_the_client_stores_everything(scheduler, tmp_path, monkeypatch):
    import nbformat

    sources, outputs, store = tmp_path / "notebooks", tmp_path / "book", tmp_path / "store"
    sources.mkdir()
    chapter = nbformat.v4.new_notebook()
    chapter.cells = [nbformat.v4.new_code_cell("scheduler = None", metadata={"tags": ["parameters"]}),
                     nbformat.v4.new_code_cell(CHAPTER)]
    nbformat.write(chapter, sources / "01_cluster.ipynb")
    monkeypatch.setattr(book, "SOURCES", sources)
    monkeypatch.setattr(book, "OUTPUTS", outputs)
    monkeypatch.setattr(book, "write_build_info", lambda info: None)
    monkeypatch.setenv("HSILIB_RESULTS_DIR", str(store))
    # The chapter's kernel finds no data: only the workers (started before) can train.
    monkeypatch.setenv("HSILIB_DATA_DIR", str(tmp_path / "no-data"))
    assert main(["book", "run", "--profile", "smoke", "--scheduler", scheduler]) == 0
    records = assert_complete(store)
    assert sorted(r["kind"] for r in records) == ["prune", "train", "train"]
    assert all("weights_sha256" in r for r in records)
    written = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    # Again: every run is a cache hit, nothing is written.
    assert main(["book", "run", "--profile", "smoke", "--scheduler", scheduler]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == written


@pytest.mark.slow
def test_an_interrupted_cluster_grid_leaves_no_partial_record(scheduler, tmp_path):
    configs = [Config(scene="indian_pines", split="disjoint", model="cnn2d", epochs=3, seed=s, data_source="twin",
                      precision="fp32") for s in range(4)]
    configs += [PruneConfig(c, "l1", "90%", "I", finetune_epochs=2) for c in configs]
    timer = threading.Timer(8.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_grid(configs, store=tmp_path, device="cpu", progress=False, scheduler=scheduler)
    finally:
        timer.cancel()
    records = assert_complete(tmp_path)
    assert len(records) < len(configs)


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("hsilib.experiments.runner.CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ConnectionError, match="no Dask scheduler reached at 'tcp://127.0.0.1:9'"):
        run_grid([BASE], store=tmp_path, scheduler="tcp://127.0.0.1:9")


def test_a_store_refuses_weights_that_do_not_match_their_record(tmp_path):
    store = ResultStore(tmp_path / "a")
    [record] = run_grid([Config(scene="indian_pines", model="mlp", epochs=1, data_source="twin", precision="fp32")],
                        store=store, device="cpu", progress=False)
    record, weights = store.shipment(record["key"])
    other = ResultStore(tmp_path / "b")
    with pytest.raises(Exception, match="do not match their record"):
        other.receive(record, weights[:-1] + bytes([weights[-1] ^ 1]))
    assert not list((tmp_path / "b").glob("*.json"))
    other.receive(record, weights)
    assert other.load(record["key"]) == record
