"""Figures and tables for the book: label maps, false-colour images, spectra."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from .data.load import SceneData
from .data.splits import Split


def data_source_summary(data: dict[str, SceneData]) -> str:
    """One line naming the data source of each loaded scene."""
    return "; ".join(
        f"{d.scene.title}: {'TWIN (synthetic spectra)' if d.is_twin else 'real cube'}"
        for d in data.values()
    )


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


# --- Results: our numbers beside the paper's -------------------------------

SPLIT_TITLES = {"disjoint": "Disjoint", "random": "Random"}


def results_frame(records: list[dict]) -> pd.DataFrame:
    """One row per result record: config, test metrics (in %), measurements."""
    rows = []
    for r in records:
        measured = r.get("measure", {})
        rows.append({
            **{k: r["config"][k] for k in ("model", "scene", "split", "seed", "epochs", "data_source")},
            "method": r["model_title"],
            **{m: 100 * r["metrics"][m] for m in ("top1", "top5", "oa", "aa")},
            "kappa": r["metrics"]["kappa"],
            "params": measured.get("params"),
            "macs": measured.get("macs_per_sample"),
            "memory_mb": measured.get("memory_mb_serialized"),
            "latency_ms": measured.get("latency_ms_median"),
            "throughput_per_s": measured.get("throughput_per_s"),
            "best_epoch": r.get("history", {}).get("best_epoch"),
            "wall_s": r["wall_s"],
        })
    return pd.DataFrame(rows)


def mean_std(values: pd.Series, digits: int = 1) -> str:
    """``"86.3"`` for one value, ``"86.3 ± 0.4"`` (sample std) for several."""
    values = values.dropna()
    if values.empty:
        return "-"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def side_by_side(frame: pd.DataFrame, reference: pd.DataFrame, metric: str = "top1",
                 methods: list[str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Table of ours | paper | difference for every method, scene and split.

    ``frame`` is :func:`results_frame` output (several seeds give mean ± std);
    ``reference`` holds the paper's rows for the same table (columns
    ``method, dataset, split, metric, value``). The difference is our mean
    minus the paper's value, in points.
    """
    ours = frame.groupby(["method", "scene", "split"])[metric]
    paper = reference[reference["metric"] == metric].set_index(["method", "dataset", "split"])["value"]
    methods = methods or list(dict.fromkeys(frame["method"]))
    columns = {}
    for scene in dict.fromkeys(frame["scene"]):
        for split in dict.fromkeys(frame["split"]):
            head = (scene.replace("_", " ").title(), SPLIT_TITLES.get(split, split))
            mine = {m: ours.get_group((m, scene, split)) for m in methods
                    if (m, scene, split) in ours.groups}
            theirs = {m: paper.get((m, scene, split)) for m in methods}
            columns[head + ("ours",)] = [mean_std(mine[m], digits) if m in mine else "-" for m in methods]
            columns[head + ("paper",)] = [theirs[m] if theirs[m] is not None else np.nan for m in methods]
            # "+ 0.0" turns a rounded -0.0 into 0.0.
            columns[head + ("Δ",)] = [round(mine[m].mean() - theirs[m], digits) + 0.0
                                      if m in mine and theirs[m] is not None else np.nan
                                      for m in methods]
    table = pd.DataFrame(columns, index=pd.Index(methods, name="method"))
    table.columns = pd.MultiIndex.from_tuples(table.columns)
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


def accuracy_vs_parameters(frame: pd.DataFrame, reference: pd.DataFrame, source_label: str
                           ) -> plt.Figure:
    """Top-1 accuracy against trainable parameters (log scale), one panel per
    scene and split: ours (filled) and the paper's (hollow) where it gives both."""
    torch_rows = frame.dropna(subset=["params"])
    scenes, splits = list(dict.fromkeys(frame["scene"])), list(dict.fromkeys(frame["split"]))
    fig, axes = plt.subplots(len(scenes), len(splits), figsize=(5 * len(splits), 3.6 * len(scenes)),
                             squeeze=False)
    paper_params = reference[reference["metric"] == "params"].set_index("method")["value"]
    paper_top1 = reference[reference["metric"] == "top1"].set_index(["method", "dataset", "split"])["value"]
    colors = dict(zip(dict.fromkeys(frame["method"]), plt.get_cmap("tab10").colors))
    for row, scene in enumerate(scenes):
        for col, split in enumerate(splits):
            ax = axes[row][col]
            here = torch_rows[(torch_rows["scene"] == scene) & (torch_rows["split"] == split)]
            for method, group in here.groupby("method", sort=False):
                color = colors[method]
                ax.errorbar(group["params"].mean(), group["top1"].mean(),
                            yerr=group["top1"].std(ddof=1) if len(group) > 1 else None,
                            fmt="o", color=color, label=method)
                if method in paper_params.index and (method, scene, split) in paper_top1.index:
                    ax.scatter(paper_params[method], paper_top1[(method, scene, split)],
                               facecolors="none", edgecolors=color, s=60)
            ax.set_xscale("log")
            ax.set_xlabel("trainable parameters (conv, linear, LSTM)")
            ax.set_ylabel("top-1 test accuracy (%)")
            ax.set_title(f"{scene.replace('_', ' ').title()}, {split}", fontsize=10)
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], ls="", marker="o", mfc="none", mec="k"))
    labels.append("paper (Table 3; parameters counted on Indian Pines)")
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"Accuracy against size — filled: ours ({source_label}); hollow: paper", fontsize=10)
    fig.tight_layout()
    return fig


