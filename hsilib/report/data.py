"""Data figures and tables: false-colour images, label maps, class spectra and
counts, classification maps."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from ..data.load import SceneData
from ..data.splits import Split
from ..data.twin import TWIN_VERSION


def data_source_summary(data: dict[str, SceneData]) -> str:
    """One line naming the data source of each loaded scene (and the twin's
    version, which its results' keys hold)."""
    return "; ".join(
        f"{d.scene.title}: {f'TWIN v{TWIN_VERSION} (synthetic spectra)' if d.is_twin else 'real cube'}"
        for d in data.values()
    )


@dataclass(frozen=True)
class DataSourceNote:
    """How a chapter names the data its results come from: loudly when any
    scene is the offline twin, in its opening note, table captions and prose;
    where only some scenes are twins, which ones."""

    summary: str
    twin_scenes: tuple[str, ...]
    real_scenes: tuple[str, ...]

    @classmethod
    def of(cls, data: dict[str, SceneData]) -> "DataSourceNote":
        return cls(data_source_summary(data), tuple(d.scene.title for d in data.values() if d.is_twin),
                   tuple(d.scene.title for d in data.values() if not d.is_twin))

    @property
    def twin(self) -> bool:
        return bool(self.twin_scenes)

    @property
    def mixed(self) -> bool:
        return bool(self.twin_scenes and self.real_scenes)

    @property
    def label(self) -> str:
        """For table captions."""
        if not self.twin:
            return "real data"
        which = f" for {' and '.join(self.twin_scenes)}" if self.mixed else ""
        real = f"; real data for {' and '.join(self.real_scenes)}" if self.mixed else ""
        return f"TWIN DATA{which} (synthetic spectra over the real ground truth){real}"

    @property
    def words(self) -> str:
        """For prose: "On the offline twin, ..."."""
        return "the offline twin" if self.twin else "the real cubes"

    def note(self, subject: str, details: str = "") -> str:
        """The chapter's opening note (Markdown): the source of each scene,
        what twin results are and are not, then ``details`` of the run.
        ``subject`` completes "They show how ... on a realistic stand-in"."""
        whose = f"Results on {' and '.join(self.twin_scenes)}" if self.mixed else "These results"
        what = (f"{whose} come from the offline twin: real ground truth and split masks with "
                f"synthetic spectra. They show how {subject} on a realistic stand-in and are "
                "**not** a reproduction of the paper's numbers." if self.twin else
                "All results below are on the real published cubes.")
        if self.mixed:
            what += f" Results on {' and '.join(self.real_scenes)} are on the real published cube."
        return f"**Data source: {self.summary}.** {what}" + (f" {details}" if details else "")


def false_color(cube: np.ndarray, bands: tuple[int, int, int], clip: float = 2.0) -> np.ndarray:
    """(H, W, 3) float image in [0, 1] from three bands, each stretched between
    its ``clip`` and ``100 - clip`` percentiles."""
    rgb = cube[..., list(bands)].astype(np.float32)
    lo, hi = np.percentile(rgb.reshape(-1, 3), [clip, 100 - clip], axis=0)
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-12), 0, 1)


def class_colors(n_classes: int) -> np.ndarray:
    """(n_classes, 4) RGBA colours, distinct for up to 20 classes."""
    base = plt.get_cmap("tab20")(np.linspace(0, 1, 20))
    return base[np.arange(n_classes) % 20]


