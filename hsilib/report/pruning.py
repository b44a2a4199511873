"""The pruning chapter's own tables and figures: Table 4 in both parameter
conventions and three memory measures, Table 5, Table 9 (the strategies),
and how much the criteria agree on which filters to keep."""

from __future__ import annotations

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import measure
from ..compress.prune import RATIOS, target_widths
from ..data import get_scene
from ..models import get_model
from ..reference import paper_name, paper_values
from .results import network_config, side_by_side



def strategy_table(frame: pd.DataFrame, metric: str, criterion: str = "l1") -> pd.DataFrame:
    """Table 9 for one metric: ``criterion`` with each strategy at each ratio,
    ours beside the paper's (the paper's Table 9 is L1-norm pruning)."""
    tables = []
    for ratio in RATIOS:
        rows = frame[(frame["label"] == criterion) & (frame["ratio"] == ratio)]
        if rows.empty:
            continue
        table = side_by_side(rows.assign(method=rows["strategy"]), paper_values(9, setting=ratio),
                             metric, methods=[s for s in ("I", "II", "III") if s in set(rows["strategy"])])
        table.index = pd.MultiIndex.from_product([[ratio], table.index], names=["ratio", "strategy"])
        tables.append(table)
    return pd.concat(tables) if tables else pd.DataFrame()


def parameter_table(scene: str, models: tuple[str, ...] = ("mlp", "cnn1d", "cnn2d"),
                    base: str = "cnn2d") -> pd.DataFrame:
    """Table 4: per-layer parameters of ``base`` and its pruned networks (the
    paper's convention: conv and linear weights and biases), totals in both
    conventions (batch norm left out, as the paper counts, and PyTorch's
    full count), and memory three ways (float32 values, the saved state dict,
    a training checkpoint with Adam's state), beside the paper's."""
    info = get_scene(scene)
    paper = paper_values(4)
    rows = []
    networks = [(m, paper_name(4, m), None) for m in models if m != base]
    networks += [(base, paper_name(4, base), None)] + [(base, f"Prune ({r})", r) for r in RATIOS]
    for model, label, ratio in networks:
        spec = get_model(model)
        network = spec.make(spec.components or info.n_bands, info.n_classes)
        if ratio is not None:
            network = spec.make(spec.components or info.n_bands, info.n_classes,
                                widths=tuple(target_widths(network, ratio).values()))
        layers = measure.parameters_per_layer(network)
        theirs = paper[paper["method"] == label].set_index("metric")["value"]
        row = {"network": label}
        for layer in ("conv1", "conv2", "fc1", "fc2"):
            row[layer] = layers.get(layer) if len(layers) == 4 else None
            row[f"{layer} (paper)"] = theirs.get(f"params_{layer}")
        row.update({"total": sum(layers.values()), "total (paper)": theirs.get("params"),
                    "all parameters": measure.all_parameters(network),
                    "MB, float32 values": measure.theoretical_memory_mb(network),
                    "MB, state dict": measure.serialized_memory_mb(network),
                    "MB, checkpoint with Adam": measure.checkpoint_memory_mb(network),
                    "MB (paper)": theirs.get("memory_mb")})
        rows.append(row)
    return pd.DataFrame(rows).set_index("network")


def width_table(model: str = "cnn2d") -> pd.DataFrame:
    """Table 5: filters and neurons of each pruned network, ours (from the
    nominal ratio) beside the paper's."""
    spec = get_model(model)
    full = spec.make(spec.components or 200, 2)
    paper = paper_values(5)
    columns = [("conv1 filters", "filters_conv1"), ("conv2 filters", "filters_conv2"),
               ("fc1 inputs", "neurons_fc1"), ("fc1 neurons", "neurons_fc2")]
    rows = {}
    for label, ratio in [("CNN2D", None), *[(f"Prune ({r})", r) for r in RATIOS]]:
        widths = full.widths if ratio is None else tuple(target_widths(full, ratio).values())
        network = spec.make(spec.components or 200, 2, widths=widths)
        ours = (widths[0], widths[1], network.fc1.in_features, widths[2])
        theirs = paper[paper["method"] == label].set_index("metric")["value"]
        rows[label] = {(name, who): value for (name, metric), mine in zip(columns, ours)
                       for who, value in (("ours", mine), ("paper", theirs.get(metric)))}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "network"
    return table


def kept_overlap(records: list[dict], layer: str) -> pd.DataFrame:
    """How much the criteria agree on which of ``layer``'s filters to keep:
    the mean Jaccard index (shared / either) of their one-shot selections
    over every setting and ratio both ran, criteria by criteria."""
    kept: dict[tuple, dict[str, set]] = {}
    for r in records:
        if r["kind"] == "prune" and r.get("kept") and layer in r["kept"]:
            config = network_config(r)
            setting = (config["scene"], config["split"], config["seed"], r["ratio"])
            kept.setdefault(setting, {})[r["method_title"]] = set(r["kept"][layer])
    names = sorted({name for choice in kept.values() for name in choice})
    table = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b in itertools.product(names, repeat=2):
        shared = [len(c[a] & c[b]) / len(c[a] | c[b]) for c in kept.values() if a in c and b in c]
        table.loc[a, b] = np.mean(shared) if shared else np.nan
    return table


def overlap_heatmap(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The :func:`kept_overlap` tables of several layers side by side."""
    fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables), 3.4), squeeze=False)
    for ax, (layer, table) in zip(axes[0], tables.items()):
        image = ax.imshow(table.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(table)), table.columns, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(table)), table.index, fontsize=8)
        for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="w" if value < 0.6 else "k")
        ax.set_title(layer, fontsize=10)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="shared / either (Jaccard)")
    return fig


def sfp_regrowth(records: list[dict], strategy: str = "I") -> float | None:
    """How far SFP's zeroed filters grow back between zeroings, as a share of
    the kept filters' norm: each one-shot run's mean over the epochs it ran
    (runs stop at their own plateau, so they ran different numbers), then
    the mean over runs; ``None`` without an SFP run."""
    runs = [np.mean(r["steps"][0]["regrowth"]) for r in records
            if r["kind"] == "prune" and r["method"] == "sfp" and r["strategy"] == strategy]
    return float(np.mean(runs)) if runs else None


def validation_by_epoch(records: list[dict], strategy: str = "I") -> pd.DataFrame:
    """Each criterion's mean validation accuracy (%) after each epoch of its
    first fine-tuning step (``strategy``'s runs, every setting and ratio).

    For SFP the epoch ends with the zeroing, so its row is the soft network
    as it will be removed; for the others it is the already smaller network
    fine-tuning. How fast each recovers shows what a short budget costs it.
    Runs stop at their own plateau: each epoch's mean is over the runs
    that reached it."""
    curves: dict[str, list[list[float]]] = {}
    for r in records:
        if r["kind"] == "prune" and r["strategy"] == strategy:
            curves.setdefault(r["method_title"], []).append(r["steps"][0]["history"]["val_oa"])
    table = pd.DataFrame({title: 100 * pd.DataFrame(map(pd.Series, runs)).mean(axis=0)
                          for title, runs in curves.items()}).T
    table.columns = [f"epoch {e + 1}" for e in table.columns]
    table.index.name = "criterion"
    return table.round(1)
