"""The one runner: every experiment kind is cached, run, measured, recorded
and stored here.

:func:`run` returns an experiment's stored record or produces it: it runs the
experiment's dependencies first, claims the key (another process asking for
it waits), loads the data once, calls the kind's
:meth:`~hsilib.experiments.config.Experiment.execute`, and then, the same for
every kind,

* scores the test pixels (top-1, top-5, OA, AA, kappa, per class) and the
  agreement with the network it came from;
* measures the produced network on the CPU with fixed threads, whatever
  device trained it (parameters in the paper's convention and in full,
  theoretical and serialized memory, MACs, batch-1 latency, batch-1,000
  throughput), so that every table compares like with like;
* stores its weights (kinds that keep them, with their sha256) and the
  record, atomically, with provenance: data source, device, CPU, threads,
  versions, commit and wall time.

:func:`run_grid` runs many experiments (their dependencies first) on any
:class:`concurrent.futures.Executor`, finishes the others when some fail and
reports every failure at the end. On a Dask cluster (``scheduler=ADDRESS``
or ``$HSILIB_SCHEDULER``) the workers need no access to the store: each runs
its experiment in a store of its own, seeded with the records and weights it
depends on, and returns what it produced for this process to store
(:func:`run_elsewhere`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import __version__, measure
from ..metrics import classification_metrics
from ..models import get_model
from ..progress import report_progress
from ..train import History, predict_scores, resolve_device
from .config import Experiment, resolve
from .data import ExperimentData, View, config_view, experiment_data
from .store import CorruptRecordError, ResultStore, as_store

# A Dask scheduler's address ("tcp://host:8786"): grids run on that cluster.
ENV_SCHEDULER = "HSILIB_SCHEDULER"
CONNECT_TIMEOUT_S = 30
# Samples timed at batch 1 (the first test pixel) and for throughput (the first 1,000).
THROUGHPUT_BATCH = 1000
MEASURE_THREADS = 1
# Torch's thread count is not part of a key (it changes where, not what, is
# computed) and each record names it. Sums taken in another order make the
# trained weights drift apart step by step, so runs of one key on different
# thread counts are different networks of equal accuracy: measured, CNN1D on
# Indian Pines (disjoint) trained to its plateau on 1 and 2 threads, 4.5% (real
# cube) and 10% (twin) of test pixels predicted differently, OA 0.24 and 0.9
# points apart. They agree on OA within this many points (fraction).
THREAD_TOLERANCE = 0.02


@dataclass
class Reference:
    """The network a compressed one came from, to be measured beside it in
    the same run (so their timings compare): the network and its test scores."""

    model: nn.Module
    scores: np.ndarray


@dataclass
class Outcome:
    """What a kind's ``execute`` produces.

    scores : (N, K) test scores of the produced network.
    model : the produced network (a torch module or a fitted scikit-learn
        estimator), measured and, for kinds that keep weights, stored.
    fields : kind-specific record fields (training history, settings used, ...).
    reference : the network it came from, measured in the same run
        (``base_measure``, ``base_metrics`` and ``agreement`` in the record);
        without one, agreement is with the base record's predictions.
    training : the histories of the training loops that made the network,
        in order (empty where nothing trained); summarised in the record's
        ``convergence`` (:func:`convergence`).
    """

    scores: np.ndarray
    model: Any
    fields: dict = field(default_factory=dict)
    reference: Reference | None = None
    training: list[History] = field(default_factory=list)


def convergence(training: list[History]) -> dict | None:
    """Whether the network's training finished learning: ``converged`` when
    every loop stopped on a validation plateau (:class:`~hsilib.train.Plateau`),
    ``stopped`` and ``val_gain`` of the last loop (its gain over its last
    epochs), the epochs run and allowed over all loops, the last loop's best
    epoch, and how many loops ran and stopped unconverged. ``None`` when
    nothing trained (scikit-learn models, post-training quantization)."""
    if not training:
        return None
    last = training[-1]
    return {"converged": all(h.converged for h in training), "stopped": last.stopped,
            "val_gain": last.val_gain, "best_epoch": last.best_epoch,
            "epochs_run": sum(len(h.val_oa) for h in training),
            "max_epochs": sum(h.max_epochs for h in training),
            "loops": len(training), "unconverged_loops": sum(not h.converged for h in training)}


@dataclass
class RunContext:
    """What ``execute`` gets: the resolved experiment's data, the store, the
    device to train on and whether to show progress."""

    experiment: Experiment
    data: ExperimentData
    store: ResultStore
    device: torch.device
    progress: bool

    def view(self, device: torch.device | str | None = None) -> View:
        """Pixel indices -> inputs of the network config's model (on the
        training device unless another is given)."""
        return config_view(self.experiment.network_config(), self.data,
                           self.device if device is None else device)

    def trained(self, experiment: Experiment) -> tuple[nn.Module, dict]:
        """A stored network (a dependency) on the CPU in eval mode, and its record."""
        model, record, _ = trained_model(experiment, self.store, self.device, self.progress)
        return model, record

    def reference(self, experiment: Experiment) -> Reference:
        """A stored network and its float32 test scores on the CPU (cached for
        the next experiment of this process that starts from it; never
        modify the model)."""
        return _reference(resolve(experiment, str(self.device)), str(self.store.root), str(self.device))


@lru_cache(maxsize=1)  # a grid runs the experiments of one base in a row
def _reference(experiment: Experiment, store_root: str, device: str) -> Reference:
    model, _, data = trained_model(experiment, store_root, device, progress=False)
    view = config_view(experiment.network_config(), data, "cpu")
    return Reference(model, predict_scores(model, view, data.test_idx))


# --------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def versions() -> dict:
    """Versions of hsilib, Python and the numeric libraries."""
    import sklearn

    return {"hsilib": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "sklearn": sklearn.__version__}


def provenance(device: torch.device | str) -> dict:
    """Where a record came from: device, CPU, threads, versions, commit, time."""
    return {
        "device": str(device),
        "cpu": measure.cpu_info()[0],
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "git_commit": _git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------

def measure_network(model: Any, view: View, index: np.ndarray) -> dict:
    """The measurements of a produced network on the CPU, with
    :data:`MEASURE_THREADS` threads: batch-1 inputs from the first pixel of
    ``index``, throughput inputs from its first :data:`THROUGHPUT_BATCH`.

    Every measurement of a float torch network depends only on its
    architecture (layer types, tensor shapes, dtypes and layouts) and its
    input's shape, not on its weights' values; a process therefore measures
    each architecture once and gives identical ones the same numbers, marked
    ``"reused": True`` (pruning criteria and distillation methods produce
    many networks of one architecture). Quantized networks and scikit-learn
    models, whose speed depends on what they hold, are always measured.
    """
    one, many = view(index[:1]), view(index[:THROUGHPUT_BATCH])
    if not isinstance(model, nn.Module):
        return {**measure.measure_estimator(model, one, many, threads=MEASURE_THREADS), "reused": False}
    model = model.cpu()
    signature = _architecture(model, one, many)
    if signature is not None and signature in _measured:
        return {**_measured[signature], "reused": True}
    measured = measure.measure_model(model, one, many, threads=MEASURE_THREADS)
    if signature is not None:
        _measured[signature] = measured
    return {**measured, "reused": False}


_measured: dict[tuple, dict] = {}


def _architecture(model: nn.Module, *inputs: torch.Tensor) -> tuple | None:
    """What a float network's measurements depend on; ``None`` for a network
    holding quantized layers."""
    state = model.state_dict()
    if any(not isinstance(value, torch.Tensor) or (value.dim() and not value.is_floating_point())
           for value in state.values()) or any(measure.packed_tensors(m) for m in model.modules()):
        return None
    layers = tuple((name, type(module).__name__) for name, module in model.named_modules())
    tensors = tuple((name, tuple(v.shape), tuple(v.stride()), str(v.dtype)) for name, v in state.items())
    return (type(model).__name__, layers, tensors,
            *((tuple(x.shape), tuple(x.stride()), str(x.dtype)) for x in inputs))


# --------------------------------------------------------------------------
# Running one experiment
# --------------------------------------------------------------------------

def run(experiment: Experiment, store: ResultStore | str | Path | None = None,
        device: str = "auto", progress: bool = True) -> dict:
    """The record of ``experiment``: stored, or produced now and stored.

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``) is where networks train;
    it is recorded but is not part of any key. Dependencies not yet stored
    run first.
    """
    store = as_store(store)
    experiment = resolve(experiment, device)
    key = experiment.key()
    record = store.load(key)
    if record is not None:
        return record
    for dependency in experiment.dependencies():
        run(dependency, store, device, progress)
    with store.claim(key):
        # Another process may have produced it while this one waited.
        return store.load(key) or _execute(experiment, store, device, progress)[0]


def _execute(experiment: Experiment, store: ResultStore, device: str, progress: bool
             ) -> tuple[dict, Any]:
    """Produce, measure and store ``experiment`` (resolved); its record and network."""
    start = time.perf_counter()
    torch_device = resolve_device(device)
    data = experiment_data(experiment.network_config())
    context = RunContext(experiment, data, store, torch_device, progress)
    outcome = experiment.execute(context)
    cpu_view = context.view("cpu")
    measure_start = time.perf_counter()
    comparison = _comparison(experiment, outcome, store, cpu_view, data)  # the base measured first
    measured = measure_network(outcome.model, cpu_view, data.test_idx)
    measure_s = time.perf_counter() - measure_start
    record = {
        "key": experiment.key(),
        "kind": experiment.kind,
        "config": dataclasses.asdict(experiment),
        "model_title": get_model(experiment.network_config().model).title,
        "dependencies": [d.key() for d in experiment.dependencies()],
        **outcome.fields,
        "convergence": convergence(outcome.training),
        "metrics": classification_metrics(outcome.scores, data.test_y),
        **comparison,
        "measure": measured,
        "measure_s": measure_s,
        "counts": {"fit": len(data.fit_idx), "validation": len(data.val_idx), "test": len(data.test_idx)},
        "test_predictions": outcome.scores.argmax(axis=1).tolist(),
        "data_source": data.source,
        **provenance(torch_device),
    }
    record["wall_s"] = time.perf_counter() - start
    if experiment.weights_missing() is None:
        # Weights first: a stored record of a network implies its weights.
        record["weights_sha256"] = store.put_weights(record["key"], outcome.model.state_dict())
    store.put(record)
    # As a later read will give it (tuples become lists): the same either way.
    return json.loads(json.dumps(record)), outcome.model


def _comparison(experiment: Experiment, outcome: Outcome, store: ResultStore, view: View,
                data: ExperimentData) -> dict:
    """How the produced network compares with the one it came from
    (:meth:`~hsilib.experiments.Experiment.previous`): measured in this run
    (a reference), or from that record's predictions."""
    base = experiment.previous()
    if base is None:
        return {}
    predicted = outcome.scores.argmax(axis=1)
    if outcome.reference is not None:
        base_scores = outcome.reference.scores
        return {"base_key": base.key(),
                "base_metrics": classification_metrics(base_scores, data.test_y),
                "agreement": float((predicted == base_scores.argmax(axis=1)).mean()),
                "base_measure": measure_network(outcome.reference.model, view, data.test_idx)}
    base_record = store.load(base.key())
    return {"base_key": base.key(),
            "agreement": float((predicted == np.asarray(base_record["test_predictions"])).mean())}


