"""The quantization chapter's own tables and text: what each mode leaves of
the layers, Table 10's memory and speed beside the paper's, Table 2
measured, int8 on smaller networks, and the numbers its findings quote.
The rows come from :func:`~hsilib.report.compare.comparison_frame`."""

from __future__ import annotations

import dataclasses

import pandas as pd

from ..compress.quantization import MODES, layer_dtypes
from ..data import get_scene
from ..models import build_model, example_input, get_model
from ..reference import paper_name, paper_values
from .compare import compression_summary

FOLDED = "folded into the layer before"
DATA_NEEDED = {"none": "no data", "unlabeled": "unlabeled data", "labeled": "labelled data"}
# Glued name: (mode, column of the mode's mean row, format).
FOUND_NUMBERS = {
    "static_speedup_b1": ("static", "latency_speedup", "{:.2f}"),
    "static_speedup_b1000": ("static", "throughput_ratio", "{:.2f}"),
    "static_size": ("static", "size_percent", "{:.0f}"),
    "static_change": ("static", "top1_change", "{:+.2f}"),
    "dynamic_speedup_b1": ("dynamic", "latency_speedup", "{:.2f}"),
    "dynamic_size": ("dynamic", "size_percent", "{:.0f}"),
    "qat_change": ("qat", "top1_change", "{:+.2f}"),
}


def _layer_text(layer: dict) -> str:
    return f"{layer['type']}: {layer['weight']} ({layer['input']} → {layer['output']})"


def dtype_table(records: list[dict], model: str, scene: str, modes: list[str]) -> pd.DataFrame:
    """Each layer of ``model`` as float32 and as each mode leaves it.

    Parameters
    ----------
    records
        Quantization records; the first of ``model`` in each mode is shown.
    model, scene
        The network, built untrained for ``scene`` for its float32 column.
    modes
        The modes, one column each (titled as :data:`MODES` titles them).

    Returns
    -------
    pandas.DataFrame
        One row per layer, each cell "type: weight dtype (input → output)";
        a layer a mode fused away is :data:`FOLDED`.
    """
    spec, info = get_model(model), get_scene(scene)
    channels = spec.components or info.n_bands
    float_layers = layer_dtypes(build_model(model, channels, info.n_classes), example_input(model, channels))
    columns = {"float32": {r.layer: _layer_text(dataclasses.asdict(r)) for r in float_layers}}
    for mode in modes:
        record = next(r for r in records if r["config"]["base"]["model"] == model
                      and r["config"]["mode"] == mode)
        columns[MODES[mode].title] = {r["layer"]: _layer_text(r) for r in record["layer_dtypes"]}
    table = pd.DataFrame(columns).fillna(FOLDED)
    table.index.name = f"{spec.title} layer"
    return table


def cost_table(rows: pd.DataFrame, order: list[str], base_model: str) -> pd.DataFrame:
    """Table 10's memory and speed, ours beside the paper's.

    Parameters
    ----------
    rows
        :func:`~hsilib.report.compare.comparison_frame` rows with a ``label``
        column (the paper's row names); each label's mean is shown.
    order
        The labels, in the order of the table.
    base_model
        The float32 network the paper quantizes: its speed-up is its latency
        over each mode's.

    Returns
    -------
    pandas.DataFrame
        One row per label: serialized and theoretical memory, latency,
        speed-ups, throughput and its ratio; the paper's beside where it has
        them (its speed-up only for the quantization rows).
    """
    ours = rows.groupby("label", sort=False).mean(numeric_only=True).reindex(order)
    paper_memory = paper_values(10, "memory_mb").set_index("method")["value"]
    paper_latency = paper_values(10, "latency_ms").set_index("method")["value"]
    paper_base = paper_name(10, base_model)
    mode_titles = {paper_name(10, mode) for mode in MODES}
    return pd.DataFrame({
        "memory MB": ours["memory_mb"],
        "memory MB (paper)": [paper_memory.get(m) for m in order],
        "memory MB, theoretical": ours["memory_mb_theoretical"],
        "latency ms": ours["latency_ms"],
        "latency ms (paper)": [paper_latency.get(m) for m in order],
        "speed-up": ours["latency_speedup"],
        "speed-up (paper)": [paper_latency[paper_base] / paper_latency[m] if m in mode_titles else None
                             for m in order],
        "throughput /s, batch 1,000": ours["throughput_per_s"],
        "throughput ratio": ours["throughput_ratio"],
    }, index=pd.Index(order, name="method"))


