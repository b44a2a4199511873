"""Offline twin: synthetic spectra over a scene's real ground-truth map.

Used where the real cube cannot be had (no internet). The twin has the real
cube's shape and dtype and the real class layout, and its spectra are built to
make the task about as hard as the real one in the ways that matter here:

* **class signatures** are mixtures of a few shared smooth "material" curves,
  so classes overlap spectrally (a linear classifier is far from 100%);
* **spatially smooth intra-class variation**: low-frequency random fields
  shift each class's spectrum along class-specific directions, so pixels far
  apart differ more than neighbours and a spatially disjoint split is harder
  than a random one (test regions sit at unseen field values);
* **mixed pixels** at class borders (the one-hot class map is blurred);
* smooth **brightness** changes and per-band **noise**, stronger at the ends
  of the spectrum and in water-absorption bands where the cube has them.

Everything is seeded from the scene name, so a twin is the same on every call
and every machine. It is *not* the real data: results on it are never a
reproduction of published numbers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from .scenes import Scene

TWIN_VERSION = 1


@dataclass(frozen=True)
class TwinSpec:
    """Knobs of the twin's difficulty (defaults are calibrated; see tests).

    n_materials : shared smooth spectra that class signatures mix from.
    concentration : Dirichlet concentration of the mixtures; larger values
        make classes more alike.
    class_spread : class-specific perturbation around the material mixture.
    n_fields, drift : number and amplitude of the smooth variation fields.
    drift_length : their correlation length, as a fraction of the image's
        shorter side.
    brightness : amplitude of the smooth multiplicative brightness field.
    border_sigma : blur (px) of the class map that mixes pixels at borders.
    noise : per-band white-noise standard deviation (reflectance units).
    """

    n_materials: int = 5
    concentration: float = 3.0
    class_spread: float = 0.025
    n_fields: int = 3
    drift: float = 0.025
    drift_length: float = 0.06
    brightness: float = 0.08
    border_sigma: float = 0.7
    noise: float = 0.02


def _seed(scene: Scene) -> int:
    digest = hashlib.sha256(f"hsilib-twin-{TWIN_VERSION}-{scene.name}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _smooth_curves(rng: np.random.Generator, n: int, bands: int, sigma: float) -> np.ndarray:
    """``n`` smooth curves over ``bands``, each scaled to zero mean, unit max-abs."""
    walk = np.cumsum(rng.standard_normal((n, bands)), axis=1)
    curves = gaussian_filter1d(walk, sigma=sigma, axis=1, mode="nearest")
    curves -= curves.mean(axis=1, keepdims=True)
    return curves / np.abs(curves).max(axis=1, keepdims=True)


def _fields(rng: np.random.Generator, n: int, shape: tuple[int, int], length: float) -> np.ndarray:
    """``n`` smooth Gaussian random fields of unit standard deviation, (n, H*W)."""
    out = np.empty((n, shape[0] * shape[1]), dtype=np.float32)
    for i in range(n):
        field = gaussian_filter(rng.standard_normal(shape), sigma=length, mode="reflect")
        out[i] = ((field - field.mean()) / field.std()).ravel()
    return out


def make_twin(scene: Scene, gt: np.ndarray, spec: TwinSpec = TwinSpec()) -> np.ndarray:
    """Return the twin cube of ``scene`` over ground truth ``gt``.

    Parameters
    ----------
    scene : registered scene (gives shape, dtype, water bands).
    gt : (H, W) ground-truth map of the scene (0 = background).
    spec : difficulty settings.

    Returns
    -------
    np.ndarray of shape ``scene.shape`` and dtype ``scene.dtype``.
    """
    height, width, bands = scene.shape
    if gt.shape != (height, width):
        raise ValueError(f"ground truth shape {gt.shape} does not match scene {scene.shape[:2]}")
    rng = np.random.default_rng(_seed(scene))
    values = np.array([0, *sorted(scene.classes)])  # row 0 is background
    n_rows = len(values)

    # Shared materials, then class signatures as sparse mixtures of them.
    materials = 0.3 + 0.2 * _smooth_curves(rng, spec.n_materials, bands, sigma=bands / 25)
    mix = rng.dirichlet(np.full(spec.n_materials, spec.concentration), size=n_rows)
    signatures = mix @ materials
    signatures += spec.class_spread * _smooth_curves(rng, n_rows, bands, sigma=bands / 30)
    # Class-specific directions of the smooth variation; background varies most.
    directions = _smooth_curves(rng, n_rows * spec.n_fields, bands, sigma=bands / 20)
    directions = spec.drift * directions.reshape(n_rows, spec.n_fields, bands)
    directions[0] *= 3.0

    # Soft class abundances: one-hot map blurred so border pixels are mixed.
    if not np.isin(gt, values).all():
        raise ValueError(f"ground truth has values outside {scene.name}'s classes")
    rows = np.searchsorted(values, gt)
    onehot = np.zeros((n_rows, height, width), dtype=np.float32)
    onehot[rows, np.arange(height)[:, None], np.arange(width)[None, :]] = 1.0
    for i in range(n_rows):
        onehot[i] = gaussian_filter(onehot[i], sigma=spec.border_sigma, mode="nearest")
    abundance = (onehot / onehot.sum(axis=0, keepdims=True)).reshape(n_rows, -1).T

    length = spec.drift_length * min(height, width)
    fields = _fields(rng, spec.n_fields + 1, (height, width), length)
    spectra = abundance @ signatures.astype(np.float32)
    for k in range(spec.n_fields):
        spectra += fields[k][:, None] * (abundance @ directions[:, k].astype(np.float32))
    spectra *= 1.0 + spec.brightness * fields[-1][:, None]

    band_noise = np.full(bands, spec.noise, dtype=np.float32)
    band_noise *= 1.0 + 1.5 * np.linspace(-1, 1, bands, dtype=np.float32) ** 4  # noisy ends
    if scene.water_bands:
        water = np.asarray(scene.water_bands) - 1
        spectra[:, water] *= 0.05  # absorbed: little signal, mostly noise
        band_noise[water] *= 3.0
    spectra += band_noise * rng.standard_normal(spectra.shape, dtype=np.float32)

    # Reflectance-like units to sensor counts in the real cube's dtype.
    info = np.iinfo(scene.dtype)
    counts = np.clip(np.rint(1000.0 + 8000.0 * spectra), info.min, info.max)
    return counts.astype(scene.dtype).reshape(height, width, bands)