def trained_model(experiment: Experiment, store: ResultStore | str | Path | None = None,
                  device: str = "auto", progress: bool = True
                  ) -> tuple[nn.Module, dict, ExperimentData]:
    """The network ``experiment`` produced (on the CPU, in eval mode), its
    record and its data: the stored weights, checked against the record's
    sha256, or the experiment run now and stored.

    The starting point of every compression experiment.
    """
    store = as_store(store)
    experiment = resolve(experiment, device)
    missing = experiment.weights_missing()
    if missing:
        raise ValueError(f"{experiment.label()}: {missing}")
    key = experiment.key()
    record = run(experiment, store, device, progress)
    state = store.load_weights(key, record.get("weights_sha256"))
    if state is None:  # the weights file was removed: produce both again
        with store.claim(key):
            record, network = _execute(experiment, store, device, progress)
        state = network.state_dict()
    data = experiment_data(experiment.network_config())
    model = experiment.network(data)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"stored weights {store.weights_path(key)} do not fit {experiment.label()} "
                         f"({' '.join(str(err).split())[:300]}); delete them to retrain") from None
    return model.cpu().eval(), record, data


# --------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------

class GridError(RuntimeError):
    """Some experiments of a grid failed; ``failures`` holds (experiment, error) pairs."""

    def __init__(self, failures: list[tuple[Experiment, BaseException]], total: int):
        self.failures = failures
        lines = "; ".join(f"{e.label()}: {type(err).__name__}: {err}" for e, err in failures)
        super().__init__(f"{len(failures)} of {total} runs failed: {lines}")


