"""Train/test splits: GRSS-DASE spatially disjoint, and stratified random.

The random split draws, per class, exactly as many training pixels as the
disjoint split has (the paper's protocol for a fair comparison), uniformly
over the whole image, so the two splits differ only in *where* the training
pixels are.

Known defects of the published disjoint masks (see the data manifest) and how
``defects`` handles them:

* Indian Pines: the DASE map uses its own label order (remapped here to the
  EHU order); 151 of its 5,689 training pixels lie on EHU ground-truth
  background, and 10 (x=108..111, y=76..78) are labelled Soybean-mintill where
  the ground truth says Grass-pasture-mowed.
* Pavia University: 1,147 of the 3,921 training pixels of ``TRpavia_fixed``
  lie on ground-truth background.

``defects="clean"`` (default) drops those training pixels, so every label
agrees with the ground truth; they are not moved to the test set either (they
sit inside training regions). ``defects="as_published"`` keeps the masks as
they are (the convention of the public code the paper's ratios match).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .load import load_file, load_gt, to_labels
from .scenes import Scene, get_scene

SPLIT_KINDS = ("random", "disjoint")
DEFECT_POLICIES = ("clean", "as_published")


@dataclass(frozen=True)
class Split:
    """A train/test split as two (H, W) label maps (0..K-1; -1 = not in the set).

    ``notes`` say what was done to the published masks.
    """

    kind: str
    train: np.ndarray
    test: np.ndarray
    seed: int | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        overlap = int(np.count_nonzero((self.train >= 0) & (self.test >= 0)))
        if overlap:
            raise ValueError(f"{self.kind} split: {overlap} pixels are in both train and test")

    @staticmethod
    def _index(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = labels.ravel()
        idx = np.flatnonzero(flat >= 0)
        return idx, flat[idx]

    def train_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat pixel indices (row-major) and labels of the training set."""
        return self._index(self.train)

    def test_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Flat pixel indices (row-major) and labels of the test set."""
        return self._index(self.test)

    def counts(self, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-class pixel counts of train and test."""
        def count(labels: np.ndarray) -> np.ndarray:
            return np.bincount(labels[labels >= 0], minlength=n_classes)
        return count(self.train), count(self.test)


def _mask_values(scene: Scene, remote, label_map) -> np.ndarray:
    mask = load_file(scene, remote).astype(np.int64)
    if mask.shape != scene.shape[:2]:
        raise ValueError(f"{remote.name}: shape {mask.shape}, expected {scene.shape[:2]}")
    return np.asarray(label_map)[mask] if label_map is not None else mask


def disjoint_split(scene: Scene, defects: str = "clean") -> Split:
    """The GRSS-DASE disjoint split of ``scene`` (see the module docstring)."""
    if defects not in DEFECT_POLICIES:
        raise ValueError(f"unknown defects policy {defects!r}; accepted: {', '.join(DEFECT_POLICIES)}")
    masks = scene.disjoint
    if masks is None:
        raise ValueError(f"scene {scene.name!r} has no disjoint split; use kind='random'")
    gt = load_gt(scene.name)
    train = _mask_values(scene, masks.train, masks.label_map)
    if masks.test is not None:
        test = _mask_values(scene, masks.test, masks.label_map)
    else:  # test = ground truth minus every published training position
        test = np.where(train > 0, 0, gt)
    on_background = (train > 0) & (gt == 0)
    conflicting = (train > 0) & (gt > 0) & (train != gt)
    bad_test = int(np.count_nonzero((test > 0) & (test != gt)))
    if bad_test:
        raise ValueError(f"{scene.name}: {bad_test} test pixels disagree with the ground truth")
    n_bg, n_conf = int(on_background.sum()), int(conflicting.sum())
    action = "dropped" if defects == "clean" else "kept (defects='as_published')"
    notes = tuple(
        f"{n} training pixels {what}: {action}"
        for n, what in ((n_bg, "lie on ground-truth background"),
                        (n_conf, "disagree with the ground truth"))
        if n
    )
    if defects == "clean":
        train = np.where(on_background | conflicting, 0, train)
    return Split("disjoint", to_labels(scene, train), to_labels(scene, test), None, notes)


def random_split(scene: Scene, train_counts, seed: int = 0) -> Split:
    """Stratified random split: ``train_counts[k]`` training pixels of class k,
    drawn uniformly from the labelled pixels; every other labelled pixel is test."""
    labels = to_labels(scene, load_gt(scene.name)).ravel()
    train_counts = np.asarray(train_counts, dtype=np.int64)
    if train_counts.shape != (scene.n_classes,):
        raise ValueError(f"train_counts needs {scene.n_classes} entries, got {train_counts.shape}")
    rng = np.random.default_rng(seed)
    train = np.full(labels.shape, -1, dtype=np.int64)
    for k, name in enumerate(scene.class_names):
        pixels = np.flatnonzero(labels == k)
        if not 0 <= train_counts[k] <= len(pixels):
            raise ValueError(
                f"class {name!r} has {len(pixels)} labelled pixels; cannot take "
                f"{train_counts[k]} for training"
            )
        chosen = rng.choice(pixels, size=train_counts[k], replace=False)
        train[chosen] = k
    test = np.where(train >= 0, -1, labels)
    shape = scene.shape[:2]
    return Split("random", train.reshape(shape), test.reshape(shape), seed)


def make_split(name: str, kind: str = "disjoint", seed: int = 0, defects: str = "clean",
               train_fraction: float | None = None) -> Split:
    """Split scene ``name``.

    Parameters
    ----------
    kind : ``"disjoint"`` (GRSS-DASE masks) or ``"random"`` (stratified, with
        the disjoint split's per-class training counts).
    seed : seed of the random draw (ignored for ``disjoint``).
    defects : how the disjoint masks' known defects are handled
        (``"clean"`` or ``"as_published"``).
    train_fraction : for ``random`` on a scene without disjoint masks (or to
        override the counts): fraction of each class used for training.
    """
    scene = get_scene(name)
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; accepted: {', '.join(SPLIT_KINDS)}")
    if defects not in DEFECT_POLICIES:
        raise ValueError(f"unknown defects policy {defects!r}; accepted: {', '.join(DEFECT_POLICIES)}")
    if kind == "disjoint":
        if train_fraction is not None:
            raise ValueError("train_fraction applies to random splits only; a disjoint split's "
                             "training pixels are those of the DASE masks")
        return disjoint_split(scene, defects)
    if train_fraction is not None:
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
        totals = np.bincount(to_labels(scene, load_gt(name))[load_gt(name) > 0],
                             minlength=scene.n_classes)
        counts = np.maximum(1, np.rint(train_fraction * totals)).astype(np.int64)
    elif scene.disjoint is not None:
        counts = disjoint_split(scene, defects).counts(scene.n_classes)[0]
    else:
        raise ValueError(
            f"scene {name!r} has no disjoint masks to copy training counts from; "
            "pass train_fraction"
        )
    return random_split(scene, counts, seed)
