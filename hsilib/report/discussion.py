"""The discussion chapter's tables: compression pipelines stage by stage,
the best network of each family, and whether a ranking holds on other
scenes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..compress.prune.strategies import scratch_config
from .frontier import frontier_frame


def stages(record: dict, records: dict[str, dict]) -> list[dict]:
    """The records a network went through, from the one trained from
    scratch to ``record`` itself (following each record's ``base_key``)."""
    chain = [record]
    while chain[0].get("base_key") in records:
        chain.insert(0, records[chain[0]["base_key"]])
    return chain


def pipeline_table(finals: list[dict], records: list[dict]) -> pd.DataFrame:
    """Each pipeline stage by stage: what it is, its size, speed and
    accuracy, how it agrees with the stage before, and how its memory and
    latency compare with the first network of the chain."""
    by_key = {r["key"]: r for r in records}
    frame = frontier_frame(records).set_index("key")
    rows = []
    for final in finals:
        chain = stages(final, by_key)
        first = frame.loc[chain[0]["key"]]
        for number, record in enumerate(chain):
            here = frame.loc[record["key"]]
            rows.append({"pipeline": frame.loc[final["key"], "label"], "setting":
                         f"{here['scene']} {here['split']} seed {here['seed']}", "stage": number,
                         "network": here["label"], "top-1 (%)": here["top1"],
                         "memory (KB)": here["memory_kb"], "latency (ms)": here["latency_ms"],
                         "memory ÷ first": first["memory_kb"] / here["memory_kb"],
                         "speed-up on first": first["latency_ms"] / here["latency_ms"],
                         "agreement with the stage before": 100 * record["agreement"]
                         if number else np.nan})
    return pd.DataFrame(rows).set_index(["pipeline", "setting", "stage"])


def compounding(finals: list[dict], records: list[dict]) -> pd.DataFrame:
    """Whether a pipeline's savings multiply: its memory saving and speed-up
    on the first network of its chain, beside the product of the stage
    before its last one and of its last method applied to the first network
    alone (a record of the same kind and method whose base is that network;
    NaN without one)."""
    by_key = {r["key"]: r for r in records}
    frame = frontier_frame(records).set_index("key")
    rows = []
    for final in finals:
        chain = stages(final, by_key)
        first, before = frame.loc[chain[0]["key"]], frame.loc[chain[-2]["key"]]
        alone = [r["key"] for r in records if r["kind"] == final["kind"] and r["key"] != final["key"]
                 and r.get("method") == final.get("method") and r.get("base_key") == chain[0]["key"]]
        alone = frame.loc[alone[0]] if alone else pd.Series(np.nan, index=frame.columns)
        here = frame.loc[final["key"]]
        row = {"pipeline": here["label"], "setting": f"{here['scene']} {here['split']} seed {here['seed']}"}
        for cost, name in (("memory_kb", "memory ÷ first"), ("latency_ms", "speed-up on first")):
            row[name] = first[cost] / here[cost]
            row[f"{name}, stages multiplied"] = (first[cost] / before[cost]) * (first[cost] / alone[cost])
        rows.append(row)
    return pd.DataFrame(rows).set_index(["pipeline", "setting"])


def compounding_summary(compound: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Each pipeline's savings averaged over its settings (``compound`` from
    :func:`compounding`), and for each saving the share of the stages'
    product that the pipelines keep (1: the savings multiply), averaged
    over the pipelines."""
    summary = compound.groupby(level="pipeline", sort=False).mean()
    kept = {cost: float((summary[cost] / summary[f"{cost}, stages multiplied"]).mean())
            for cost in ("memory ÷ first", "speed-up on first")}
    return summary, kept


def lowrank_table(lowrank: list, candidates: list, record_of: dict) -> pd.DataFrame:
    """Each low-rank network beside the one-shot pruned networks of its base
    and ratio (found among ``candidates``, configs of any kind) and the
    Scratch network of that ratio (where run): mean top-1 (%), parameters,
    and the low-rank network's validation accuracy (%) before fine-tuning,
    by ratio and network. ``record_of`` maps configs to their records."""
    rows = []
    for config in lowrank:
        same = [c for c in candidates if getattr(c, "strategy", None) == "I"
                and c.ratio == config.ratio and c.base == config.base]
        scratch = scratch_config(config.base, config.ratio)
        compared = [("low-rank", config), *((f"pruned ({c.criterion}, I)", c) for c in same),
                    *((("Scratch", scratch),) if scratch in record_of else ())]
        for label, c in compared:
            r = record_of[c]
            rows.append({"ratio": config.ratio, "network": label, "top-1 (%)": 100 * r["metrics"]["top1"],
                         "parameters": r["measure"]["params"],
                         "validation OA before fine-tuning (%)":
                             100 * r.get("val_oa_before_finetuning", float("nan"))})
    return pd.DataFrame(rows).groupby(["ratio", "network"], sort=False).mean()


def best_per_family(frame: pd.DataFrame, families: list[str], size: str) -> dict[str, str]:
    """For each of ``families`` (of a frontier frame): the key of one record
    of the label with the best mean top-1, among networks of ``size`` (Table
    5's ratio) or of no size (a quantized full network)."""
    best = {}
    for family in families:
        rows = frame[(frame["family"] == family) & frame["size"].isin([size, ""])]
        if rows.empty:
            raise ValueError(f"no {family} network of size {size} to choose the best from; "
                             f"families present: {', '.join(sorted(set(frame['family'])))}")
        label = rows.groupby("label")["top1"].mean().idxmax()
        best[family] = rows.loc[rows["label"] == label, "key"].iloc[0]
    return best


def transfer_grid(recipes: list, bases: list, size: str) -> list:
    """The networks run on scenes the paper did not use: the networks
    trained from scratch ``bases``, the Scratch network of ``size`` from each
    CNN2D among them, and every recipe (a compressed network's config)
    rebased onto each base of its architecture."""
    return [*bases, *(scratch_config(b, size) for b in bases if b.model == "cnn2d"),
            *(recipe.rebased(b) for recipe in recipes for b in bases
              if b.model == recipe.network_config().model)]


def transferred(frame: pd.DataFrame, labels: set[str], scenes: list[str]) -> pd.DataFrame:
    """The rows of a frontier frame that the transfer table shows: the
    networks labelled ``labels`` on every scene, with the baseline and
    Scratch networks run on ``scenes``."""
    references = frame["family"].isin(["baseline", "scratch"]) & frame["scene"].isin(scenes)
    return frame[frame["label"].isin(set(labels) | set(frame.loc[references, "label"]))]


def ranking_agreement(frame: pd.DataFrame, reference: list[str], others: list[str]) -> pd.DataFrame:
    """How each scene of ``others`` ranks the networks by mean top-1
    against the ranking on the ``reference`` scenes: Spearman's rank
    correlation over the networks both have."""
    def ranking(scenes: list[str]) -> pd.Series:
        return frame[frame["scene"].isin(scenes)].groupby("label")["top1"].mean()

    base = ranking(reference)
    rows = []
    for scene in others:
        here = ranking([scene])
        shared = base.index.intersection(here.index)
        rho = stats.spearmanr(base[shared], here[shared]).statistic if len(shared) > 2 else np.nan
        rows.append({"scene": scene, "networks": len(shared), "rank correlation": rho,
                     "best here": here[shared].idxmax() if len(shared) else "-",
                     "best on the paper's scenes": base[shared].idxmax() if len(shared) else "-"})
    return pd.DataFrame(rows).set_index("scene")


__all__ = ["best_per_family", "compounding", "compounding_summary", "lowrank_table", "pipeline_table",
           "ranking_agreement", "stages", "transfer_grid", "transferred"]
