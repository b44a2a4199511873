"""Experiments: a frozen :class:`Config` -> :func:`run` -> a stored result record.

A record (JSON) holds the test metrics, the training history, the model's
measurements, the test predictions, and where it came from: data source,
device, library versions, git commit, wall time. Records are stored by the
content hash of the *resolved* config (defaults filled in, ``"auto"`` data
replaced by what was really used), so a rerun of the same config is a cache
hit and a changed config is a new record. Writes are atomic (temporary file,
then rename), so a grid killed midway leaves only complete records behind and
resumes where it stopped.

:func:`run_grid` spreads configs over any :class:`concurrent.futures.Executor`:
none (in this process), :func:`local_pool` (a process pool on this machine),
or a Dask cluster's ``client.get_executor()``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import hashlib
import itertools
import json
import os
import platform
import subprocess
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable

import numpy as np
import platformdirs
import torch
from torch import nn
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import __version__, measure
from .data import PatchSampler, Preprocessor, drop_water_bands, get_scene, load_scene, make_split
from .data.load import DATA_SOURCES
from .data.preprocess import FIT_ON
from .data.splits import DEFECT_POLICIES, SPLIT_KINDS
from .data.twin import TWIN_VERSION
from .metrics import classification_metrics
from .models import MODELS, get_model
from .train import (PRECISIONS, estimator_scores, fit, fit_estimator, predict_scores,
                    resolve_device, validation_split)

# Bump when a change to the code changes what a config produces: old records
# then no longer match any key.
RESULTS_SCHEMA = 1
ENV_RESULTS_DIR = "HSILIB_RESULTS_DIR"
# The paper's learning rates (Section 4); other scenes use the first.
PAPER_LR = {"indian_pines": 1e-3, "pavia_university": 8e-4}
DEFAULT_LR = 1e-3
ALL_BANDS = "all"
# Config fields that do not change what a model family produces.
IGNORED_FIELDS = {"torch": (), "sklearn": ("epochs", "batch_size", "lr", "precision")}
MODEL_DEFAULT = "model"


@dataclass(frozen=True)
class Config:
    """One experiment.

    Parameters
    ----------
    scene, split : a registered scene and ``"random"`` or ``"disjoint"``.
    model : a registered model (``hsilib models`` lists them).
    seed : seeds the weights, the batch order, the validation carve-out and,
        for ``split="random"``, the split itself.
    epochs, batch_size : training length and batch (torch models).
    lr : Adam learning rate; ``None`` takes the paper's rate for the scene.
    components : input channels: a number of PCA components, ``"all"``
        (every standardized band) or ``"model"`` (the model's default).
    patch_size : odd patch side; ``None`` takes the model's default.
    pca_fit : ``"train"`` or ``"image"`` (see :class:`~hsilib.data.Preprocessor`).
    defects : handling of the disjoint masks' known defects.
    val_fraction : share of each class's training pixels held out for
        model selection.
    precision : ``"fp32"`` or ``"bf16"`` (autocast).
    data_source : ``"auto"``, ``"real"`` or ``"twin"``.
    """

    scene: str = "indian_pines"
    split: str = "disjoint"
    model: str = "cnn2d"
    seed: int = 0
    epochs: int = 10
    batch_size: int = 100
    lr: float | None = None
    components: int | str = MODEL_DEFAULT
    patch_size: int | None = None
    pca_fit: str = "train"
    defects: str = "clean"
    val_fraction: float = 0.1
    precision: str = "fp32"
    data_source: str = "auto"

    def __post_init__(self) -> None:
        get_scene(self.scene)  # clear errors for unknown names
        get_model(self.model)
        for name, value, accepted in (("split", self.split, SPLIT_KINDS),
                                      ("pca_fit", self.pca_fit, FIT_ON),
                                      ("defects", self.defects, DEFECT_POLICIES),
                                      ("precision", self.precision, PRECISIONS),
                                      ("data_source", self.data_source, DATA_SOURCES)):
            if value not in accepted:
                raise ValueError(f"unknown {name} {value!r}; accepted: {', '.join(accepted)}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"epochs must be >= 1 and batch_size >= 2, got {self.epochs}, {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not (self.components in (ALL_BANDS, MODEL_DEFAULT)
                or (isinstance(self.components, int) and self.components >= 1)):
            raise ValueError(f"components must be a positive integer, {ALL_BANDS!r} or "
                             f"{MODEL_DEFAULT!r}, got {self.components!r}")
        if self.patch_size is not None and (self.patch_size < 1 or self.patch_size % 2 == 0):
            raise ValueError(f"patch_size must be a positive odd integer, got {self.patch_size}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")

    def resolved(self) -> "Config":
        """This config with every default made explicit and ``"auto"`` data
        replaced by the source really available (loading the scene)."""
        spec = get_model(self.model)
        components = spec.components if self.components == MODEL_DEFAULT else self.components
        source = self.data_source
        if source == "auto":  # load_scene warns loudly when this falls back to the twin
            source = load_scene(self.scene, "auto").source
        return dataclasses.replace(
            self, lr=PAPER_LR.get(self.scene, DEFAULT_LR) if self.lr is None else self.lr,
            components=ALL_BANDS if components is None else components,
            patch_size=spec.patch_size if self.patch_size is None else self.patch_size,
            data_source=source)

    def key(self) -> str:
        """Content hash of the resolved config (16 hex digits). Fields the
        model's family ignores (training length and precision, for
        scikit-learn models) are left out, so they never force a recompute."""
        resolved = self.resolved()
        ignored = IGNORED_FIELDS[get_model(self.model).family]
        material = {"schema": RESULTS_SCHEMA, **{k: v for k, v in dataclasses.asdict(resolved).items()
                                                 if k not in ignored}}
        if resolved.data_source == "twin":
            material["twin_version"] = TWIN_VERSION
        text = json.dumps(material, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_grid(**axes) -> list[Config]:
    """Every combination of the given :class:`Config` fields: a list value is
    an axis to cross (in the order given, last varying fastest), anything
    else is fixed. ``config_grid(scene=["indian_pines"], model=["mlp", "cnn2d"],
    seed=[0, 1], epochs=5)`` gives four configs."""
    names = list(axes)
    values = [v if isinstance(v, list) else [v] for v in axes.values()]
    return [Config(**dict(zip(names, combo))) for combo in itertools.product(*values)]


def per_model_grid(models: list[str], epochs: int, epochs_by_model: dict[str, int] | None = None,
                   **axes) -> list[Config]:
    """:func:`config_grid` for each of ``models``, each trained for its entry in
    ``epochs_by_model`` or else ``epochs``: cheap spectral models can train
    longer than costly 3-D ones within one time budget."""
    epochs_by_model = epochs_by_model or {}
    for name in epochs_by_model:
        get_model(name)  # a misspelt model name is an error, not silently ignored
    return [config for name in models
            for config in config_grid(**axes, model=name, epochs=epochs_by_model.get(name, epochs))]


class ResultStore:
    """Result records as ``<root>/<key>.json``, written atomically.

    ``root`` defaults to ``$HSILIB_RESULTS_DIR`` or a per-user cache directory.
    """

    def __init__(self, root: str | Path | None = None):
        env = os.environ.get(ENV_RESULTS_DIR)
        default = Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("hsilib")) / "results"
        self.root = Path(root).expanduser() if root is not None else default

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, config: Config) -> dict | None:
        """The stored record of ``config``, or ``None``."""
        return self.load(config.key())

    def load(self, key: str) -> dict | None:
        path = self.path(key)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as err:
            raise ValueError(f"result record {path} is corrupted ({err}); delete it to recompute") from None

    def put(self, record: dict) -> Path:
        """Write ``record`` under ``record["key"]`` atomically."""
        path = self.path(record["key"])
        self._write_atomically(path, lambda fh: fh.write(json.dumps(record).encode()))
        return path

    def _write_atomically(self, path: Path, write) -> None:
        """``write(binary file)`` to a temporary file, then rename it to ``path``:
        a reader never sees half a file, and a crash leaves the old one."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def weights_path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def put_weights(self, key: str, state_dict: dict) -> Path:
        """Write a model's ``state_dict`` (moved to the CPU) under ``key`` atomically."""
        path = self.weights_path(key)
        cpu_state = {name: value.detach().cpu() for name, value in state_dict.items()}
        self._write_atomically(path, lambda fh: torch.save(cpu_state, fh))
        return path

    def load_weights(self, key: str) -> dict | None:
        """The stored ``state_dict`` under ``key`` (on the CPU), or ``None``."""
        path = self.weights_path(key)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception as err:  # noqa: BLE001 - torch raises several kinds on a bad archive
            raise ValueError(f"stored weights {path} are corrupted ({err}); delete them to retrain") from None

    def records(self) -> list[dict]:
        """Every stored record (unordered)."""
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*.json"))]