# --- Quantization -------------------------------------------------------------

def _metric_columns(metrics: dict) -> dict:
    return {**{m: 100 * metrics[m] for m in ("top1", "top5", "oa", "aa")}, "kappa": metrics["kappa"]}


def _measure_columns(measured: dict) -> dict:
    return {"params": measured["params"], "memory_mb": measured["memory_mb_serialized"],
            "memory_mb_theoretical": measured["memory_mb_theoretical"],
            "latency_ms": measured["latency_ms_median"], "throughput_per_s": measured["throughput_per_s"]}


def quantization_frame(records: list[dict]) -> pd.DataFrame:
    """One row per quantized model (a :func:`hsilib.compress.runs.run_quantization`
    record) and one per float32 model they came from (``mode`` ``"fp32"``).

    Metrics in %; ``latency_speedup`` (fp32 latency / int8 latency at batch
    1), ``throughput_ratio`` (batch 1,000) and ``size_ratio`` (serialized
    bytes) compare each int8 model with its float32 model timed in the same
    run; ``top1_change`` is its top-1 minus the float32 model's, in points.
    A float32 model timed by several runs gets their mean.
    """
    rows = []
    for r in records:
        base = r["config"]["base"]
        common = {**{k: base[k] for k in ("model", "scene", "split", "seed", "data_source")},
                  "model_title": r["model_title"], "base_key": r["base_key"]}
        fp32, int8 = r["fp32_measure"], r["measure"]
        rows.append({**common, "mode": "fp32", "mode_title": "float32", **_metric_columns(r["fp32_metrics"]),
                     **_measure_columns(fp32), "agreement": 1.0, "wall_s": np.nan})
        rows.append({**common, "mode": r["config"]["mode"], "mode_title": r["mode_title"],
                     **_metric_columns(r["metrics"]), **_measure_columns(int8),
                     "agreement": r["agreement"],
                     "top1_change": 100 * (r["metrics"]["top1"] - r["fp32_metrics"]["top1"]),
                     "latency_speedup": fp32["latency_ms_median"] / int8["latency_ms_median"],
                     "throughput_ratio": int8["throughput_per_s"] / fp32["throughput_per_s"],
                     "size_ratio": int8["memory_mb_serialized"] / fp32["memory_mb_serialized"],
                     "wall_s": r["wall_s"]})
    frame = pd.DataFrame(rows)
    is_fp32 = frame["mode"] == "fp32"
    fp32 = frame[is_fp32].groupby("base_key", sort=False).agg(
        {c: "mean" if pd.api.types.is_float_dtype(frame[c]) else "first" for c in frame.columns
         if c != "base_key"}).reset_index()
    return pd.concat([fp32, frame[~is_fp32]], ignore_index=True)[frame.columns]


def quantization_tradeoff(frame: pd.DataFrame, source_label: str) -> plt.Figure:
    """Accuracy change against size and against speed: every int8 model of
    :func:`quantization_frame` as a point (colour: mode, marker: model)."""
    quantized = frame[frame["mode"] != "fp32"]
    modes = list(dict.fromkeys(quantized["mode_title"]))
    models = list(dict.fromkeys(quantized["model_title"]))
    colors = dict(zip(modes, plt.get_cmap("tab10").colors))
    markers = dict(zip(models, "osD^v<>"))
    panels = [("size_ratio", "serialized size / float32 size"),
              ("latency_speedup", "speed-up at batch 1 (float32 latency / int8 latency)"),
              ("throughput_ratio", "speed-up at batch 1,000 (int8 / float32 throughput)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), sharey=True)
    for ax, (column, label) in zip(axes, panels):
        for (mode, model), group in quantized.groupby(["mode_title", "model_title"], sort=False):
            ax.scatter(group[column], group["top1_change"], color=colors[mode], marker=markers[model],
                       s=45, alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(1, color="k", lw=0.8, ls=":")
        ax.set_xlabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 change vs float32 (points)")
    handles = ([plt.Line2D([], [], ls="", marker="o", color=colors[m], label=m) for m in modes]
               + [plt.Line2D([], [], ls="", marker=markers[m], color="grey", label=m) for m in models])
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(f"What int8 buys and costs — one point per model, mode, scene and split ({source_label})",
                 fontsize=10)
    fig.tight_layout()
    return fig