def _int8_rows(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    return frame[(frame["method"] != "base") & frame["model"].isin(models)]


def mode_table(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """Table 2, measured: :func:`compression_summary` of the int8 copies of
    ``models``, with the data each mode needs first, one row per mode title."""
    table = compression_summary(_int8_rows(frame, models), base_title="float32")
    table.insert(0, "data needed", [DATA_NEEDED[MODES[m].data] for m in table.index])
    table.index = [MODES[m].title for m in table.index]
    return table


def _preview_rows(frame: pd.DataFrame, networks: list[str], modes: list[str], scene: str,
                  split: str) -> pd.DataFrame:
    rows = frame[frame["model"].isin(networks) & (frame["scene"] == scene) & (frame["split"] == split)]
    return rows.assign(order=rows["model"].map({m: i for i, m in enumerate(networks)}),
                       mode=pd.Categorical(rows["method"], ["base", *modes], ordered=True)
                       ).sort_values(["order", "mode"])


def preview_table(frame: pd.DataFrame, networks: list[str], modes: list[str], scene: str,
                  split: str) -> pd.DataFrame:
    """The float32 ``networks`` and their int8 copies in one scene and split:
    mean memory, latency, speed-ups, throughput, top-1 and agreement, indexed
    by network and mode (in the order of ``networks`` and ``modes``)."""
    table = _preview_rows(frame, networks, modes, scene, split).groupby(
        ["model_title", "method_title"], sort=False).agg(
        **{"memory MB": ("memory_mb", "mean"), "latency ms": ("latency_ms", "mean"),
           "speed-up, batch 1": ("latency_speedup", "mean"),
           "throughput /s, batch 1,000": ("throughput_per_s", "mean"),
           "throughput ratio": ("throughput_ratio", "mean"), "top-1 (%)": ("top1", "mean"),
           "agreement": ("agreement", "mean")})
    table.index.names = ["network", "mode"]
    return table


def smallest_network_text(frame: pd.DataFrame, model: str, networks: list[str], modes: list[str],
                          scene: str, split: str) -> str | None:
    """A sentence on the smallest int8 copy of ``networks`` (by serialized
    memory; a tie goes to the first in the order of ``networks`` and
    ``modes``) against float32 ``model``, in one scene and split; ``None``
    without either."""
    big = frame[(frame["scene"] == scene) & (frame["split"] == split) & (frame["model"] == model)
                & (frame["method"] == "base")]
    preview = _preview_rows(frame, networks, modes, scene, split)
    small = preview[preview["method"] != "base"].sort_values("memory_mb", kind="stable")
    if small.empty or big.empty:
        return None
    row = small.iloc[0]
    speed = row["latency_speedup"]
    return (
        f"The smallest network of this run, {row['model_title']} + {row['method_title']}, takes "
        f"{row['memory_mb']:.3f} MB, {big['memory_mb'].mean() / row['memory_mb']:.0f} times less than "
        f"float32 {get_model(model).title}, with top-1 {row['top1']:.1f}% against "
        f"{big['top1'].mean():.1f}%. "
        + (f"But int8 does not make a tiny network faster for free: at batch 1 its int8 copy runs "
           f"at ×{speed:.2f} the float32 speed, because converting the input to int8 and the output "
           "back, a fixed cost per call, weighs as much as the few multiplications of such a small "
           "network. Combined compression has to be measured, not multiplied."
           if speed < 1 else
           f"At batch 1 its int8 copy runs at ×{speed:.2f} the float32 speed."))


def found_numbers(frame: pd.DataFrame, models: list[str]) -> dict[str, str]:
    """The numbers the chapter's findings quote, by glue name
    (:data:`FOUND_NUMBERS`), formatted: each mode's mean over the int8
    copies of ``models``; a mode this run lacks gives none of its numbers."""
    by_mode = _int8_rows(frame, models).groupby("method").mean(numeric_only=True)
    by_mode["size_percent"] = 100 * by_mode["size_ratio"]
    return {name: form.format(by_mode.loc[mode, column])
            for name, (mode, column, form) in FOUND_NUMBERS.items() if mode in by_mode.index}
