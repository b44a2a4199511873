"""Preprocessor: standardization and PCA fitted on training pixels or the image."""

from __future__ import annotations

import numpy as np
import pytest

from hsilib.data import Preprocessor

HEIGHT, WIDTH, BANDS = 24, 30, 12


@pytest.fixture
def cube() -> np.ndarray:
    """A (H, W, B) cube with correlated bands of very different means and scales."""
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(BANDS, BANDS))
    pixels = rng.normal(size=(HEIGHT * WIDTH, BANDS)) @ mixing
    pixels = 1000.0 + pixels * rng.uniform(5, 500, size=BANDS)
    return pixels.reshape(HEIGHT, WIDTH, BANDS).astype(np.float32)


@pytest.fixture
def train_index() -> np.ndarray:
    """A fixed random quarter of the flat pixel indices."""
    rng = np.random.default_rng(1)
    return np.sort(rng.choice(HEIGHT * WIDTH, size=HEIGHT * WIDTH // 4, replace=False))


def test_standardization_on_training_pixels(cube, train_index):
    """n_components=None standardizes: zero mean, unit std on the training pixels."""
    features = Preprocessor(n_components=None).fit_transform(cube, train_index)
    assert features.shape == cube.shape and features.dtype == np.float32
    train = features.reshape(-1, BANDS)[train_index].astype(np.float64)
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1.0, rtol=1e-5)
    # Not on all pixels: the statistics are the training pixels' only.
    everything = features.reshape(-1, BANDS).astype(np.float64)
    assert np.abs(everything.mean(axis=0)).max() > 1e-3


def test_constant_band_gives_zeros_not_nan(cube, train_index):
    """A constant band is left at zero instead of dividing by a zero deviation."""
    cube = cube.copy()
    cube[..., 3] = 42.0
    features = Preprocessor(n_components=None).fit_transform(cube, train_index)
    assert np.all(np.isfinite(features))
    np.testing.assert_array_equal(features[..., 3], 0.0)


def test_pca_components_orthonormal(cube, train_index):
    """The principal axes form an orthonormal basis of the band space."""
    pre = Preprocessor(n_components=5).fit(cube, train_index)
    v = pre.components_
    assert v.shape == (BANDS, BANDS)
    np.testing.assert_allclose(v.T @ v, np.eye(BANDS), atol=1e-10)
    assert pre.transform(cube).shape == (HEIGHT, WIDTH, 5)


def test_explained_variance_ratio(cube, train_index):
    """explained_variance_ratio covers every component, sums to 1, never increases."""
    evr = Preprocessor(n_components=4).fit(cube, train_index).explained_variance_ratio
    assert evr.shape == (BANDS,)
    assert np.all(evr >= 0)
    np.testing.assert_allclose(evr.sum(), 1.0, rtol=1e-12)
    assert np.all(np.diff(evr) <= 1e-15)


def test_pca_features_are_decorrelated_in_variance_order(cube, train_index):
    """On training pixels the PCA features are uncorrelated, with variances in the
    explained-variance proportions."""
    pre = Preprocessor(n_components=BANDS).fit(cube, train_index)
    features = pre.transform(cube).reshape(-1, BANDS)[train_index].astype(np.float64)
    cov = np.cov(features, rowvar=False)
    off_diagonal = cov - np.diag(np.diag(cov))
    assert np.abs(off_diagonal).max() < 1e-4 * np.diag(cov).max()
    np.testing.assert_allclose(np.diag(cov) / np.trace(cov), pre.explained_variance_ratio,
                               atol=1e-5)


def test_fit_on_train_ignores_other_pixels(cube, train_index):
    """fit_on='train' is unchanged when non-training pixels change; 'image' is not."""
    altered = cube.copy().reshape(-1, BANDS)
    others = np.setdiff1d(np.arange(HEIGHT * WIDTH), train_index)
    rng = np.random.default_rng(2)
    altered[others] = altered[others] * 3.0 + rng.normal(0, 400, (len(others), BANDS))
    altered = altered.reshape(cube.shape)

    for n_components in (None, 6):
        on_train = [Preprocessor(n_components, fit_on="train").fit(c, train_index).transform(cube)
                    for c in (cube, altered)]
        np.testing.assert_array_equal(on_train[0], on_train[1])
        on_image = [Preprocessor(n_components, fit_on="image").fit(c).transform(cube)
                    for c in (cube, altered)]
        assert np.abs(on_image[0] - on_image[1]).max() > 0.1


def test_fit_on_image_uses_every_pixel(cube):
    """fit_on='image' needs no training indices and standardizes over all pixels."""
    features = Preprocessor(n_components=None, fit_on="image").fit_transform(cube)
    flat = features.reshape(-1, BANDS).astype(np.float64)
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(axis=0), 1.0, rtol=1e-5)


def test_low_rank_structure_is_captured():
    """On a rank-3 cube plus faint noise the first 3 components hold almost all the
    variance and reconstruct the standardized data."""
    rng = np.random.default_rng(3)
    rank, bands = 3, 20
    latent = rng.normal(size=(40 * 50, rank)) * np.array([5.0, 3.0, 2.0])
    loadings = rng.normal(size=(rank, bands))
    pixels = latent @ loadings + 200.0 + 1e-3 * rng.normal(size=(40 * 50, bands))
    cube = pixels.reshape(40, 50, bands)

    pre = Preprocessor(n_components=rank, fit_on="image").fit(cube)
    evr = pre.explained_variance_ratio
    assert evr[:rank].sum() > 0.999
    assert evr[rank] < 1e-4

    z = (pixels - pre.mean_) / pre.scale_
    basis = pre.components_[:, :rank]
    residual = z - z @ basis @ basis.T
    assert np.linalg.norm(residual) < 1e-3 * np.linalg.norm(z)
    # The kept components span the (standardized) loadings of the structure.
    standardized_loadings = loadings / pre.scale_
    leftover = standardized_loadings - standardized_loadings @ basis @ basis.T
    assert np.linalg.norm(leftover) < 1e-3 * np.linalg.norm(standardized_loadings)


def test_too_many_components_raises(cube, train_index):
    """n_components larger than the band count raises ValueError naming both."""
    with pytest.raises(ValueError, match=rf"n_components={BANDS + 1}.*{BANDS} bands"):
        Preprocessor(n_components=BANDS + 1).fit(cube, train_index)


def test_unknown_fit_on_raises():
    """An unknown fit_on raises ValueError naming it and the accepted values."""
    with pytest.raises(ValueError, match="'test'") as info:
        Preprocessor(fit_on="test")
    assert "train" in str(info.value) and "image" in str(info.value)


@pytest.mark.parametrize("n_components", [0, -3])
def test_non_positive_components_raise(n_components):
    """n_components below 1 raises ValueError."""
    with pytest.raises(ValueError, match="n_components"):
        Preprocessor(n_components=n_components)


@pytest.mark.parametrize("index", [None, np.array([], dtype=np.int64)])
def test_fit_on_train_needs_indices(cube, index):
    """fit_on='train' without training indices raises ValueError."""
    with pytest.raises(ValueError, match="training pixel indices"):
        Preprocessor().fit(cube, index)


def test_transform_before_fit_raises(cube):
    """transform before fit raises RuntimeError."""
    with pytest.raises(RuntimeError, match="before fit"):
        Preprocessor().transform(cube)