@lru_cache(maxsize=1)
def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict:
    import sklearn

    return {"hsilib": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "sklearn": sklearn.__version__}


@dataclass(frozen=True)
class ExperimentData:
    """What a config's model is fitted, selected and scored on: the
    preprocessed ``(H, W, C)`` features and the pixel indices and labels of
    each part of the split."""

    features: np.ndarray
    n_classes: int
    fit_idx: np.ndarray
    fit_y: np.ndarray
    val_idx: np.ndarray
    val_y: np.ndarray
    test_idx: np.ndarray
    test_y: np.ndarray
    source: str


def experiment_data(config: Config) -> ExperimentData:
    """Load, split and preprocess the data of a (resolved) ``config``."""
    scene = get_scene(config.scene)
    data = load_scene(config.scene, config.data_source)
    split = make_split(config.scene, config.split, seed=config.seed, defects=config.defects)
    train_idx, train_y = split.train_index()
    test_idx, test_y = split.test_index()
    fit_idx, fit_y, val_idx, val_y = validation_split(train_idx, train_y, config.val_fraction, config.seed)
    components = None if config.components == ALL_BANDS else config.components
    # Statistics from training pixels (fit + validation) only, unless pca_fit="image".
    features = Preprocessor(components, config.pca_fit).fit_transform(
        drop_water_bands(data.cube, scene), train_idx)
    return ExperimentData(features, scene.n_classes, fit_idx, fit_y, val_idx, val_y,
                          test_idx, test_y, data.source)