def _init_worker(threads: int, parent: int) -> None:
    torch.set_num_threads(threads)
    # Ctrl-C reaches the whole process group: the parent decides (it stops the pool),
    # and a worker it stops unwinds, releasing its claims on keys.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _stop(signum, frame) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _exit_with(parent: int) -> None:
    """End this worker once its parent is gone (killed, even by SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


class LocalPool(ProcessPoolExecutor):
    """A process pool whose workers end with their parent and that
    :func:`run_grid` can stop at once when interrupted (:meth:`terminate`)."""

    def terminate(self) -> None:
        """Cancel queued work and end the workers now, running work included."""
        processes = list((self._processes or {}).values())  # the pool's own registry of workers
        self.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)


def local_pool(workers: int = 2, threads_per_worker: int | None = None) -> LocalPool:
    """A process pool for :func:`run_grid` on this machine: ``workers`` spawned
    processes, each with ``threads_per_worker`` torch threads (default: the
    CPU count shared evenly), so workers do not oversubscribe the cores.
    Workers end when this process ends, however it ends."""
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    return LocalPool(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                     initargs=(threads, os.getpid()))


Shipment = tuple[dict, "bytes | None"]  # a record and its weights file's bytes


def run_elsewhere(experiment: Experiment, dependencies: list[Shipment], device: str = "auto") -> list[Shipment]:
    """Run ``experiment`` in a store of its own, seeded with the records and
    weights it depends on; return what it produced, for the caller to store
    (:meth:`ResultStore.receive`). What a worker without the caller's store
    runs."""
    with tempfile.TemporaryDirectory(prefix="hsilib-worker-") as root:
        store = ResultStore(root)
        for record, weights in dependencies:
            store.receive(record, weights)
        known = {record["key"] for record, _ in dependencies}
        run(experiment, store, device, progress=False)
        return [store.shipment(path.stem) for path in sorted(Path(root).glob("*.json")) if path.stem not in known]


def _shipment_of(experiment: Experiment, store: ResultStore) -> list[Shipment]:
    """The stored records (and weights) ``experiment`` depends on, however deep."""
    needed = [e for wave in in_waves([experiment]) for e in wave if e.key() != experiment.key()]
    return [store.shipment(e.key()) for e in needed]


def in_waves(experiments: list[Experiment]) -> list[list[Experiment]]:
    """Every experiment and its dependencies, each once, in waves: each wave
    needs only earlier ones."""
    depth: dict[str, int] = {}
    unique: dict[str, Experiment] = {}

    def visit(experiment: Experiment) -> int:
        experiment = resolve(experiment)
        key = experiment.key()
        if key not in depth:
            depth[key] = 1 + max((visit(d) for d in experiment.dependencies()), default=-1)
            unique[key] = experiment
        return depth[key]

    for experiment in experiments:
        visit(experiment)
    waves: list[list[Experiment]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for key, experiment in unique.items():
        waves[depth[key]].append(experiment)
    return waves


@contextlib.contextmanager
def cluster(address: str) -> Iterator[Any]:
    """A Dask client of the scheduler at ``address``, with a clear error
    where ``distributed`` is missing or the scheduler cannot be reached."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("running on a Dask cluster needs the 'distributed' package: pip install "
                          "'hsilib[cluster]'") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"no Dask scheduler reached at {address!r} ({ENV_SCHEDULER} or scheduler=): "
                              f"{err}") from None
    with client:
        yield client


