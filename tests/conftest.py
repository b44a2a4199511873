"""Shared fixtures of the data-layer tests.

Every test runs with

* ``HSILIB_DATA_DIR`` pointing at the shared ground truths and split masks
  (``<repo>/../shared/data``; falls back to an ``HSILIB_DATA_DIR`` set outside
  when a clone has no ``../shared`` beside it), and
* ``HSILIB_OFFLINE=1``, so nothing tries the network, and
* ``HSILIB_NATIVE_BF16=0``, so ``precision="auto"`` is fp32 on every CPU.

A test overrides either with ``monkeypatch`` (the same instance the autouse
fixture used, so its ``setenv``/``delenv`` wins and is undone afterwards).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_OUTSIDE_DATA_DIR = os.environ.get("HSILIB_DATA_DIR")


def shared_data_dir() -> Path:
    """The directory holding the real ground truths and split masks."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if _OUTSIDE_DATA_DIR:
        return Path(_OUTSIDE_DATA_DIR).expanduser()
    return SHARED_DATA  # missing: the `shared_data` fixture says so clearly


def _set_env(patch: pytest.MonkeyPatch) -> None:
    patch.setenv("HSILIB_DATA_DIR", str(shared_data_dir()))
    patch.setenv("HSILIB_OFFLINE", "1")
    # precision="auto" is fp32 in every test, with or without native bf16:
    # no test waits on a benchmark or depends on the CPU (tests of the
    # choice itself set the machine they test).
    patch.setenv("HSILIB_NATIVE_BF16", "0")


@pytest.fixture(scope="session", autouse=True)
def _hsilib_session_env():
    """The same settings for the whole session, so module- and session-scoped
    fixtures (set up before any function-scoped one) see them too."""
    with pytest.MonkeyPatch.context() as patch:
        _set_env(patch)
        yield


@pytest.fixture(autouse=True)
def _hsilib_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point hsilib at the shared data and forbid downloads, for every test."""
    _set_env(monkeypatch)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared data directory; fails clearly when it is missing."""
    path = shared_data_dir()
    assert path.is_dir(), (
        f"shared data directory {path} not found: these tests need the ground truths "
        "and split masks in ../shared/data beside the repository (or HSILIB_DATA_DIR)"
    )
    return path


@pytest.fixture(scope="session")
def manifest_text(shared_data: Path) -> str:
    """Text of the data manifest (independent facts about the shared files)."""
    return (shared_data / "MANIFEST.md").read_text(encoding="utf-8")


@pytest.fixture
def tmp_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory, set as ``HSILIB_DATA_DIR`` for this test."""
    root = tmp_path / "hsilib-data"
    root.mkdir()
    monkeypatch.setenv("HSILIB_DATA_DIR", str(root))
    return root


@pytest.fixture
def labels_only_data_dir(tmp_data_dir: Path, shared_data: Path) -> Path:
    """A data directory holding copies of the shared ground truths and split
    masks of every registered scene, but no cube.

    Tests that need "the cube is not available" use it, so they hold even if
    a real cube is later placed in the shared directory.
    """
    from hsilib.data import SCENES

    for scene in SCENES.values():
        for remote in scene.label_files:
            source = shared_data / scene.folder / remote.name
            if source.is_file():
                (tmp_data_dir / scene.folder).mkdir(exist_ok=True)
                shutil.copyfile(source, tmp_data_dir / scene.folder / remote.name)
    return tmp_data_dir


@pytest.fixture
def fresh_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``load_scene`` look for cubes again: which cubes this process
    found missing, and the cubes it read, are forgotten."""
    from hsilib.data import load as load_module

    monkeypatch.setattr(load_module, "_unavailable", {})
    load_module._real_cube.cache_clear()


@pytest.fixture
def no_cube_here(labels_only_data_dir: Path, fresh_availability) -> Path:
    """A data directory without any cube, as on a machine that has only the
    labels: ``data_source="auto"`` falls back to the twin for every scene."""
    return labels_only_data_dir


REAL_CUBE_SCENE = "indian_pines"


@pytest.fixture
def real_cube_here(shared_data: Path) -> Path:
    """The shared data directory, which holds the real Indian Pines cube
    (skipped, with the reason, where a clone has no such cube beside it)."""
    from hsilib.data import get_scene

    scene = get_scene(REAL_CUBE_SCENE)
    if not (shared_data / scene.folder / scene.cube.name).is_file():
        pytest.skip(f"no real {REAL_CUBE_SCENE} cube in {shared_data}")
    return shared_data


@pytest.fixture(scope="session")
def trained_cnn2d(tmp_path_factory):
    """The paper's CNN2D (40 PCA components, 19x19 patches) trained once per
    test session on the Indian Pines twin, in a store of its own: the
    network, its record, data, input view, config and store. Tests that
    change the store work on a copy."""
    from hsilib.experiments import Config, ResultStore, config_view, trained_model

    with pytest.MonkeyPatch.context() as patch:
        _set_env(patch)
        config = Config(model="cnn2d", epochs=1, data_source="twin", precision="fp32").resolved()
        store = ResultStore(tmp_path_factory.mktemp("trained-cnn2d"))
        model, record, data = trained_model(config, store, device="cpu", progress=False)
    return {"model": model, "record": record, "data": data, "config": config, "store": store,
            "view": config_view(config, data)}