def label_image(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(H, W, 4) RGBA image of a label map (0..K-1), unlabelled (-1) in black."""
    palette = np.vstack([[0, 0, 0, 1], class_colors(n_classes)])
    return palette[labels + 1]


def class_legend(fig: plt.Figure, names: list[str], ncol: int = 4) -> None:
    handles = [Patch(color=c, label=f"{i + 1}. {n}")
               for i, (n, c) in enumerate(zip(names, class_colors(len(names))))]
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.025 * np.ceil(len(names) / ncol)))


def scene_overview(data: SceneData, splits: dict[str, Split]) -> plt.Figure:
    """The paper's Fig. 1 for one scene: false colour, ground truth, and the
    train and test maps of every split."""
    scene, k = data.scene, data.scene.n_classes
    panels = [("false colour", false_color(data.cube, scene.rgb_bands)),
              ("ground truth", label_image(data.labels, k))]
    for kind, split in splits.items():
        n_train, n_test = (int(c.sum()) for c in split.counts(k))
        panels += [(f"{kind} train ({n_train:,} px)", label_image(split.train, k)),
                   (f"{kind} test ({n_test:,} px)", label_image(split.test, k))]
    height, width = scene.shape[:2]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.6 * height / width + 0.6))
    for ax, (title, image) in zip(axes, panels):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{scene.title} — {data.source_label}", fontsize=11)
    class_legend(fig, scene.class_names, ncol=min(4, k))
    return fig


def mean_spectra(data: SceneData, ax: plt.Axes) -> None:
    """Mean spectrum (with a ±1 std band) of every class against wavelength."""
    scene = data.scene
    labels = data.labels.ravel()
    pixels = data.cube.reshape(-1, data.cube.shape[2]).astype(np.float64)
    waves = scene.wavelengths()
    for k, (name, color) in enumerate(zip(scene.class_names, class_colors(scene.n_classes))):
        rows = pixels[labels == k]
        mean, std = rows.mean(axis=0), rows.std(axis=0)
        ax.plot(waves, mean, color=color, lw=1.2, label=name)
        ax.fill_between(waves, mean - std, mean + std, color=color, alpha=0.12, lw=0)
    ax.set_xlabel("wavelength (nm, approximate)")
    ax.set_ylabel("sensor counts")
    ax.set_title(f"{scene.title} — {data.source_label}", fontsize=10)


def count_table(data: SceneData, splits: dict[str, Split]) -> pd.DataFrame:
    """Per-class pixel counts: ground truth, then train and test of every split."""
    scene, k = data.scene, data.scene.n_classes
    labels = data.labels
    table = pd.DataFrame({"class": scene.class_names,
                          "labelled": np.bincount(labels[labels >= 0], minlength=k)})
    for kind, split in splits.items():
        train, test = split.counts(k)
        table[f"{kind} train"] = train
        table[f"{kind} test"] = test
    total = table.drop(columns="class").sum().to_frame().T.assign(**{"class": "total"})
    table = pd.concat([table, total], ignore_index=True)
    table.index = [*range(1, k + 1), ""]
    return table


def prediction_map(shape: tuple[int, int], index: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """(H, W) label map with ``predicted`` classes at flat pixel ``index``, -1 elsewhere."""
    labels = np.full(shape[0] * shape[1], -1, dtype=np.int64)
    labels[np.asarray(index)] = np.asarray(predicted)
    return labels.reshape(shape)


def classification_maps(data: SceneData, split: Split, predicted: np.ndarray, title: str) -> plt.Figure:
    """Test-set ground truth, predictions and errors of one model, side by side."""
    k = data.scene.n_classes
    test_index, test_labels = split.test_index()
    shape = data.scene.shape[:2]
    wrong = np.asarray(predicted) != test_labels
    errors = np.zeros((*shape, 4))
    errors[..., 3] = 1
    flat = errors.reshape(-1, 4)
    flat[test_index] = [0.85, 0.85, 0.85, 1]
    flat[test_index[wrong]] = [0.85, 0.1, 0.1, 1]
    panels = [("test ground truth", label_image(split.test, k)),
              ("predicted", label_image(prediction_map(shape, test_index, predicted), k)),
              (f"errors (red): {wrong.mean():.1%}", errors)]
    height, width = shape
    fig, axes = plt.subplots(1, 3, figsize=(9, 3 * height / width + 0.8))
    for ax, (name, image) in zip(axes, panels):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{title} — {data.source_label}", fontsize=10)
    class_legend(fig, data.scene.class_names, ncol=min(4, k))
    return fig