def model_view(spec, features: np.ndarray, patch_size: int, device: torch.device | str = "cpu"):
    """The :class:`~hsilib.data.PatchSampler` view that feeds ``spec``'s model:
    pixel indices -> input batch on ``device``."""
    sampler = PatchSampler(features, patch_size, device=device)
    return getattr(sampler, {"spectrum": "spectra", "patch": "patches", "cube": "cubes"}[spec.input])


def _train_torch(spec, config: Config, data: ExperimentData, device, progress: bool
                 ) -> tuple[np.ndarray, dict, nn.Module]:
    view = model_view(spec, data.features, config.patch_size, device)
    torch.manual_seed(config.seed)
    model = spec.build(data.features.shape[2], data.n_classes, config.patch_size).to(device)
    history = fit(model, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                  epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                  seed=config.seed, precision=config.precision, progress=progress)
    scores = predict_scores(model, view, data.test_idx, precision=config.precision)
    measured = measure.measure_model(model, view(data.test_idx[:1]),
                                     throughput_batch=view(data.test_idx[:1000]))
    return scores, {"history": dataclasses.asdict(history), "measure": measured}, model


def _train_sklearn(spec, config: Config, data: ExperimentData, device, progress: bool
                   ) -> tuple[np.ndarray, dict, None]:
    pixels = data.features.reshape(-1, data.features.shape[2])
    # These small dense problems run many times faster on one BLAS thread than
    # on several (measured: ~20x for the logistic regression on 2 cores).
    with threadpool_limits(limits=1):
        estimator, selection = fit_estimator(
            lambda: spec.build(data.features.shape[2], data.n_classes, config.patch_size), spec.grid,
            pixels[data.fit_idx], data.fit_y, pixels[data.val_idx], data.val_y, seed=config.seed)
        # Classes absent from the fitting pixels get no column: they score lowest.
        scores = np.full((len(data.test_idx), data.n_classes), -np.inf, np.float32)
        scores[:, estimator.classes_] = estimator_scores(estimator, pixels[data.test_idx])
    measured = measure.measure_estimator(estimator, pixels[data.test_idx[:1]],
                                         pixels[data.test_idx[:1000]])
    return scores, {"selection": selection, "measure": measured}, None


TRAINERS = {"torch": _train_torch, "sklearn": _train_sklearn}


