"""Every network of the book on one accuracy-cost frontier, read from the
result store: baselines, Scratch, pruned, quantized, distilled, low-rank and
pipeline networks as points of top-1 against memory, MACs and latency, with
the Pareto front of each scene and split, and the best network under a
budget."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .convergence import converged, epochs_run, ring, ring_legend_handle, unconverged
from .networks import ratio_of
from .results import network_config

COSTS = {"memory_kb": "serialized size (KB)", "macs": "multiply-accumulates per sample",
         "latency_ms": "latency at batch 1 (ms)"}
# Intermediate networks that are not deployed on their own.
SKIPPED_KINDS = ("sparsity",)


def _family(record: dict, records: dict[str, dict]) -> str:
    kind = record["kind"]
    previous = records.get(record.get("base_key"), {})
    if kind == "train":
        return "scratch" if network_config(record).get("widths") else "baseline"
    if kind == "quantize":
        return "quantization" if previous.get("kind") == "train" else "pipeline"
    if kind == "distill":
        return "pipeline" if previous.get("kind") == "prune" else "distillation"
    return {"prune": "pruning", "lowrank": "low-rank"}.get(kind, kind)


def _label(record: dict, records: dict[str, dict]) -> str:
    """A readable name: the method, its size, and the stage it continues from."""
    size = record.get("ratio") or record.get("student") or ""
    name = {"train": record["model_title"]}.get(record["kind"], record.get("method_title", record["kind"]))
    if record["kind"] == "prune":
        name = f"{name} {record['strategy']}"
    if record["kind"] == "train" and network_config(record).get("widths"):
        name = "Scratch"
    previous = records.get(record.get("base_key"))
    here = f"{name} {size}".strip()
    if previous is not None and record["kind"] in ("quantize",) or (
            record["kind"] == "distill" and previous is not None and previous["kind"] == "prune"):
        return f"{_label(previous, records)} → {here}"
    return here


def _size(record: dict) -> str:
    """Table 5's size of a narrow network ("" for a full one)."""
    config = network_config(record)
    if record["kind"] == "train":
        return (ratio_of(config["model"], config["widths"]) or "") if config.get("widths") else ""
    return record.get("ratio") or record.get("student") or ""


def frontier_frame(records: list[dict]) -> pd.DataFrame:
    """One row per deployable network: its family, a label, its size (a
    ratio of Table 5, "" for a full network), the setting, top-1 (%),
    memory (KB, serialized), MACs, batch-1 latency and whether its training
    converged (``None``: it did not train)."""
    by_key = {r["key"]: r for r in records}
    rows = []
    for r in records:
        if r["kind"] in SKIPPED_KINDS:
            continue
        config, measured = network_config(r), r["measure"]
        rows.append({"family": _family(r, by_key), "label": _label(r, by_key), "size": _size(r),
                     **{k: config[k] for k in ("scene", "split", "seed", "data_source")},
                     "top1": 100 * r["metrics"]["top1"],
                     "memory_kb": 1000 * measured["memory_mb_serialized"],
                     "macs": measured["macs_per_sample"], "latency_ms": measured["latency_ms_median"],
                     "converged": converged(r), "epochs_run": epochs_run(r), "key": r["key"]})
    return pd.DataFrame(rows)


def pareto_front(frame: pd.DataFrame, cost: str) -> pd.Series:
    """True for the rows no other row of the same scene and split beats: at
    most its ``cost`` with at least its top-1, better in one of them. Rows
    without that cost (scikit-learn models have no MACs) are never on it."""
    on_front = pd.Series(False, index=frame.index)
    for _, group in frame.dropna(subset=[cost]).groupby(["scene", "split"]):
        costs, accuracy = group[cost].to_numpy(), group["top1"].to_numpy()
        for i, index in enumerate(group.index):
            dominated = ((costs <= costs[i]) & (accuracy >= accuracy[i])
                         & ((costs < costs[i]) | (accuracy > accuracy[i])))
            on_front[index] = not dominated.any()
    return on_front


def best_under(frame: pd.DataFrame, cost: str, budgets: list[float]) -> pd.DataFrame:
    """For each scene, split and budget: the network with the best top-1
    whose ``cost`` is within the budget (mean over seeds of each label)."""
    means = frame.groupby(["scene", "split", "label"], sort=False)[["top1", cost]].mean().reset_index()
    rows = []
    for (scene, split), group in means.groupby(["scene", "split"], sort=False):
        for budget in budgets:
            fits = group[group[cost] <= budget]
            best = fits.loc[fits["top1"].idxmax()] if len(fits) else None
            rows.append({"scene": scene, "split": split, f"{cost} at most": budget,
                         "best network": "-" if best is None else best["label"],
                         "top-1 (%)": np.nan if best is None else best["top1"],
                         cost: np.nan if best is None else best[cost]})
    return pd.DataFrame(rows)


def frontier_plot(frame: pd.DataFrame, cost: str, source_label: str) -> plt.Figure:
    """Top-1 against ``cost``, one panel per scene and split (seaborn
    facets), colour by family, the Pareto front drawn, networks whose
    training did not converge ringed."""
    import seaborn as sns

    data = frame.dropna(subset=[cost]).copy()
    data["front"] = pareto_front(data, cost)
    grid = sns.relplot(data=data, x=cost, y="top1", hue="family", row="scene", col="split",
                       kind="scatter", height=3.2, aspect=1.3, s=25, alpha=0.8,
                       facet_kws={"sharex": True, "sharey": False})
    for (scene, split), ax in grid.axes_dict.items():
        front = data[(data["scene"] == scene) & (data["split"] == split) & data["front"]].sort_values(cost)
        ax.step(front[cost], front["top1"], where="post", color="k", lw=1)
        here = data[(data["scene"] == scene) & (data["split"] == split)]
        late = here[here["converged"] == False]  # noqa: E712 - None: not trained
        ring(ax, late[cost], late["top1"], size=60)
        ax.set_xscale("log")
    if unconverged(data["converged"]):
        grid.axes.flat[0].legend(handles=[ring_legend_handle()], fontsize=7, loc="lower right")
    grid.set_axis_labels(COSTS.get(cost, cost), "top-1 test accuracy (%)")
    grid.figure.suptitle(f"Every network of the book against {COSTS.get(cost, cost)}; the line is the "
                         f"Pareto front ({source_label})", y=1.02, fontsize=10)
    return grid.figure
