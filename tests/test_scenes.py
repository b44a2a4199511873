"""Scene registry: names, files, checksums, classes, bands."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from hsilib.data import (SCENES, Scene, UnknownSceneError, drop_water_bands, get_scene,
                         load_gt)

SCENE_NAMES = sorted(SCENES)
HEX64 = re.compile(r"[0-9a-f]{64}")

# Manifest facts: per-class ground-truth counts (classes 1..K) and totals.
MANIFEST_GT_COUNTS = {
    "indian_pines": ([46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205,
                      1265, 386, 93], 10_249),
    "pavia_university": ([6631, 18649, 2099, 3064, 1345, 5029, 1330, 3682, 947], 42_776),
}


def _all_files():
    return [(scene, remote) for scene in SCENES.values() for remote in scene.files]


def _file_id(item) -> str:
    scene, remote = item
    return f"{scene.name}/{remote.name}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_checksums(text: str) -> dict[str, tuple[int | None, str]]:
    """File name -> (size or None, sha256) from the manifest's tables."""
    out: dict[str, tuple[int | None, str]] = {}
    # Tables of the shared files: | [folder/]name | source | size | sha256 | ...
    for name, size, sha in re.findall(
            r"^\|\s*(?:\w+/)?([\w.]+\.(?:mat|tif))\s*\|[^|]*\|\s*([\d,]+)\s*\|\s*([0-9a-f]{64})\s*\|",
            text, flags=re.M):
        out[name] = (int(size.replace(",", "")), sha)
    # Published canonical table: | name [(note)] | size or ? | sha256 | where seen |
    published = text[text.index("## Published canonical checksums"):]
    for name, size, sha in re.findall(
            r"^\|\s*([\w.]+\.mat)[^|]*\|\s*([\d,]+|\?)\s*\|\s*([0-9a-f]{64})\s*\|",
            published, flags=re.M):
        out[name] = (None if size == "?" else int(size.replace(",", "")), sha)
    return out


def test_get_scene_returns_registered_scene():
    """get_scene returns the registry entry of that name."""
    for name in SCENE_NAMES:
        scene = get_scene(name)
        assert isinstance(scene, Scene)
        assert scene.name == name


def test_unknown_scene_error_lists_known_scenes():
    """An unknown name raises UnknownSceneError (a KeyError) naming it and every known scene."""
    with pytest.raises(UnknownSceneError) as info:
        get_scene("indian_pine")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'indian_pine'" in message
    for name in SCENE_NAMES:
        assert name in message


@pytest.mark.parametrize("item", _all_files(), ids=_file_id)
def test_every_file_has_sha256_and_http_url(item):
    """Every file has a 64-hex sha256 (or None) and an http(s) URL ending in its name."""
    _, remote = item
    assert remote.sha256 is None or HEX64.fullmatch(remote.sha256), remote.sha256
    url = urlparse(remote.url)
    assert url.scheme in ("https", "http"), remote.url
    assert url.netloc, remote.url
    assert url.path.rsplit("/", 1)[-1] == remote.name
    assert remote.size is None or remote.size > 0


def test_files_sharing_a_folder_and_name_are_identical():
    """Scenes sharing a folder never give one file name two different definitions."""
    seen = {}
    for scene, remote in _all_files():
        key = (scene.folder, remote.name)
        assert seen.setdefault(key, remote) == remote, key


def test_registry_checksums_match_the_manifest(manifest_text):
    """Every checksummed file's sha256 (and size) equals the manifest's published value."""
    published = _manifest_checksums(manifest_text)
    checked = 0
    for scene, remote in _all_files():
        if remote.sha256 is None:
            continue
        assert remote.name in published, f"{scene.name}/{remote.name} not in the manifest"
        size, sha = published[remote.name]
        assert remote.sha256 == sha, remote.name
        if size is not None and remote.size is not None:
            assert remote.size == size, remote.name
        checked += 1
    assert checked >= len(SCENES)


