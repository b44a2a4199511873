"""A compressed network beside the network it came from: the size ratio, the
speed-ups, the accuracy change and the agreement, for any compression kind
(quantization now; pruning and distillation use the same frame)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..reference import paper_name
from .convergence import converged, epochs_run
from .data import class_colors
from .results import mean_std, network_config

SETTING_FIELDS = ("model", "scene", "split", "seed", "data_source")


def _metric_columns(metrics: dict) -> dict:
    return {**{m: 100 * metrics[m] for m in ("top1", "top5", "oa", "aa")}, "kappa": metrics["kappa"]}


def _measure_columns(measured: dict) -> dict:
    return {"params": measured["params"], "params_all": measured["params_all"],
            "macs": measured["macs_per_sample"], "memory_mb": measured["memory_mb_serialized"],
            "memory_mb_theoretical": measured["memory_mb_theoretical"],
            "latency_ms": measured["latency_ms_median"], "throughput_per_s": measured["throughput_per_s"]}


def comparison_frame(records: list[dict], bases: dict[str, dict] | None = None,
                     base_title: str = "uncompressed") -> pd.DataFrame:
    """One row per compressed network and one per network they came from
    (``method`` ``"base"``, titled ``base_title``).

    A compressed record names its base (``base_key``). Its base's metrics and
    measurements are those measured in the same run when the record has them
    (``base_metrics``, ``base_measure``: the timings then compare directly),
    else those of the base's own record in ``bases`` (by key). A base
    measured by several runs gets their mean.

    Columns: the setting (model, scene, split, seed, data source), ``method``
    and ``method_title``, metrics in % (kappa as is), parameters (the paper's
    count and all), MACs, serialized and theoretical memory (MB), batch-1
    latency (ms), batch-1,000 throughput, and for compressed rows
    ``top1_change`` (points), ``agreement`` (share of test pixels given the
    base's class), ``size_ratio`` (serialized bytes, compressed / base),
    ``latency_speedup`` (base latency / compressed), ``throughput_ratio``
    (compressed / base), ``compress_s`` and ``wall_s``.
    """
    bases = bases or {}
    rows = []
    for record in records:
        key = record["base_key"]
        base = bases.get(key, {})
        base_measure = record.get("base_measure") or base.get("measure")
        base_metrics = record.get("base_metrics") or base.get("metrics")
        if base_measure is None or base_metrics is None:
            raise ValueError(f"record {record['key']} was not measured beside its base {key}: "
                             "pass the base's record in bases")
        setting = network_config(record)
        common = {**{k: setting[k] for k in SETTING_FIELDS}, "model_title": record["model_title"],
                  "base_key": key}
        measured = record["measure"]
        rows.append({**common, "method": "base", "method_title": base_title,
                     **_metric_columns(base_metrics), **_measure_columns(base_measure),
                     "agreement": 1.0, "converged": converged(base) if base else None,
                     "epochs_run": epochs_run(base) if base else np.nan})
        rows.append({**common, "method": record["method"], "method_title": record["method_title"],
                     **_metric_columns(record["metrics"]), **_measure_columns(measured),
                     "agreement": record["agreement"], "converged": converged(record),
                     "epochs_run": epochs_run(record),
                     "top1_change": 100 * (record["metrics"]["top1"] - base_metrics["top1"]),
                     "size_ratio": measured["memory_mb_serialized"] / base_measure["memory_mb_serialized"],
                     "latency_speedup": base_measure["latency_ms_median"] / measured["latency_ms_median"],
                     "throughput_ratio": measured["throughput_per_s"] / base_measure["throughput_per_s"],
                     "compress_s": record.get("compress_s", np.nan), "wall_s": record["wall_s"]})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    is_base = frame["method"] == "base"
    base_rows = frame[is_base].groupby("base_key", sort=False).agg(
        {c: "mean" if pd.api.types.is_float_dtype(frame[c]) else "first" for c in frame.columns
         if c != "base_key"}).reset_index()
    return pd.concat([base_rows, frame[~is_base]], ignore_index=True)[frame.columns]


def paper_labels(frame: pd.DataFrame, table: int, compressed_models: list[str]) -> pd.Series:
    """Each row's label as the paper's ``table`` prints it: a base row by its
    model's paper name, a compressed row of one of ``compressed_models`` (the
    networks the table compresses) by its method's paper name (each else by
    its title), and any other compressed row as "model + method"."""
    def label(row: pd.Series) -> str:
        if row["method"] == "base":
            return paper_name(table, row["model"]) or row["model_title"]
        if row["model"] in compressed_models:
            return paper_name(table, row["method"]) or row["method_title"]
        return f"{row['model_title']} + {row['method_title']}"

    return frame.apply(label, axis=1)


def _mean_range(values: pd.Series) -> str:
    return f"×{values.mean():.2f} ({values.min():.2f}–{values.max():.2f})"


def compression_summary(frame: pd.DataFrame, base_title: str = "the base") -> pd.DataFrame:
    """Per method, over every compressed row of a :func:`comparison_frame`:
    the speed-ups at batch 1 and 1,000 (mean, with the range), the size as a
    share of the base's (``base_title`` names it), the top-1 change (mean ±
    std, points), the agreement and the time the compression itself took
    (mean seconds)."""
    compressed = frame[frame["method"] != "base"]
    table = compressed.groupby("method", sort=False).agg(
        **{"speed-up, batch 1": ("latency_speedup", _mean_range),
           "speed-up, batch 1,000": ("throughput_ratio", _mean_range)},
        size=("size_ratio", lambda v: f"{100 * v.mean():.0f}% of {base_title}"),
        **{"top-1 change (points)": ("top1_change", mean_std)},
        agreement=("agreement", lambda v: f"{100 * v.mean():.1f}%"),
        **{"extra time (s)": ("compress_s", lambda v: round(v.mean(), 2))})
    return table


def compression_tradeoff(frame: pd.DataFrame, source_label: str, title: str) -> plt.Figure:
    """Accuracy change against size and against speed: every compressed row
    of a :func:`comparison_frame` as a point (colour: method, marker: model)."""
    compressed = frame[frame["method"] != "base"]
    methods = list(dict.fromkeys(compressed["method_title"]))
    models = list(dict.fromkeys(compressed["model_title"]))
    colors = dict(zip(methods, class_colors(len(methods))))
    markers = dict(zip(models, "osD^v<>"))
    panels = [("size_ratio", "serialized size / base size"),
              ("latency_speedup", "speed-up at batch 1 (base latency / latency)"),
              ("throughput_ratio", "speed-up at batch 1,000 (throughput / base throughput)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), sharey=True)
    for ax, (column, label) in zip(axes, panels):
        for (method, model), group in compressed.groupby(["method_title", "model_title"], sort=False):
            ax.scatter(group[column], group["top1_change"], color=colors[method], marker=markers[model],
                       s=45, alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(1, color="k", lw=0.8, ls=":")
        ax.set_xlabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 change vs the base (points)")
    handles = ([plt.Line2D([], [], ls="", marker="o", color=colors[m], label=m) for m in methods]
               + [plt.Line2D([], [], ls="", marker=markers[m], color="grey", label=m) for m in models])
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.06))
    fig.suptitle(f"{title} — one point per model, method, scene, split and seed ({source_label})",
                 fontsize=10)
    fig.tight_layout()
    return fig
