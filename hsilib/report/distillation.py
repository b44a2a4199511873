"""The distillation chapter's own tables and figures: each family's mean
beside the paper's, every method's gain over the Scratch student of the same
seed, accuracy against training cost, and the anomalies of the paper's
Tables 11-13. The rows come from :func:`~hsilib.report.networks.networks_frame`."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..claims import paired_verdict
from ..compress.distill import FAMILIES
from ..reference import DISTILLATION_TABLES, paper_values
from .results import mean_std

SETTING = ["scene", "split", "seed", "ratio"]
GROUPS = {"Offline distillation": "offline", "Online distillation": "online",
          "Self distillation": "self", "Scratch": "scratch"}


def paper_family_means() -> pd.DataFrame:
    """The paper's mean top-1 of each family (and Scratch) over Tables 11-13:
    over all 12 cells of a method (3 sizes x 2 scenes x 2 splits) and over
    the 6 disjoint ones."""
    paper = pd.concat([paper_values(table, "top1") for table in DISTILLATION_TABLES.values()])
    paper = paper[paper["group"].isin(GROUPS)].assign(family=lambda f: f["group"].map(GROUPS))
    return pd.DataFrame({"all cells": paper.groupby("family")["value"].mean(),
                         "disjoint cells": paper[paper["split"] == "disjoint"].groupby("family")["value"].mean()})


def family_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean top-1 of each family (and Scratch) over this run's cells, beside
    the paper's; ``spread`` is the standard deviation of the family mean
    across seeds (``-`` with one seed)."""
    rows = frame[frame["group"].isin([*FAMILIES, "scratch"])]
    paper = paper_family_means()
    table = {}
    for family in [*FAMILIES, "scratch"]:
        here = rows[rows["group"] == family]
        if here.empty:
            continue
        per_seed = here.groupby("seed")["top1"].mean()
        disjoint = here[here["split"] == "disjoint"]["top1"]
        table[family] = {"ours": here["top1"].mean(),
                         "spread across seeds": per_seed.std(ddof=1) if len(per_seed) > 1 else np.nan,
                         "paper": paper.loc[family, "all cells"],
                         "ours, disjoint": disjoint.mean() if len(disjoint) else np.nan,
                         "paper, disjoint": paper.loc[family, "disjoint cells"]}
    return pd.DataFrame.from_dict(table, orient="index")


def gains_over_scratch(frame: pd.DataFrame) -> pd.DataFrame:
    """Each method's top-1 minus the Scratch student's of the same scene,
    split, seed and size: mean ± std (points), how many paired runs gain, and
    the paired verdict (:func:`hsilib.claims.paired_verdict`)."""
    scratch = frame[frame["group"] == "scratch"].groupby(SETTING)["top1"].mean()
    methods = frame[frame["group"].isin(FAMILIES)]
    rows = {}
    for (method, family), group in methods.groupby(["method", "group"], sort=False):
        gain = (group.groupby(SETTING)["top1"].mean() - scratch).dropna()
        verdict, summary = paired_verdict(gain)
        rows[method] = {"family": family, "gain (points)": mean_std(gain, 2),
                        "paired runs gaining": f"{int((gain > 0).sum())} of {len(gain)}",
                        "better than Scratch?": verdict}
    return pd.DataFrame.from_dict(rows, orient="index")


def cost_against_accuracy(frame: pd.DataFrame, source_label: str) -> plt.Figure:
    """Top-1 against what training cost: wall time (left) and the parameters
    trained or held during training, teachers included (right); one point
    per method and student size, mean over scenes, splits and seeds."""
    rows = frame[frame["group"].isin(FAMILIES)]
    means = rows.groupby(["method", "group", "ratio"], sort=False)[["wall_s", "held_params", "top1"]].mean()
    colors = dict(zip(FAMILIES, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, column, label in ((axes[0], "wall_s", "training run wall time (s)"),
                              (axes[1], "held_params", "parameters in training, teachers included")):
        for (method, family, ratio), row in means.iterrows():
            ax.scatter(row[column], row["top1"], color=colors[family], s=30)
            if ratio == "90%":
                ax.annotate(method, (row[column], row["top1"]), fontsize=6, xytext=(3, 2),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 test accuracy (%)")
    handles = [plt.Line2D([], [], ls="", marker="o", color=colors[f], label=f) for f in FAMILIES]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.05))
    fig.suptitle(f"What each method costs to train and what it gives ({source_label})", fontsize=10)
    fig.tight_layout()
    return fig


def paper_anomalies() -> pd.DataFrame:
    """Cells of Tables 11-13 worth a second look: students above their
    CNN-2D teacher on a disjoint split, and the CNN-2D cell that differs
    between tables."""
    rows = []
    for ratio, table in DISTILLATION_TABLES.items():
        paper = paper_values(table, "top1", setting=ratio)
        teacher = paper[paper["method"] == "CNN-2D"].set_index(["dataset", "split"])["value"]
        above = paper[paper["group"].isin(GROUPS) & (paper["split"] == "disjoint")]
        for _, row in above.iterrows():
            margin = row["value"] - teacher[(row["dataset"], row["split"])]
            if margin > 0:
                rows.append({"finding": "student above its teacher", "table": table, "size": ratio,
                             "method": row["method"], "scene": row["dataset"], "split": row["split"],
                             "value": row["value"], "against": teacher[(row["dataset"], row["split"])],
                             "margin": round(margin, 1)})
    teacher_cells = pd.concat([paper_values(t, "top1", method=m, dataset="indian_pines", split="random")
                               for t, m in [(3, "CNN2D (c=40)"), *[(t, "CNN-2D") for t in (6, 7, 8, 11, 12, 13)]]])
    for value, group in teacher_cells.groupby("value"):
        rows.append({"finding": "CNN-2D, Indian Pines random", "table": ", ".join(map(str, group["table"])),
                     "size": "", "method": "CNN-2D", "scene": "indian_pines", "split": "random",
                     "value": value, "against": np.nan, "margin": np.nan})
    return pd.DataFrame(rows)