def run_grid(experiments: Iterable[Experiment], executor: Executor | None = None,
             store: ResultStore | str | Path | None = None, device: str = "auto",
             progress: bool = True, workers: int = 1, scheduler: str | None = None,
             ship: bool = False) -> list[dict]:
    """Run every experiment (and dependency) not yet stored; return the
    records of ``experiments`` in order.

    ``executor`` is any :class:`concurrent.futures.Executor` (``None`` runs in
    this process): a :func:`local_pool`, or a Dask client's
    ``get_executor()``; without one, ``workers`` above 1 runs the grid on a
    :func:`local_pool` of that many processes, ended when the grid is. Kinds that time networks against each other
    (``concurrent = False``) run in this process, one at a time, after the
    others of their wave. Finished records are stored as they complete, so an
    interrupted grid resumes without recomputing them; failed experiments do
    not stop the others, and are reported together at the end
    (:class:`GridError`); an experiment whose dependency failed is not run.

    ``scheduler`` (default ``$HSILIB_SCHEDULER``), a Dask scheduler's
    address, runs the grid on that cluster instead of ``workers``; its
    workers return records and weights to this process, which stores them
    (``ship=True``, for any executor whose workers cannot see ``store``).
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    scheduler = scheduler or os.environ.get(ENV_SCHEDULER) or None
    if executor is None and scheduler:
        with cluster(scheduler) as client:
            return run_grid(experiments, client.get_executor(), store, device, progress, ship=True)
    if executor is None and workers > 1:
        with local_pool(workers) as pool:
            return run_grid(experiments, pool, store, device, progress)
    store = as_store(store)
    experiments = [resolve(e, device) for e in experiments]
    waves = in_waves(experiments)
    todo = sum(len(wave) for wave in waves)
    bar = tqdm(total=todo, desc="experiments", unit="run", disable=not progress)
    failures: list[tuple[Experiment, BaseException]] = []
    failed: set[str] = set()
    done = 0

    def finished(experiment: Experiment, error: BaseException | None) -> None:
        nonlocal done
        done += 1
        if error is not None:
            failures.append((experiment, error))
            failed.add(experiment.key())
        bar.update()
        report_progress(done, todo, experiment.label())

    for wave in waves:
        runnable = []
        for experiment in wave:
            broken = [d.label() for d in experiment.dependencies() if resolve(d, device).key() in failed]
            try:
                stored = not broken and store.load(experiment.key()) is not None
            except CorruptRecordError as err:
                finished(experiment, err)
                continue
            if broken:
                finished(experiment, RuntimeError(f"not run: {', '.join(broken)} failed"))
            elif stored:
                finished(experiment, None)
            else:
                runnable.append(experiment)
        parallel = [e for e in runnable if executor is not None and e.concurrent]
        futures = {(executor.submit(run_elsewhere, e, _shipment_of(e, store), device) if ship
                    else executor.submit(run, e, store.root, device, False)): e for e in parallel}
        try:
            for future in as_completed(futures):
                error = future.exception()
                if error is None and ship:
                    try:
                        for record, weights in future.result():
                            store.receive(record, weights)
                    except CorruptRecordError as err:
                        error = err
                finished(futures[future], error)
            for experiment in (e for e in runnable if e not in parallel):
                bar.set_postfix_str(experiment.label())
                try:
                    run(experiment, store, device, progress=False)
                except Exception as err:  # noqa: BLE001 - reported below with the experiment
                    finished(experiment, err)
                else:
                    finished(experiment, None)
        except BaseException:  # an interrupt: queued work must not start, running work stops
            for future in futures:
                future.cancel()
            if isinstance(executor, LocalPool):
                executor.terminate()
            raise
    bar.close()
    if failures:
        raise GridError(failures, todo)
    return [store.load(e.key()) for e in experiments]
