"""Data layer: scene registry, downloads, offline twin, splits, preprocessing, patches."""

from .files import DataIntegrityError, DataNotFoundError, data_dir, fetch
from .load import (DATA_SOURCES, CorruptFileError, SceneData, TwinDataWarning, load_file,
                   load_gt, load_scene)
from .patches import PatchSampler
from .preprocess import Preprocessor, drop_water_bands
from .scenes import SCENES, RemoteFile, Scene, UnknownSceneError, get_scene
from .splits import DEFECT_POLICIES, SPLIT_KINDS, Split, make_split
from .twin import TwinSpec, make_twin

__all__ = [
    "DATA_SOURCES", "DEFECT_POLICIES", "SCENES", "SPLIT_KINDS", "CorruptFileError",
    "DataIntegrityError", "DataNotFoundError", "PatchSampler", "Preprocessor",
    "RemoteFile", "Scene", "SceneData", "Split", "TwinDataWarning", "TwinSpec",
    "UnknownSceneError", "data_dir", "drop_water_bands", "fetch", "get_scene",
    "load_file", "load_gt", "load_scene", "make_split", "make_twin",
]
