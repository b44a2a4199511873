"""Preprocessing of Section 2.2: band cleaning, standardization, PCA.

Statistics (band means and deviations, principal axes) are fitted on the
training pixels by default. The paper fits PCA on the whole image
(``fit_on="image"``): that lets the test pixels shape the features the model
sees, a mild form of leakage that the Datasets chapter measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenes import Scene

FIT_ON = ("train", "image")


def drop_water_bands(cube: np.ndarray, scene: Scene) -> np.ndarray:
    """Remove ``scene.water_bands`` (1-based) from an (H, W, B) cube."""
    if not scene.water_bands:
        return cube
    return np.delete(cube, np.asarray(scene.water_bands) - 1, axis=2)


@dataclass
class Preprocessor:
    """Standardize bands, then project on the leading principal components.

    Parameters
    ----------
    n_components : number of PCA components kept; ``None`` keeps all bands
        (standardization only).
    fit_on : ``"train"`` (statistics from training pixels only) or ``"image"``
        (every pixel, as the paper does).

    After :meth:`fit`, ``explained_variance_ratio`` holds the variance share of
    every component (all of them, for the explained-variance curve).
    """

    n_components: int | None = 40
    fit_on: str = "train"

    def __post_init__(self) -> None:
        if self.fit_on not in FIT_ON:
            raise ValueError(f"unknown fit_on {self.fit_on!r}; accepted: {', '.join(FIT_ON)}")
        if self.n_components is not None and self.n_components < 1:
            raise ValueError(f"n_components must be a positive integer or None, got {self.n_components}")

    def fit(self, cube: np.ndarray, train_index: np.ndarray | None = None) -> "Preprocessor":
        """Fit on ``cube`` (H, W, B); ``train_index`` are flat training pixel indices
        (required when ``fit_on='train'``)."""
        pixels = cube.reshape(-1, cube.shape[-1]).astype(np.float64)
        if self.fit_on == "train":
            if train_index is None or len(train_index) == 0:
                raise ValueError("fit_on='train' needs the training pixel indices")
            pixels = pixels[train_index]
        bands = pixels.shape[1]
        if self.n_components is not None and self.n_components > bands:
            raise ValueError(f"n_components={self.n_components} exceeds the cube's {bands} bands")
        self.mean_ = pixels.mean(axis=0)
        self.scale_ = pixels.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0  # constant band: leave it at zero
        z = (pixels - self.mean_) / self.scale_
        eigval, eigvec = np.linalg.eigh(np.cov(z, rowvar=False))
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.clip(eigval[order], 0, None), eigvec[:, order]
        # Deterministic signs: the largest loading of each axis is positive.
        signs = np.sign(eigvec[np.abs(eigvec).argmax(axis=0), np.arange(bands)])
        self.components_ = eigvec * signs
        self.explained_variance_ratio = eigval / eigval.sum()
        return self

    def transform(self, cube: np.ndarray) -> np.ndarray:
        """Return the (H, W, C) float32 features of an (H, W, B) cube."""
        if not hasattr(self, "mean_"):
            raise RuntimeError("Preprocessor.transform called before fit")
        height, width, bands = cube.shape
        z = (cube.reshape(-1, bands).astype(np.float64) - self.mean_) / self.scale_
        if self.n_components is not None:
            z = z @ self.components_[:, : self.n_components]
        return z.astype(np.float32).reshape(height, width, -1)

    def fit_transform(self, cube: np.ndarray, train_index: np.ndarray | None = None) -> np.ndarray:
        return self.fit(cube, train_index).transform(cube)