def test_shared_files_match_registry_hash_and_size(shared_data):
    """Every registered file present in the shared data has the registered sha256 and size."""
    checked = set()
    for scene, remote in _all_files():
        path = shared_data / scene.folder / remote.name
        if not path.is_file():
            continue  # the cubes are not in the shared data
        if remote.sha256 is not None:
            assert _sha256(path) == remote.sha256, path
        if remote.size is not None:
            assert path.stat().st_size == remote.size, path
        checked.add(path)
    # At least every registered scene's ground truth was there to check.
    assert len(checked) >= len({(s.folder, s.gt.name) for s in SCENES.values()})


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_class_names_match_ground_truth_classes(name, shared_data):
    """The registered classes are exactly the non-zero values of the real ground truth."""
    scene = get_scene(name)
    if not (shared_data / scene.folder / scene.gt.name).is_file():
        pytest.skip(f"no ground truth of {name} in the shared data")
    gt = load_gt(name)
    assert gt.shape == scene.shape[:2]
    present = set(np.unique(gt).tolist()) - {0}
    assert present == set(scene.classes)
    assert len(scene.class_names) == scene.n_classes == len(present)
    assert scene.class_names == [scene.classes[v] for v in sorted(present)]
    assert len(set(scene.class_names)) == scene.n_classes


@pytest.mark.parametrize("name", sorted(MANIFEST_GT_COUNTS))
def test_ground_truth_counts_match_manifest(name):
    """load_gt gives the manifest's per-class counts and labelled-pixel total."""
    counts, total = MANIFEST_GT_COUNTS[name]
    gt = load_gt(name)
    values = sorted(get_scene(name).classes)
    assert [int(np.count_nonzero(gt == v)) for v in values] == counts
    assert int(np.count_nonzero(gt)) == total == sum(counts)


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_wavelengths_one_per_band_and_increasing(name):
    """wavelengths() has one value per cube band, increasing, inside the sensor range."""
    scene = get_scene(name)
    wl = scene.wavelengths()
    assert wl.shape == (scene.shape[2],)
    assert np.all(np.diff(wl) > 0)
    lo, hi = scene.wavelength_range_nm
    assert lo <= wl[0] and wl[-1] <= hi


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_band_indices_are_in_range(name):
    """rgb_bands are valid 0-based bands; water/removed bands are unique 1-based bands."""
    scene = get_scene(name)
    bands = scene.shape[2]
    assert len(scene.rgb_bands) == 3
    assert all(0 <= b < bands for b in scene.rgb_bands)
    assert len(set(scene.water_bands)) == len(scene.water_bands)
    assert all(1 <= b <= bands for b in scene.water_bands)
    n_raw = bands + len(scene.removed_bands)
    assert len(set(scene.removed_bands)) == len(scene.removed_bands)
    assert all(1 <= b <= n_raw for b in scene.removed_bands)


def test_indian_pines_220_water_bands():
    """The 220-band Indian Pines has 20 water bands; dropping them leaves 200 bands,
    exactly the corrected scene's bands."""
    raw, corrected = get_scene("indian_pines_220"), get_scene("indian_pines")
    assert raw.shape[2] == 220
    assert len(raw.water_bands) == 20
    # The corrected cube is the raw one minus those very bands.
    assert corrected.removed_bands == raw.water_bands
    assert corrected.shape[2] == 200

    cube = np.broadcast_to(np.arange(1, 221, dtype=np.uint16), (3, 4, 220))
    dropped = drop_water_bands(cube, raw)
    assert dropped.shape == (3, 4, 200)
    kept = [b for b in range(1, 221) if b not in set(raw.water_bands)]
    np.testing.assert_array_equal(dropped[1, 2], kept)
    assert not set(dropped[0, 0].tolist()) & set(raw.water_bands)

    # The band centres line up too.
    wl = drop_water_bands(raw.wavelengths()[None, None, :], raw)[0, 0]
    np.testing.assert_allclose(wl, corrected.wavelengths())


def test_drop_water_bands_without_water_bands_is_identity():
    """A scene without water bands keeps every band."""
    scene = get_scene("pavia_university")
    cube = np.arange(2 * 3 * scene.shape[2]).reshape(2, 3, -1)
    np.testing.assert_array_equal(drop_water_bands(cube, scene), cube)
