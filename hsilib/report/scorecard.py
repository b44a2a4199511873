"""The reproduction scorecard: every published accuracy cell (Tables 3 and
6-13) that a run of ours describes, ours beside the paper's, and per table
how close they are and whether they rank the methods alike.

Only cells made on real data count as a reproduction; cells made on the
offline twin are kept apart and counted, never scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..reference import DISTILLATION_TABLES, PRUNING_TABLES, load_reference, paper_name
from .convergence import converged
from .networks import ratio_of
from .results import network_config

ACCURACY_METRICS = ("top1", "top5")
TOLERANCES = (1, 2, 5)
CELL = ["table", "setting", "method", "dataset", "split", "metric"]


def _rows_of(record: dict, by_key: dict[str, dict]) -> list[tuple[int, str, str]]:
    """The (table, setting, row label) cells of the paper that ``record``'s
    network is (none for networks the paper did not run)."""
    config, kind = network_config(record), record["kind"]
    if kind == "train":
        if config.get("pca_fit", "train") != "train":
            return []  # PCA fitted on the whole image: a comparison of ours, not a table row
        if config.get("widths"):
            ratio = ratio_of(config["model"], config["widths"])
            if ratio is None or config["model"] != "cnn2d":
                return []
            return [(table, ratio, paper_name(table, "scratch"))
                    for table in (PRUNING_TABLES[ratio], DISTILLATION_TABLES[ratio])]
        cells = [(3, "", record["model_title"])]
        for tables in (PRUNING_TABLES, DISTILLATION_TABLES):  # the baselines' rows of Tables 6-8, 11-13
            cells += [(table, ratio, paper_name(table, config["model"])) for ratio, table in tables.items()
                      if paper_name(table, config["model"])]
        if paper_name(10, config["model"]):
            cells.append((10, "", paper_name(10, config["model"])))
        return cells
    base = by_key.get(record.get("base_key"), {})
    from_baseline = base.get("kind") == "train" and not network_config(base).get("widths")
    if kind == "prune" and from_baseline:
        cells = []
        if record["strategy"] == "I":
            cells.append((PRUNING_TABLES[record["ratio"]], record["ratio"],
                          paper_name(6, record["method"])))
        if record["method"] == "l1":
            cells.append((9, record["ratio"], record["strategy"]))
        return cells
    if kind == "quantize" and from_baseline and config["model"] == "cnn2d":
        return [(10, "", paper_name(10, record["method"]))]
    if kind == "distill" and from_baseline and isinstance(record.get("student"), str):
        return [(DISTILLATION_TABLES[record["student"]], record["student"], record["method_title"])]
    return []


def paper_cells(records: list[dict]) -> pd.DataFrame:
    """Every published accuracy cell that a run among ``records`` describes:
    the cell's key (table, setting, method as printed, dataset, split,
    metric), ours (mean over seeds, %), how many runs, their data source,
    whether they all converged (``None``: nothing trained), the paper's
    value and the difference (ours minus the paper's, points)."""
    by_key = {r["key"]: r for r in records}
    rows = []
    for r in records:
        config = network_config(r)
        for table, setting, method in _rows_of(r, by_key):
            for metric in ACCURACY_METRICS:
                rows.append({"table": table, "setting": setting, "method": method,
                             "dataset": config["scene"], "split": config["split"], "metric": metric,
                             "value": 100 * r["metrics"][metric], "data_source": r["data_source"],
                             "converged": converged(r)})
    if not rows:
        return pd.DataFrame(columns=[*CELL, "ours", "runs", "data_source", "converged", "paper",
                                     "difference"])
    runs = pd.DataFrame(rows)
    cells = runs.groupby(CELL + ["data_source"], sort=False).agg(
        ours=("value", "mean"), runs=("value", "size"),
        converged=("converged", lambda v: None if v.isna().all() else bool(v.fillna(True).all())))
    paper = load_reference().set_index(CELL)["value"].rename("paper")
    cells = cells.reset_index().join(paper, on=CELL, how="inner")
    cells["difference"] = cells["ours"] - cells["paper"]
    return cells.reset_index(drop=True)


def _rank_agreement(cells: pd.DataFrame) -> float:
    """Mean Spearman correlation between our and the paper's ranking of the
    methods of each (table, setting, dataset, split, metric) with at least
    three methods; ties ranked as ties (the paper's own ties stay ties)."""
    correlations = []
    for _, group in cells.groupby(["table", "setting", "dataset", "split", "metric"]):
        if len(group) >= 3 and group["paper"].nunique() > 1 and group["ours"].nunique() > 1:
            correlations.append(spearmanr(group["ours"], group["paper"]).statistic)
    return float(np.mean(correlations)) if correlations else np.nan


def scorecard(cells: pd.DataFrame) -> pd.DataFrame:
    """Per table, over the real-data cells of :func:`paper_cells`: how many,
    the share within ±1, ±2 and ±5 points of the paper's, the mean signed and
    mean absolute difference, the rank agreement (:func:`_rank_agreement`),
    how many cells rest on an unconverged run, and how many cells ran on the
    twin (excluded from everything else)."""
    rows = []
    for table, group in cells.groupby("table"):
        real = group[group["data_source"] == "real"]
        row = {"table": table, "real cells": len(real),
               "twin cells (excluded)": int((group["data_source"] == "twin").sum())}
        distance = real["difference"].abs()
        for tolerance in TOLERANCES:
            row[f"within ±{tolerance}"] = distance.le(tolerance).mean() if len(real) else np.nan
        row["mean difference"] = real["difference"].mean()
        row["mean |difference|"] = distance.mean()
        row["rank agreement"] = _rank_agreement(real)
        row["unconverged"] = int((real["converged"] == False).sum())  # noqa: E712 - None: not trained
        rows.append(row)
    return pd.DataFrame(rows).set_index("table")


def largest_deviations(cells: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` real-data cells farthest from the paper's, with whether
    their runs converged."""
    real = cells[cells["data_source"] == "real"]
    order = real["difference"].abs().sort_values(ascending=False).index[:n]
    return real.loc[order, [*CELL, "ours", "paper", "difference", "converged"]].reset_index(drop=True)


def scorecard_summary(cells: pd.DataFrame) -> dict[str, str]:
    """The scorecard in one paragraph (``scorecard_text``), from the cells."""
    real = cells[cells["data_source"] == "real"]
    twin = len(cells) - len(real)
    twin_text = f" {twin} cells ran on the offline twin and are not scored." if twin else ""
    if real.empty:
        return {"scorecard_text": "No cell of this run was computed on real data: nothing here is a "
                                  "reproduction of the paper." + twin_text}
    within = real["difference"].abs().le(2).mean()
    late = int((real["converged"] == False).sum())  # noqa: E712 - None: not trained
    text = (f"On real data, {len(real)} published cells: {100 * within:.0f}% of them within 2 points "
            f"of the paper's value, a mean difference of {real['difference'].mean():+.1f} points "
            f"(mean absolute {real['difference'].abs().mean():.1f}), and a mean rank agreement of "
            f"{_rank_agreement(real):.2f} between our and the paper's order of the methods.")
    if late:
        text += (f" {late} of those cells rest on runs that stopped at their maximum epochs while "
                 "still improving: there the gap may be the budget's.")
    return {"scorecard_text": text + twin_text}


def scorecard_plot(cells: pd.DataFrame, source_label: str):
    """Ours against the paper's, one point per real-data cell, coloured by
    table; the diagonal and a ±2-point band; unconverged cells ringed."""
    import matplotlib.pyplot as plt

    from .convergence import ring, ring_legend_handle, unconverged
    from .data import class_colors

    real = cells[cells["data_source"] == "real"]
    tables = sorted(real["table"].unique())
    colors = dict(zip(tables, class_colors(len(tables))))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=False)
    for ax, metric in zip(axes, ACCURACY_METRICS):
        here = real[real["metric"] == metric]
        for table, group in here.groupby("table"):
            ax.scatter(group["paper"], group["ours"], s=18, color=colors[table], label=f"Table {table}")
        late = here[here["converged"] == False]  # noqa: E712 - None: not trained
        ring(ax, late["paper"], late["ours"], size=50)
        low = min(here["paper"].min(), here["ours"].min()) if len(here) else 0
        line = np.array([low, 100])
        ax.plot(line, line, color="k", lw=0.8)
        ax.fill_between(line, line - 2, line + 2, color="grey", alpha=0.2, lw=0)
        ax.set_xlabel(f"paper's {metric} (%)")
        ax.set_ylabel(f"our {metric} (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if unconverged(real["converged"]):
        handles.append(ring_legend_handle())
        labels.append(handles[-1].get_label())
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.1))
    fig.suptitle(f"Every published accuracy cell: ours against the paper's ({source_label})", fontsize=10)
    fig.tight_layout()
    return fig
