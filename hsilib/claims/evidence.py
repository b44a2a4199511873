"""What the claims are judged on: one row per network, from our records
(:func:`evidence_frame`) or from the paper's published tables
(:func:`paper_evidence`), in the same columns, so that one rule judges both.

Columns: ``family`` (``"baseline"``, ``"scratch"``, ``"prune"``,
``"offline"``, ``"online"``, ``"self"``, ``"quantize"``), ``arm`` (the model,
criterion, distillation method or quantization mode), ``model`` (the network
compressed), ``scene``, ``split``, ``seed``, ``ratio`` (Table 5's size, or
``""``), ``strategy`` (pruning's fine-tuning strategy, or ``""``), ``stage``
(``"direct"``: trained, or compressed straight from a full network;
``"pipeline"``: compressed from a compressed network), ``data_source``,
``top1`` (%), ``params``, ``memory_mb``, ``latency_ms`` (batch 1),
``throughput_per_s`` (batch 1,000), ``compress_s``, ``held_params`` (held
in training, teachers included), ``converged`` (``None``: did not train or
not known), ``budget`` (the maximum epochs of the network's own training, 0
where it did not train, NaN where not known), the ``base_*`` values of the
network a quantized one came from (measured in the same run), and
``oversized`` (larger than Table 5's network of its size, as SimKD's
deployed network is).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from ..compress.distill import DISTILLERS
from ..compress.quantization import MODES
from ..models import MODELS
from ..profiles import PAPER_SCENES
from ..reference import DISTILLATION_TABLES, PAPER_NAMES, PRUNING_TABLES, paper_name, paper_values
from ..report.convergence import converged
from ..report.networks import ratio_of
from ..report.results import network_config

SIZE_TOLERANCE = 1.02  # a network within 2% of Table 5's parameter count has its size
COLUMNS = ["key", "family", "arm", "model", "scene", "split", "seed", "ratio", "strategy", "stage",
           "data_source", "top1", "params", "memory_mb", "latency_ms", "throughput_per_s", "compress_s",
           "held_params", "converged", "budget", "base_top1", "base_memory_mb", "base_latency_ms",
           "base_throughput_per_s", "oversized"]
_DEFAULTS = {"strategy": "", "ratio": "", "stage": "direct", "converged": None}


def _is_full(config: dict) -> bool:
    """A network trained from scratch at its full width."""
    return "base" not in config and not config.get("widths")


def _trained(record: dict) -> dict | None:
    config = record["config"]
    if not config.get("widths"):
        return {"family": "baseline", "arm": config["model"]}
    ratio = ratio_of(config["model"], config["widths"])
    return None if ratio is None else {"family": "scratch", "arm": "scratch", "ratio": ratio}


def _pruned(record: dict) -> dict:
    return {"family": "prune", "arm": record["method"], "ratio": record["ratio"],
            "strategy": record["strategy"], "direct": _is_full(record["config"]["base"])}


def _distilled(record: dict) -> dict | None:
    if not isinstance(record["student"], str):  # widths of its own, not one of Table 5's sizes
        return None
    config = record["config"]
    return {"family": record["family"], "arm": record["method"], "ratio": record["student"],
            "direct": _is_full(config["base"]) and config.get("start") is None}


def _quantized(record: dict) -> dict:
    base, measured = record["base_measure"], record["base_metrics"]
    return {"family": "quantize", "arm": record["method"], "direct": _is_full(record["config"]["base"]),
            "base_top1": 100 * measured["top1"], "base_memory_mb": base["memory_mb_serialized"],
            "base_latency_ms": base["latency_ms_median"], "base_throughput_per_s": base["throughput_per_s"]}


# The kinds of record a claim is about, and what each says of its network.
KIND_ROWS = {"train": _trained, "prune": _pruned, "distill": _distilled, "quantize": _quantized}


def _in_protocol(config: dict) -> bool:
    """A network of the paper's protocol: one of its scenes, PCA fitted on
    the training pixels, the split's own training share, the seed's own
    initial weights (other ones are the extra teachers of multi-teacher
    distillation, not baselines)."""
    return (config["scene"] in PAPER_SCENES and config.get("pca_fit", "train") == "train"
            and config.get("train_fraction") is None and config.get("init_seed") is None)


def evidence_frame(records: list[dict]) -> pd.DataFrame:
    """One row per record of a network a claim can be about (see the module
    docstring for the columns); records of other kinds, scenes or
    protocols are left out."""
    rows = []
    for record in records:
        describe = KIND_ROWS.get(record["kind"])
        config = network_config(record)
        network = describe(record) if describe and _in_protocol(config) else None
        if network is None:
            continue
        direct = network.pop("direct", True)
        measured, summary = record["measure"], record.get("convergence")
        rows.append({**_DEFAULTS, **network, "key": record["key"], "stage": "direct" if direct else "pipeline",
                     **{k: config[k] for k in ("model", "scene", "split", "seed")},
                     "data_source": record["data_source"], "top1": 100 * record["metrics"]["top1"],
                     "params": measured["params"], "memory_mb": measured["memory_mb_serialized"],
                     "latency_ms": measured["latency_ms_median"],
                     "throughput_per_s": measured["throughput_per_s"],
                     "compress_s": record.get("compress_s", np.nan),
                     "held_params": record.get("training_params", np.nan) + record.get("teacher_params", 0),
                     "converged": converged(record),
                     "budget": 0 if summary is None else summary["max_epochs"]})
    return _finish(rows)


def _finish(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    sized = frame["ratio"] != ""
    table5 = frame[sized].groupby(["model", "scene", "ratio"])["params"].transform("min")
    frame["oversized"] = False
    frame.loc[sized, "oversized"] = frame.loc[sized, "params"] > SIZE_TOLERANCE * table5
    return frame


# --------------------------------------------------------------------------
# The paper's tables as the same rows: one run per cell (seed 0), budgets and
# convergence not reported (NaN, None).
# --------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _published(table: int, method: str, metric: str) -> float:
    """A number the paper prints once (not per scene), or NaN where it prints none."""
    rows = paper_values(table, metric, method=method, dataset="")
    return float(rows["value"].iloc[0]) if len(rows) else np.nan


def _paper_baselines() -> list[dict]:
    names = {spec.title: name for name, spec in MODELS.items()}
    rows = []
    for _, cell in paper_values(3, "top1").iterrows():
        model = names[cell["method"]]
        table4 = paper_name(4, model)
        rows.append({"family": "baseline", "arm": model, "model": model, "scene": cell["dataset"],
                     "split": cell["split"], "top1": cell["value"],
                     "params": _published(3, cell["method"], "params"),
                     "memory_mb": _published(4, table4, "memory_mb") if table4 else np.nan})
    return rows


def _sized(ratio: str) -> dict:
    """Table 4's size of the networks of Table 5's ``ratio`` (pruned, Scratch, students)."""
    return {metric: _published(4, f"Prune ({ratio})", metric) for metric in ("params", "memory_mb")}


# Tables 6-8 and 11-13: each row group's family, and our name of each row.
GROUP_FAMILIES = {"Scratch": "scratch", "Pruning": "prune", "Offline distillation": "offline",
                  "Online distillation": "online", "Self distillation": "self"}
ROW_NAMES = {**{title: name for name, title in PAPER_NAMES[6].items()},
             **{cls.title: name for name, cls in DISTILLERS.items()}}


def _paper_ratio_tables() -> list[dict]:
    """Scratch and pruned networks (Tables 6-8, pruned one-shot), students (Tables 11-13)."""
    rows = []
    for tables, groups in ((PRUNING_TABLES, ("Scratch", "Pruning")),
                           (DISTILLATION_TABLES, ("Offline distillation", "Online distillation",
                                                  "Self distillation"))):
        for ratio, table in tables.items():
            cells = paper_values(table, "top1", setting=ratio)
            for _, cell in cells[cells["group"].isin(groups)].iterrows():
                family = GROUP_FAMILIES[cell["group"]]
                rows.append({"family": family, "arm": ROW_NAMES[cell["method"]], "model": "cnn2d",
                             "ratio": ratio, "strategy": "I" if family == "prune" else "",
                             "scene": cell["dataset"], "split": cell["split"], "top1": cell["value"],
                             **_sized(ratio)})
    return rows


def _paper_strategies() -> list[dict]:
    """Table 9: L1-norm pruning fine-tuned by strategies II and III (its
    strategy I rows are Tables 6-8's)."""
    cells = paper_values(9, "top1")
    return [{"family": "prune", "arm": "l1", "model": "cnn2d", "ratio": cell["setting"],
             "strategy": cell["method"], "scene": cell["dataset"], "split": cell["split"],
             "top1": cell["value"], **_sized(cell["setting"])}
            for _, cell in cells[cells["method"] != "I"].iterrows()]


def _paper_quantized() -> list[dict]:
    """Table 10's int8 CNN2D. Its latency is per sample at an unstated batch
    size: it stands for both our batch-1 latency and our batch-1,000
    throughput."""
    def cost(label: str) -> dict:
        latency = _published(10, label, "latency_ms")
        return {"memory_mb": _published(10, label, "memory_mb"), "latency_ms": latency,
                "throughput_per_s": 1000 / latency}

    base_label = paper_name(10, "cnn2d")
    base = {f"base_{k}": v for k, v in cost(base_label).items()}
    base_top1 = paper_values(10, "top1", method=base_label).set_index(["dataset", "split"])["value"]
    rows = []
    for mode in MODES:
        label = paper_name(10, mode)
        for _, cell in paper_values(10, "top1", method=label).iterrows():
            rows.append({"family": "quantize", "arm": mode, "model": "cnn2d", "scene": cell["dataset"],
                         "split": cell["split"], "top1": cell["value"], **cost(label), **base,
                         "base_top1": base_top1[(cell["dataset"], cell["split"])]})
    return rows


def paper_evidence() -> pd.DataFrame:
    """The paper's Tables 3, 4 and 6-13 as :func:`evidence_frame` rows: one
    run per cell (seed 0), sizes from Table 4, budgets and convergence not
    reported. Baselines are Table 3's (Tables 6-8 and 11-13 repeat them)."""
    rows = [*_paper_baselines(), *_paper_ratio_tables(), *_paper_strategies(), *_paper_quantized()]
    return _finish([{**_DEFAULTS, "seed": 0, "data_source": "paper", "budget": np.nan, **row}
                    for row in rows])
