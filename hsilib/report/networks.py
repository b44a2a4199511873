"""What the compression chapters share: one frame of every network (trained
from scratch, pruned or distilled) and its size, the paper's tables of
results at each nominal ratio (Tables 6-8, 11-13) ours beside the paper's,
and accuracy against cost."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..compress.prune import RATIOS, target_widths
from ..models import get_model
from ..reference import paper_name, paper_values
from .convergence import converged, epochs_run, ring, ring_legend_handle, unconverged
from .data import class_colors
from .results import network_config, side_by_side


def ratio_of(model: str, widths) -> str | None:
    """The nominal ratio whose Table 5 widths ``widths`` are, for ``model``."""
    spec = get_model(model)
    network = spec.make(spec.components or 200, 2)
    for ratio in RATIOS:
        if tuple(target_widths(network, ratio).values()) == tuple(widths):
            return ratio
    return None


def networks_frame(records: list[dict]) -> pd.DataFrame:
    """One row per network of a compression chapter: trained from scratch
    (a baseline, or Scratch with Table 5's widths), pruned or distilled.

    ``label`` is ours (the model, ``"scratch"``, the criterion or method),
    ``method`` the row label of Tables 6-8 and 11-13, ``group`` its group
    (``"baseline"``, ``"scratch"``, ``"prune"`` or the distillation family),
    ``ratio`` the nominal ratio (the student's size), ``strategy`` the
    pruning strategy; metrics in %, measurements as recorded."""
    rows = []
    for r in records:
        config = network_config(r)
        strategy = ""
        if r["kind"] == "prune":
            label, group, ratio, strategy = r["method"], "prune", r["ratio"], r["strategy"]
            epochs = r["total_epochs"]
        elif r["kind"] == "distill":
            label, group, ratio = r["method"], r["family"], r["student"]
            epochs = len(r["history"]["val_oa"])
        elif config.get("widths"):
            label, group = "scratch", "scratch"
            ratio, epochs = ratio_of(config["model"], config["widths"]), config["epochs"]
        else:
            label, group, ratio, epochs = config["model"], "baseline", "", config["epochs"]
        measured = r["measure"]
        rows.append({
            "label": label, "method": paper_name(6, label) or r.get("method_title", r["model_title"]),
            "group": group, "ratio": ratio, "strategy": strategy,
            **{k: config[k] for k in ("model", "scene", "split", "seed", "data_source")},
            **{m: 100 * r["metrics"][m] for m in ("top1", "top5", "oa", "aa")},
            "kappa": r["metrics"]["kappa"], "params": measured["params"],
            "params_all": measured["params_all"], "macs": measured["macs_per_sample"],
            "memory_mb": measured["memory_mb_serialized"], "latency_ms": measured["latency_ms_median"],
            "throughput_per_s": measured["throughput_per_s"], "epochs": epochs,
            "converged": converged(r), "epochs_run": epochs_run(r),
            # What training holds: the trained parameters and any frozen teachers (distillation).
            "held_params": r.get("training_params", np.nan) + r.get("teacher_params", 0),
            "agreement": r.get("agreement"), "wall_s": r["wall_s"], "key": r["key"]})
    return pd.DataFrame(rows)


def ratio_table(frame: pd.DataFrame, ratio: str, metric: str, methods: list[str],
                tables: dict[str, int]) -> pd.DataFrame:
    """One of Tables 6-8 or 11-13 (``tables`` maps a ratio to its number) for
    one metric: the baselines, and every network at ``ratio`` (pruned ones
    with one-shot fine-tuning, as in the paper's tables), ours beside the
    paper's."""
    rows = frame[(frame["group"] == "baseline")
                 | ((frame["ratio"] == ratio) & frame["strategy"].isin(["", "I"]))]
    order = [m for m in methods if m in set(rows["method"])]
    return side_by_side(rows, paper_values(tables[ratio], setting=ratio), metric, methods=order)


def accuracy_against_cost(frame: pd.DataFrame, cost: str, source_label: str) -> plt.Figure:
    """Top-1 against a cost (``"params"``, ``"latency_ms"``, ``"macs"``), one
    panel per scene and split: each method (pruned ones one-shot) and Scratch
    across the ratios, the full CNN2D as a star, the other baselines as
    crosses."""
    labels = {"params": "parameters (the paper's count)", "latency_ms": "latency at batch 1 (ms)",
              "macs": "multiply-accumulates per sample", "memory_mb": "serialized size (MB)"}
    scenes, splits = list(dict.fromkeys(frame["scene"])), list(dict.fromkeys(frame["split"]))
    fig, axes = plt.subplots(len(scenes), len(splits), figsize=(5 * len(splits), 3.6 * len(scenes)),
                             squeeze=False)
    lines = frame[(frame["group"] != "baseline") & frame["strategy"].isin(["", "I"])]
    methods = list(dict.fromkeys(lines["method"]))
    colors = dict(zip(methods, class_colors(len(methods))))
    for row, scene in enumerate(scenes):
        for col, split in enumerate(splits):
            ax = axes[row][col]
            here = frame[(frame["scene"] == scene) & (frame["split"] == split)]
            for method, group in lines[(lines["scene"] == scene) & (lines["split"] == split)].groupby(
                    "method", sort=False):
                points = group.groupby("ratio").agg(
                    **{cost: (cost, "mean"), "top1": ("top1", "mean"),
                       "unconverged": ("converged", unconverged)}).sort_values(cost)
                ax.plot(points[cost], points["top1"], marker="o", color=colors[method], label=method,
                        ls="--" if method == paper_name(6, "scratch") else "-")
                late = points[points["unconverged"]]
                ring(ax, late[cost], late["top1"])
            for _, base in here[here["group"] == "baseline"].groupby("label"):
                marker = "*" if base["label"].iloc[0] == "cnn2d" else "x"
                ax.scatter(base[cost].mean(), base["top1"].mean(), marker=marker, s=90, color="k")
                if unconverged(base["converged"]):
                    ring(ax, base[cost].mean(), base["top1"].mean(), size=200)
                ax.annotate(base["method"].iloc[0], (base[cost].mean(), base["top1"].mean()),
                            fontsize=7, xytext=(4, -10), textcoords="offset points")
            ax.set_xscale("log")
            ax.set_xlabel(labels.get(cost, cost), fontsize=9)
            ax.set_ylabel("top-1 test accuracy (%)")
            ax.set_title(f"{scene.replace('_', ' ').title()}, {split}", fontsize=10)
            ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    if unconverged(frame["converged"]):
        handles.append(ring_legend_handle())
        names.append(handles[-1].get_label())
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.05))
    fig.suptitle(f"Networks of Table 5's widths against {labels.get(cost, cost)} ({source_label})",
                 fontsize=10)
    fig.tight_layout()
    return fig
