"""The data of an experiment: its scene loaded, split, carved and
preprocessed, and the views that turn pixel indices into model inputs."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import torch

from ..data import PatchSampler, Preprocessor, drop_water_bands, get_scene, load_scene, make_split
from ..models import ModelSpec, get_model
from ..train import validation_split
from .config import ALL_BANDS, Config


@dataclass(frozen=True)
class ExperimentData:
    """What a config's model is fitted, selected and scored on: the
    preprocessed ``(H, W, C)`` features and the pixel indices and labels of
    each part of the split. Cached and shared by the runs of a process:
    never modify the arrays."""

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
    """Load, split and preprocess the data of a resolved ``config`` (cached:
    configs that differ only in model, training or widths share it)."""
    components = None if config.components == ALL_BANDS else config.components
    return _data(config.scene, config.split, config.seed, config.defects, config.val_fraction,
                 components, config.pca_fit, config.data_source, config.train_fraction)


@lru_cache(maxsize=4)
def _data(scene_name: str, split_kind: str, seed: int, defects: str, val_fraction: float,
          components: int | None, pca_fit: str, data_source: str,
          train_fraction: float | None) -> ExperimentData:
    scene = get_scene(scene_name)
    data = load_scene(scene_name, data_source)
    split = make_split(scene_name, split_kind, seed=seed, defects=defects, train_fraction=train_fraction)
    train_idx, train_y = split.train_index()
    test_idx, test_y = split.test_index()
    fit_idx, fit_y, val_idx, val_y = validation_split(train_idx, train_y, val_fraction, seed)
    # Statistics from training pixels (fit + validation) only, unless pca_fit="image".
    features = Preprocessor(components, pca_fit).fit_transform(drop_water_bands(data.cube, scene),
                                                               train_idx)
    return ExperimentData(features, scene.n_classes, fit_idx, fit_y, val_idx, val_y,
                          test_idx, test_y, data.source)


View = Callable[[np.ndarray], "torch.Tensor | np.ndarray"]


def model_view(spec: ModelSpec, features: np.ndarray, patch_size: int,
               device: torch.device | str = "cpu") -> View:
    """Pixel indices -> the input batch of ``spec``'s model: a
    :class:`~hsilib.data.PatchSampler` view on ``device`` for a torch
    network, rows of pixel features for a scikit-learn model."""
    if spec.family == "sklearn":
        pixels = features.reshape(-1, features.shape[2])
        return lambda index: pixels[index]
    sampler = PatchSampler(features, patch_size, device=device)
    return getattr(sampler, {"spectrum": "spectra", "patch": "patches", "cube": "cubes"}[spec.input])


def config_view(config: Config, data: ExperimentData, device: torch.device | str = "cpu") -> View:
    """:func:`model_view` of a resolved config's model on its data."""
    return model_view(get_model(config.model), data.features, config.patch_size, device)
