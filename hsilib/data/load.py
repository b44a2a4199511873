"""Loading scenes: ground truths, split masks and cubes, real or twin."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.io
import tifffile

from .files import DataIntegrityError, DataNotFoundError, fetch
from .scenes import RemoteFile, Scene, get_scene
from .twin import make_twin

DATA_SOURCES = ("auto", "real", "twin")
TWIN_LABEL = "TWIN DATA (synthetic spectra over the real ground truth)"


class TwinDataWarning(UserWarning):
    """Raised when ``data_source='auto'`` falls back to the offline twin."""


class CorruptFileError(DataIntegrityError):
    """A file whose contents cannot be read as the registry describes."""


def read_array(path: Path, remote: RemoteFile) -> np.ndarray:
    """Read the array of a ``.mat`` (by its MATLAB key) or ``.tif`` file."""
    try:
        if remote.key is None:
            return np.asarray(tifffile.imread(path))
        return np.asarray(scipy.io.loadmat(path, variable_names=[remote.key])[remote.key])
    except KeyError:
        raise CorruptFileError(f"{path} has no variable {remote.key!r}") from None
    except Exception as err:
        raise CorruptFileError(f"{path} cannot be read: {type(err).__name__}: {err}") from None


def load_file(scene: Scene, remote: RemoteFile, download: bool = True) -> np.ndarray:
    """Fetch (verifying the hash) and read one file of ``scene``."""
    return read_array(fetch(scene, remote, download_missing=download), remote)


@dataclass(frozen=True)
class SceneData:
    """A loaded scene.

    Attributes
    ----------
    scene : registry entry.
    cube : (H, W, B) array in the real cube's dtype.
    gt : (H, W) ground truth, original values (0 = unlabelled).
    source : ``"real"`` or ``"twin"``; every result records it.
    """

    scene: Scene
    cube: np.ndarray
    gt: np.ndarray
    source: str

    @property
    def labels(self) -> np.ndarray:
        """(H, W) int64 training labels: 0..K-1 for classes, -1 for unlabelled."""
        return to_labels(self.scene, self.gt)

    @property
    def is_twin(self) -> bool:
        return self.source == "twin"

    @property
    def source_label(self) -> str:
        """What to print beside every table and figure made from this data."""
        return TWIN_LABEL if self.is_twin else "real data"


def to_labels(scene: Scene, gt: np.ndarray) -> np.ndarray:
    """Map ground-truth values to 0..K-1 (sorted value order), background to -1."""
    values = np.array(sorted(scene.classes))
    lookup = np.full(int(max(values.max(), gt.max())) + 1, -1, dtype=np.int64)
    lookup[values] = np.arange(len(values))
    return lookup[gt]


@lru_cache(maxsize=4)
def load_gt(name: str) -> np.ndarray:
    """The (H, W) ground truth of scene ``name`` (read-only array)."""
    scene = get_scene(name)
    gt = load_file(scene, scene.gt)
    if gt.shape != scene.shape[:2]:
        raise CorruptFileError(f"{scene.gt.name}: shape {gt.shape}, expected {scene.shape[:2]}")
    gt.setflags(write=False)
    return gt


@lru_cache(maxsize=2)
def _twin_cube(name: str) -> np.ndarray:
    cube = make_twin(get_scene(name), load_gt(name))
    cube.setflags(write=False)
    return cube


@lru_cache(maxsize=2)
def _real_cube(name: str, download: bool) -> np.ndarray:
    scene = get_scene(name)
    cube = load_file(scene, scene.cube, download=download)
    if cube.shape != scene.shape:
        raise CorruptFileError(f"{scene.cube.name}: shape {cube.shape}, expected {scene.shape}")
    cube.setflags(write=False)
    return cube


# Scenes whose cube could not be had in this process: 'auto' asks only once.
_unavailable: dict[str, str] = {}


def load_scene(name: str, data_source: str = "auto", download: bool = True) -> SceneData:
    """Load scene ``name`` from the real cube or its offline twin.

    Parameters
    ----------
    name : a registered scene (see ``hsilib data list``).
    data_source : ``"real"`` (the real cube, downloaded if missing; an error if
        it cannot be had), ``"twin"`` (the synthetic twin) or ``"auto"`` (real
        when present or downloadable, else the twin with a
        :class:`TwinDataWarning`).
    download : allow downloading missing files.
    """
    if data_source not in DATA_SOURCES:
        raise ValueError(f"unknown data_source {data_source!r}; accepted: {', '.join(DATA_SOURCES)}")
    scene = get_scene(name)
    gt = load_gt(name)
    if data_source == "twin":
        return SceneData(scene, _twin_cube(name), gt, "twin")
    if data_source == "real":
        return SceneData(scene, _real_cube(name, download), gt, "real")
    if name not in _unavailable:
        try:
            return SceneData(scene, _real_cube(name, download), gt, "real")
        except DataNotFoundError as err:
            _unavailable[name] = str(err)
    warnings.warn(
        f"USING THE OFFLINE TWIN of {name!r}: the real cube is unavailable "
        f"({_unavailable[name]}). Results on the twin are not a reproduction of "
        "the paper.", TwinDataWarning, stacklevel=2,
    )
    return SceneData(scene, _twin_cube(name), gt, "twin")
