"""The paper's published numbers (Tables 3 to 13), as one long table.

The numbers live in ``paper.csv`` beside this module, one printed number a
row, with the columns

``table``
    The paper's table number, 3 to 13.
``setting``
    The table's varying setting: the pruning ratio / student network size
    (``"90%"``, ``"95%"``, ``"98%"``) for Tables 6 to 9 and 11 to 13, else ``""``.
``method``
    The row label as printed, without the merged group label (in Table 9 the
    fine-tuning strategy ``"I"``, ``"II"`` or ``"III"``).
``dataset``, ``split``
    ``"indian_pines"`` / ``"pavia_university"`` and ``"disjoint"`` / ``"random"``,
    or ``""`` where a number is not per dataset (parameter counts, memory,
    latency, layer widths).
``metric``
    One of :data:`METRICS`.
``value``
    The number as printed (``"1.8M"`` is stored as 1800000).
``group``
    The row's group label in Tables 6 to 8 and 11 to 13 (``"Baselines"``,
    ``"Scratch"``, ``"Pruning"``, ``"Offline distillation"``,
    ``"Online distillation"``, ``"Self distillation"``), else ``""``.

The numbers are transcribed as published, including where the paper's tables
disagree with each other; nothing is corrected.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = [
    "COLUMNS",
    "DATASETS",
    "METRICS",
    "REFERENCE_CSV",
    "SPLITS",
    "TABLES",
    "ReferenceLookupError",
    "DISTILLATION_TABLES",
    "PRUNING_TABLES",
    "load_reference",
    "paper_name",
    "paper_value",
    "paper_values",
]

REFERENCE_CSV: Path = Path(__file__).resolve().with_name("paper.csv")
"""The CSV file holding the transcribed numbers (package data)."""

COLUMNS: tuple[str, ...] = (
    "table", "setting", "method", "dataset", "split", "metric", "value", "group",
)
KEY_COLUMNS: tuple[str, ...] = ("table", "setting", "method", "dataset", "split", "metric")
TABLES: tuple[int, ...] = tuple(range(3, 14))
METRICS: frozenset[str] = frozenset({
    "top1", "top5", "params", "params_conv1", "params_conv2", "params_fc1",
    "params_fc2", "memory_mb", "latency_ms", "filters_conv1", "filters_conv2",
    "neurons_fc1", "neurons_fc2",
})
DATASETS: frozenset[str] = frozenset({"", "indian_pines", "pavia_university"})
SPLITS: frozenset[str] = frozenset({"", "disjoint", "random"})
GROUPS: frozenset[str] = frozenset({
    "", "Baselines", "Scratch", "Pruning", "Offline distillation",
    "Online distillation", "Self distillation",
})
_STRING_COLUMNS = ("setting", "method", "dataset", "split", "metric", "group")


class ReferenceLookupError(ValueError):
    """No published number matches what was asked."""


def _validate(frame: pd.DataFrame, source: object) -> pd.DataFrame:
    """Check and type a freshly read reference table; raise ValueError on a bad row."""
    if tuple(frame.columns) != COLUMNS:
        raise ValueError(f"{source}: columns {list(frame.columns)}, expected {list(COLUMNS)}")

    allowed = {"table": {str(t) for t in TABLES}, "metric": METRICS,
               "dataset": DATASETS, "split": SPLITS, "group": GROUPS}
    for i, row in enumerate(frame.itertuples(index=False), start=2):  # line 1 is the header
        where = f"{source}, line {i} {tuple(row)}"
        for column, values in allowed.items():
            if getattr(row, column) not in values:
                raise ValueError(f"{where}: unknown {column} {getattr(row, column)!r}")
        if not row.method:
            raise ValueError(f"{where}: empty method")
        try:
            value = float(row.value)
        except ValueError:
            raise ValueError(f"{where}: value {row.value!r} is not a number") from None
        if value != value:  # NaN
            raise ValueError(f"{where}: value is NaN")
        if (row.dataset == "") != (row.split == ""):
            raise ValueError(f"{where}: dataset and split must both be set or both empty")

    duplicated = frame.duplicated(list(KEY_COLUMNS), keep="first")
    if duplicated.any():
        i = int(duplicated.to_numpy().nonzero()[0][0])
        raise ValueError(
            f"{source}, line {i + 2} {tuple(frame.iloc[i])}: duplicate key "
            f"{dict(zip(KEY_COLUMNS, frame.iloc[i][list(KEY_COLUMNS)]))}"
        )

    frame = frame.astype({"table": int, "value": float})
    return frame


@lru_cache(maxsize=1)
def _load() -> pd.DataFrame:
    frame = pd.read_csv(REFERENCE_CSV, dtype=str, keep_default_na=False)
    return _validate(frame, REFERENCE_CSV.name)


def load_reference() -> pd.DataFrame:
    """All transcribed numbers of Tables 3 to 13.

    Returns
    -------
    pandas.DataFrame
        One row a published number, with the columns :data:`COLUMNS`;
        ``table`` is int, ``value`` float, the others str with ``""`` for empty.
        A fresh copy each call (the file is read and validated once).

    Raises
    ------
    ValueError
        If the CSV holds an unknown table, metric, dataset, split or group, a
        non-numeric value, or a duplicate (table, setting, method, dataset,
        split, metric) key; the message names the offending line.
    """
    return _load().copy()


def paper_values(table: int, metric: str | None = None, **filters: object) -> pd.DataFrame:
    """The numbers of one table, optionally filtered.

    Parameters
    ----------
    table
        The paper's table number, 3 to 13.
    metric
        Keep only this metric (one of :data:`METRICS`), or all when None.
    **filters
        Equality filters on other columns, e.g. ``method="SFP"``,
        ``dataset="indian_pines"``, ``split="disjoint"``, ``setting="90%"``.

    Returns
    -------
    pandas.DataFrame
        The matching rows in file order, index reset (possibly empty).

    Raises
    ------
    ValueError
        For a table outside 3 to 13, an unknown metric, or a filter naming an
        unknown column.
    """
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}: the reference holds Tables 3 to 13")
    if metric is not None and metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(METRICS)}")
    unknown = sorted(set(filters) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; the columns are {list(COLUMNS)}")
    frame = _load()
    mask = frame["table"] == table
    if metric is not None:
        mask &= frame["metric"] == metric
    for column, wanted in filters.items():
        mask &= frame[column] == wanted
    return frame[mask].reset_index(drop=True)


def paper_value(
    table: int,
    method: str,
    metric: str,
    dataset: str = "",
    split: str = "",
    setting: str = "",
) -> float:
    """Exactly one published number.

    Parameters
    ----------
    table
        The paper's table number, 3 to 13.
    method
        The row label as in the CSV (e.g. ``"CNN2D (c=40)"``, ``"SFP"``, ``"II"``).
    metric
        One of :data:`METRICS`.
    dataset, split
        ``""`` for numbers that are not per dataset.
    setting
        ``"90%"``, ``"95%"``, ``"98%"`` for Tables 6 to 9 and 11 to 13, else ``""``.

    Returns
    -------
    float

    Raises
    ------
    ReferenceLookupError
        (a ValueError) when the paper prints no such number; the message names
        what was asked. ValueError for an unknown table or metric.
    """
    rows = paper_values(table, metric, method=method, dataset=dataset, split=split, setting=setting)
    if len(rows) != 1:  # the key is unique, so this means none
        asked = dict(table=table, method=method, metric=metric, dataset=dataset,
                     split=split, setting=setting)
        known = paper_values(table)
        hint = (f"; methods in Table {table}: {sorted(known['method'].unique())}"
                if method not in set(known["method"]) else "")
        raise ReferenceLookupError(f"no published number for {asked}{hint}")
    return float(rows["value"].iloc[0])


# Our names (a registered model or compression method) -> the row label a
# table prints, where it differs from the model's title (Table 3 prints the
# titles of the model registry).
# The tables of pruning and of distillation results, by nominal ratio (student size).
PRUNING_TABLES = {"90%": 6, "95%": 7, "98%": 8}
DISTILLATION_TABLES = {"90%": 11, "95%": 12, "98%": 13}

_PRUNING_ROWS = {"mlp": "MLP", "cnn1d": "CNN-1D", "cnn2d": "CNN-2D", "scratch": "Pruned CNN2D",
                 "l1": "L1-norm pruning", "thinet": "ThiNet", "slimming": "Network Slimming",
                 "sfp": "SFP"}
PAPER_NAMES: dict[int, dict[str, str]] = {
    4: {"mlp": "MLP", "cnn1d": "CNN1D", "cnn2d": "CNN2D"},
    6: _PRUNING_ROWS, 7: _PRUNING_ROWS, 8: _PRUNING_ROWS,
    **{table: {k: _PRUNING_ROWS[k] for k in ("mlp", "cnn1d", "cnn2d", "scratch")}
       for table in DISTILLATION_TABLES.values()},
    10: {"mlp": "MLP", "cnn1d": "CNN1D", "cnn2d": "CNN2D", "dynamic": "Dynamic Quantization",
         "static": "Static Quantization", "qat": "Quantization Aware Training"},
}


def paper_name(table: int, name: str) -> str | None:
    """The row label ``table`` prints for our model or method ``name``, or
    ``None`` where the table has no such row."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}: the reference holds Tables 3 to 13")
    return PAPER_NAMES.get(table, {}).get(name)