def provenance(device: torch.device | str) -> dict:
    """Where a record came from: device, CPU, threads, versions, commit, time."""
    return {
        "device": str(device),
        "cpu": measure.cpu_info()[0],
        "threads": torch.get_num_threads(),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def as_store(store: "ResultStore | str | Path | None") -> "ResultStore":
    """``store`` itself, or a :class:`ResultStore` at that path (``None``: the default)."""
    return store if isinstance(store, ResultStore) else ResultStore(store)


def run(config: Config, store: ResultStore | str | Path | None = None, device: str = "auto",
        progress: bool = True) -> dict:
    """Run ``config`` (or return its stored record) and store the result.

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``) is where torch models train;
    it is recorded but is not part of the config's key. A torch model's
    trained weights are stored beside its record (see :func:`trained_model`).
    """
    store = as_store(store)
    config = config.resolved()
    cached = store.load(config.key())
    if cached is not None:
        return cached
    return _execute(config, store, device, progress, experiment_data(config))[0]


def _execute(config: Config, store: ResultStore, device: str, progress: bool,
             data: ExperimentData) -> tuple[dict, nn.Module | None]:
    start = time.perf_counter()
    spec = get_model(config.model)
    torch_device = resolve_device(device)
    scores, extra, model = TRAINERS[spec.family](spec, config, data, torch_device, progress)
    record = {
        "key": config.key(),
        "config": dataclasses.asdict(config),
        "model_title": spec.title,
        "metrics": classification_metrics(scores, data.test_y),
        **extra,
        "counts": {"fit": len(data.fit_idx), "validation": len(data.val_idx), "test": len(data.test_idx)},
        "test_predictions": scores.argmax(axis=1).tolist(),
        "data_source": data.source,
        **provenance(torch_device),
        "wall_s": time.perf_counter() - start,
    }
    if model is not None:  # weights first: a stored record of a torch model implies its weights
        store.put_weights(record["key"], model.state_dict())
    store.put(record)
    return record, model


def trained_model(config: Config, store: ResultStore | str | Path | None = None,
                  device: str = "auto", progress: bool = True
                  ) -> tuple[nn.Module, dict, ExperimentData]:
    """The trained torch model of ``config`` (on the CPU, in eval mode), its
    record and its data: the stored weights, or trained now and stored.

    The starting point of every compression experiment.
    """
    store = as_store(store)
    config = config.resolved()
    spec = get_model(config.model)
    if spec.family != "torch":
        raise ValueError(f"model {config.model!r} is a scikit-learn model; only torch models "
                         f"({', '.join(n for n, s in MODELS.items() if s.family == 'torch')}) "
                         "have trained weights")
    data = experiment_data(config)
    key = config.key()
    record, state = store.load(key), store.load_weights(key)
    if record is None or state is None:  # records stored before weights were kept are redone
        record, model = _execute(config, store, device, progress, data)
        state = model.state_dict()
    model = spec.build(data.features.shape[2], data.n_classes, config.patch_size)
    model.load_state_dict(state)
    return model.cpu().eval(), record, data


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def local_pool(workers: int = 2, threads_per_worker: int | None = None) -> ProcessPoolExecutor:
    """A process pool for :func:`run_grid` on this machine: ``workers`` spawned
    processes, each with ``threads_per_worker`` torch threads (default: the
    CPU count shared evenly), so workers do not oversubscribe the cores."""
    threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                               initializer=_init_worker, initargs=(threads,))


def run_grid(configs: Iterable[Config], executor: Executor | None = None,
             store: ResultStore | str | Path | None = None, device: str = "auto",
             progress: bool = True) -> list[dict]:
    """Run every config not yet in the store; return all records in order.

    ``executor`` is any :class:`concurrent.futures.Executor` (``None`` runs in
    this process). Finished records are stored as they complete, so a grid that
    is interrupted resumes without recomputing them. Failed configs do not stop
    the others; they are reported together at the end.
    """
    store = as_store(store)
    configs = [c.resolved() for c in configs]
    pending = list({c.key(): c for c in configs if store.get(c) is None}.values())
    bar = tqdm(total=len(configs), initial=len(configs) - len(pending), desc="experiments",
               unit="run", disable=not progress)
    failures = []
    if executor is None:
        for config in pending:
            bar.set_postfix_str(f"{config.model} {config.scene} {config.split} seed {config.seed}")
            try:
                run(config, store, device, progress=False)
            except Exception as err:  # noqa: BLE001 - reported below with the config
                failures.append((config, err))
            bar.update()
    else:
        futures = {executor.submit(run, config, store.root, device, False): config for config in pending}
        for future in as_completed(futures):
            if future.exception() is not None:
                failures.append((futures[future], future.exception()))
            bar.update()
    bar.close()
    if failures:
        lines = "; ".join(f"{c.model}/{c.scene}/{c.split}/seed {c.seed}: {type(e).__name__}: {e}"
                          for c, e in failures)
        raise RuntimeError(f"{len(failures)} of {len(pending)} runs failed: {lines}")
    return [store.get(c) for c in configs]
