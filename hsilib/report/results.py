"""Result tables and figures: our numbers beside the paper's."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .convergence import MARK, converged, epochs_run, marked, ring, ring_legend_handle, unconverged
from .data import class_colors

SPLIT_TITLES = {"disjoint": "Disjoint", "random": "Random"}


def network_config(record: dict) -> dict:
    """The config of the trained network a record's experiment starts from
    (the record's own config for a network trained from scratch)."""
    config = record["config"]
    while "base" in config:
        config = config["base"]
    return config


def results_frame(records: list[dict]) -> pd.DataFrame:
    """One row per trained network's record: setting, test metrics (in %),
    measurements."""
    rows = []
    for r in records:
        config = network_config(r)
        measured = r["measure"]
        rows.append({
            **{k: config[k] for k in ("model", "scene", "split", "seed", "epochs", "data_source")},
            "method": r["model_title"],
            **{m: 100 * r["metrics"][m] for m in ("top1", "top5", "oa", "aa")},
            "kappa": r["metrics"]["kappa"],
            "params": measured["params"],
            "params_all": measured["params_all"],
            "macs": measured["macs_per_sample"],
            "memory_mb": measured["memory_mb_serialized"],
            "latency_ms": measured["latency_ms_median"],
            "throughput_per_s": measured["throughput_per_s"],
            "best_epoch": r.get("history", {}).get("best_epoch"),
            "converged": converged(r), "epochs_run": epochs_run(r),
            "wall_s": r["wall_s"],
        })
    return pd.DataFrame(rows)


def training_precision(records: list[dict]) -> str:
    """The arithmetic the torch networks of ``records`` trained in, in words
    (``precision="auto"`` resolves per machine and model)."""
    used: dict[str, list[str]] = {}
    for r in records:
        if r.get("convergence") is not None:  # a network that trained
            used.setdefault(network_config(r)["precision"], []).append(r["model_title"])
    if not used:
        return "no torch model trained"
    if len(used) == 1:
        return f"{next(iter(used))} arithmetic"
    return "; ".join(f"{p} for {', '.join(dict.fromkeys(titles))}" for p, titles in sorted(used.items()))


def mean_std(values: pd.Series, digits: int = 1) -> str:
    """``"86.3"`` for one value, ``"86.3 ± 0.4"`` (sample std) for several."""
    values = values.dropna()
    if values.empty:
        return "-"
    mean = round(values.mean(), digits) + 0.0  # "+ 0.0": no "-0.0"
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {values.std(ddof=1):.{digits}f}"


# The scores a metrics table shows in percent, with their column titles.
PERCENT_METRICS = {"top1": "OA (%)", "top5": "top-5 (%)", "aa": "AA (%)", "agreement": "agreement (%)"}


def metrics_table(frame: pd.DataFrame, by: str = "method") -> pd.DataFrame:
    """OA, top-5, AA (and agreement with the base network, where the frame
    has it) in % and kappa, each as mean ± std over seeds, per scene, split
    and ``by`` (shown as "method", marked with :data:`~hsilib.report.convergence.MARK`
    where a run did not converge)."""
    if "agreement" in frame:
        frame = frame.assign(agreement=100 * frame["agreement"])
    runs = frame.groupby(["scene", "split", by], sort=False)
    table = runs[[m for m in PERCENT_METRICS if m in frame]].agg(mean_std).rename(columns=PERCENT_METRICS)
    table["kappa"] = runs["kappa"].agg(lambda v: mean_std(v, digits=3))
    if "converged" in frame:
        flags = runs["converged"]
        table.index = pd.MultiIndex.from_tuples(
            [(scene, split, marked(str(name), flags.get_group((scene, split, name))))
             for scene, split, name in table.index])
    table.index.names = ["scene", "split", "method"]
    return table.sort_index(level=["scene", "split"], sort_remaining=False)


def side_by_side(frame: pd.DataFrame, reference: pd.DataFrame, metric: str = "top1",
                 methods: list[str] | None = None, digits: int = 1) -> pd.DataFrame:
    """Table of ours | paper | difference for every method, scene and split.

    ``frame`` is :func:`results_frame` output (several seeds give mean ± std);
    ``reference`` holds the paper's rows for the same table (columns
    ``method, dataset, split, metric, value``). The difference is our mean
    minus the paper's value, in points. Our value is marked with
    :data:`~hsilib.report.convergence.MARK` where a run behind it did not converge.
    """
    runs = frame.groupby(["method", "scene", "split"])
    ours = runs[metric]
    flags = runs["converged"] if "converged" in frame else None
    paper = reference[reference["metric"] == metric].set_index(["method", "dataset", "split"])["value"]
    methods = methods or list(dict.fromkeys(frame["method"]))
    columns = {}
    for scene in dict.fromkeys(frame["scene"]):
        for split in dict.fromkeys(frame["split"]):
            head = (scene.replace("_", " ").title(), SPLIT_TITLES.get(split, split))
            mine = {m: ours.get_group((m, scene, split)) for m in methods
                    if (m, scene, split) in ours.groups}
            theirs = {m: paper.get((m, scene, split)) for m in methods}
            columns[head + ("ours",)] = [
                (marked(mean_std(mine[m], digits), flags.get_group((m, scene, split)))
                 if flags is not None else mean_std(mine[m], digits)) if m in mine else "-"
                for m in methods]
            columns[head + ("paper",)] = [theirs[m] if theirs[m] is not None else np.nan for m in methods]
            # "+ 0.0" turns a rounded -0.0 into 0.0.
            columns[head + ("Δ",)] = [round(mine[m].mean() - theirs[m], digits) + 0.0
                                      if m in mine and theirs[m] is not None else np.nan
                                      for m in methods]
    table = pd.DataFrame(columns, index=pd.Index(methods, name="method"))
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


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
    methods = list(dict.fromkeys(frame["method"]))
    colors = dict(zip(methods, class_colors(len(methods))))
    for row, scene in enumerate(scenes):
        for col, split in enumerate(splits):
            ax = axes[row][col]
            here = torch_rows[(torch_rows["scene"] == scene) & (torch_rows["split"] == split)]
            for method, group in here.groupby("method", sort=False):
                color = colors[method]
                ax.errorbar(group["params"].mean(), group["top1"].mean(),
                            yerr=group["top1"].std(ddof=1) if len(group) > 1 else None,
                            fmt="o", color=color, label=method)
                if unconverged(group["converged"]):
                    ring(ax, group["params"].mean(), group["top1"].mean())
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
    if unconverged(torch_rows["converged"]):
        handles.append(ring_legend_handle())
        labels.append(f"did not converge ({MARK} in the tables)")
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"Accuracy against size — filled: ours ({source_label}); hollow: paper", fontsize=10)
    fig.tight_layout()
    return fig
