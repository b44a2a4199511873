"""Quantization experiments: a trained baseline (an :class:`~hsilib.experiments.Config`)
-> :func:`quantize` -> a stored record, cached like every other run.

A :class:`QuantConfig` names its baseline and the quantization settings; its
key hashes the baseline's key and the settings its mode uses, so a changed
calibration size recomputes static quantization but not dynamic. The baseline
is trained once (or its stored weights loaded, see
:func:`~hsilib.experiments.trained_model`); each record measures the float32
model and its int8 copy in the same process, one after the other, so their
latencies compare.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import measure
from ..experiments import (RESULTS_SCHEMA, Config, ResultStore, as_store, model_view, provenance,
                           run_grid, trained_model)
from ..metrics import classification_metrics
from ..models import get_model
from ..train import predict_scores
from .quantize import BACKEND, QAT_LR, LabelledData, check_settings, get_mode, layer_dtypes, quantize


@dataclass(frozen=True)
class QuantConfig:
    """One quantization experiment.

    Parameters
    ----------
    base : the baseline to quantize (a torch model; trained with its own
        config, or loaded from the store).
    mode : ``"dynamic"``, ``"static"`` or ``"qat"``.
    engine : ``"x86"``, ``"fbgemm"`` or ``"qnnpack"``.
    calibration_samples, observer : static quantization's calibration: that
        many training pixels (drawn with the baseline's seed; no labels used)
        and the activation observer.
    qat_epochs, qat_lr : quantization-aware fine-tuning on the baseline's
        training pixels, the epoch with the best validation accuracy kept.
    """

    base: Config
    mode: str = "static"
    engine: str = "x86"
    calibration_samples: int = 1000
    observer: str = "histogram"
    qat_epochs: int = 3
    qat_lr: float = QAT_LR

    def __post_init__(self) -> None:
        check_settings(self.mode, self.engine, self.observer, self.calibration_samples,
                       self.qat_epochs, self.qat_lr)
        if get_model(self.base.model).family != "torch":
            raise ValueError(f"model {self.base.model!r} is not a torch network; only those quantize")

    def key(self) -> str:
        """Content hash of the baseline's key, the mode, the engine and the
        settings the mode uses (16 hex digits)."""
        material = {"schema": RESULTS_SCHEMA, "kind": "quantize", "base": self.base.key(),
                    "mode": self.mode, "engine": self.engine,
                    **{name: getattr(self, name) for name in get_mode(self.mode).settings}}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def quantization_grid(bases: list[Config], modes: list[str], **settings) -> list[QuantConfig]:
    """Every baseline in every mode, with the same ``settings`` (fields of
    :class:`QuantConfig`)."""
    return [QuantConfig(base, mode, **settings) for base in bases for mode in modes]


@lru_cache(maxsize=1)  # a grid quantizes each baseline in every mode in a row
def _baseline(base: Config, store_root: str, device: str, progress: bool):
    """The trained float model of ``base``, its record, data, input view and
    float32 test scores (quantize() copies the model: it is never changed)."""
    model, record, data = trained_model(base, store_root, device, progress)
    view = model_view(get_model(base.model), data.features, base.patch_size)
    return model, record, data, view, predict_scores(model, view, data.test_idx)


def run_quantization(config: QuantConfig, store: ResultStore | str | Path | None = None,
                     device: str = "auto", progress: bool = True) -> dict:
    """Run ``config`` (or return its stored record) and store the result.

    ``device`` is where a baseline that is not yet stored trains; quantized
    models and their fine-tuning run on the CPU.
    """
    store = as_store(store)
    key = config.key()
    cached = store.load(key)
    if cached is not None:
        return cached
    start = time.perf_counter()
    base = config.base.resolved()
    mode = get_mode(config.mode)
    model, base_record, data, view, fp32_scores = _baseline(base, str(store.root), device, progress)
    calibration_idx = np.random.default_rng(base.seed).permutation(data.fit_idx)[:config.calibration_samples]
    batch1, batch_large = view(data.test_idx[:1]), view(data.test_idx[:1000])
    torch.manual_seed(base.seed)
    quantize_start = time.perf_counter()
    quantized = quantize(
        model, config.mode, batch1, engine=config.engine,
        calibration=view(calibration_idx) if mode.data == "unlabeled" else None,
        calibration_samples=config.calibration_samples, observer=config.observer,
        training=LabelledData(view, data.fit_idx, data.fit_y, data.val_idx, data.val_y, base.batch_size),
        qat_epochs=config.qat_epochs, qat_lr=config.qat_lr, seed=base.seed, progress=progress)
    quantize_s = time.perf_counter() - quantize_start
    scores = predict_scores(quantized.model, view, data.test_idx)
    record = {
        "key": key,
        "kind": "quantize",
        "config": {**dataclasses.asdict(config), "base": dataclasses.asdict(base)},
        "base_key": base.key(),
        "model_title": base_record["model_title"],
        "mode_title": mode.title,
        "data_needed": mode.data,
        "backend": BACKEND.title,
        "metrics": classification_metrics(scores, data.test_y),
        "fp32_metrics": classification_metrics(fp32_scores, data.test_y),
        "agreement": float((scores.argmax(axis=1) == fp32_scores.argmax(axis=1)).mean()),
        # One process, one after the other: the two latencies compare.
        "fp32_measure": measure.measure_model(model, batch1, batch_large),
        "measure": measure.measure_model(quantized.model, batch1, batch_large),
        "layer_dtypes": [dataclasses.asdict(row) for row in layer_dtypes(quantized.model, batch1)],
        "calibration_used": quantized.calibration_used,
        "quantize_s": quantize_s,
        "qat_history": None if quantized.history is None else dataclasses.asdict(quantized.history),
        "counts": {"fit": len(data.fit_idx), "validation": len(data.val_idx), "test": len(data.test_idx)},
        "test_predictions": scores.argmax(axis=1).tolist(),
        "data_source": data.source,
        **provenance("cpu"),
        "wall_s": time.perf_counter() - start,
    }
    store.put(record)
    return record


def run_quantization_grid(configs: list[QuantConfig], store: ResultStore | str | Path | None = None,
                          executor: Executor | None = None, device: str = "auto",
                          progress: bool = True) -> list[dict]:
    """Run every config not yet in the store; return all records in order.

    The baselines train first, on ``executor`` if given (see
    :func:`~hsilib.experiments.run_grid`); the quantization runs follow one by
    one in this process, since they time the models and must not compete for
    the cores.
    """
    store = as_store(store)
    run_grid(list({c.base.key(): c.base for c in configs}.values()), executor, store, device, progress)
    bar = tqdm(configs, desc="quantization", unit="run", disable=not progress)
    records = []
    for config in bar:
        bar.set_postfix_str(f"{config.base.model} {config.base.scene} {config.base.split} {config.mode}")
        records.append(run_quantization(config, store, device, progress=False))
    return records
