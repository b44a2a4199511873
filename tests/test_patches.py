"""PatchSampler: patches, spectra and 3-D cubes gathered by flat pixel index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsilib.data import PatchSampler

HEIGHT, WIDTH, CHANNELS = 13, 11, 4
NUMPY_PAD = {"reflect": "reflect", "replicate": "edge", "constant": "constant"}


@pytest.fixture
def cube() -> np.ndarray:
    """A small non-square (H, W, C) float32 image with distinct values."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(HEIGHT, WIDTH, CHANNELS)).astype(np.float32)


def _indices() -> np.ndarray:
    """Random flat indices plus every corner and some edge pixels."""
    rng = np.random.default_rng(1)
    corners = [0, WIDTH - 1, (HEIGHT - 1) * WIDTH, HEIGHT * WIDTH - 1]
    edges = [3, 2 * WIDTH, 5 * WIDTH + WIDTH - 1, (HEIGHT - 1) * WIDTH + 4, WIDTH + 1]
    return np.concatenate([corners, edges, rng.integers(0, HEIGHT * WIDTH, 20)]).astype(np.int64)


def _expected_patches(cube: np.ndarray, index: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Reference: slice np.pad(cube) around each centre, as (N, C, s, s)."""
    r = size // 2
    padded = np.pad(cube, ((r, r), (r, r), (0, 0)), mode=NUMPY_PAD[mode])
    rows, cols = np.divmod(index, WIDTH)
    return np.stack([padded[y:y + size, x:x + size].transpose(2, 0, 1)
                     for y, x in zip(rows, cols)])


@pytest.mark.parametrize("size", [1, 3, 5, 7, 9])
def test_patches_equal_reflect_padded_slices(cube, size):
    """patches(idx) equals slices of the reflect-padded cube, border pixels included."""
    index = _indices()
    sampler = PatchSampler(cube, patch_size=size)
    patches = sampler.patches(index)
    assert isinstance(patches, torch.Tensor)
    assert tuple(patches.shape) == (len(index), CHANNELS, size, size)
    np.testing.assert_array_equal(patches.numpy(), _expected_patches(cube, index, size, "reflect"))


@pytest.mark.parametrize("mode", ["constant", "replicate"])
@pytest.mark.parametrize("size", [3, 7])
def test_other_pad_modes(cube, mode, size):
    """constant pads zeros and replicate repeats the edge, like np.pad's modes."""
    index = _indices()
    patches = PatchSampler(cube, patch_size=size, pad_mode=mode).patches(index).numpy()
    np.testing.assert_array_equal(patches, _expected_patches(cube, index, size, mode))
    if mode == "constant":  # the corner pixel's patch: top-left rows/cols are zeros
        r = size // 2
        assert np.all(patches[0][:, :r, :] == 0) and np.all(patches[0][:, :, :r] == 0)


def test_spectra_equal_cube_pixels(cube):
    """spectra(idx) are the cube's pixels at those flat indices."""
    index = _indices()
    spectra = PatchSampler(cube, patch_size=5).spectra(index)
    assert tuple(spectra.shape) == (len(index), CHANNELS)
    np.testing.assert_array_equal(spectra.numpy(), cube.reshape(-1, CHANNELS)[index])


def test_patch_centre_is_the_spectrum(cube):
    """The centre of each patch is that pixel's spectrum."""
    index = _indices()
    sampler = PatchSampler(cube, patch_size=7)
    np.testing.assert_array_equal(sampler.patches(index)[:, :, 3, 3].numpy(),
                                  sampler.spectra(index).numpy())


@pytest.mark.parametrize("size", [3, 5])
def test_cubes_shape(cube, size):
    """cubes(idx) is (N, 1, C, s, s) and holds the same patches."""
    index = _indices()
    sampler = PatchSampler(cube, patch_size=size)
    cubes = sampler.cubes(index)
    assert tuple(cubes.shape) == (len(index), 1, CHANNELS, size, size)
    np.testing.assert_array_equal(cubes[:, 0].numpy(), sampler.patches(index).numpy())


@pytest.mark.parametrize("size", [0, 2, 4, -1, -3])
def test_bad_patch_size_raises(cube, size):
    """Even, zero or negative patch sizes raise ValueError naming patch_size."""
    with pytest.raises(ValueError, match="patch_size"):
        PatchSampler(cube, patch_size=size)


def test_reflect_patch_larger_than_image_raises(cube):
    """A reflect-padded patch wider than the image raises ValueError."""
    with pytest.raises(ValueError, match="too large"):
        PatchSampler(cube, patch_size=2 * WIDTH + 1)


@pytest.mark.parametrize("bad", [-1, HEIGHT * WIDTH, HEIGHT * WIDTH + 7])
def test_out_of_range_index_raises(cube, bad):
    """An index outside the image raises IndexError in patches, spectra and cubes."""
    sampler = PatchSampler(cube, patch_size=3)
    for method in (sampler.patches, sampler.spectra, sampler.cubes):
        with pytest.raises(IndexError):
            method(np.array([0, bad]))


def test_unknown_pad_mode_and_bad_cube_raise(cube):
    """An unknown pad mode or a non-3-D cube raises ValueError."""
    with pytest.raises(ValueError, match="pad_mode"):
        PatchSampler(cube, patch_size=3, pad_mode="circular")
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        PatchSampler(cube[..., 0], patch_size=3)
