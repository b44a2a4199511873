"""The paper's claims as data, each with a verdict computed from our results.

A :class:`Claim` holds the claim, where the paper makes it, the rule that
decides it and a ``judge`` that turns our measurements (a chapter's frame,
e.g. :func:`hsilib.report.comparison_frame`) into a :class:`Verdict`:
``"holds"``, ``"fails"`` or ``"inconclusive"``, with the paper's evidence
and ours as text. :func:`check_claims` gives a chapter's claims as one table.
Accuracy claims compare paired runs (same scene, split and seed) with
:func:`paired_verdict`, so that a difference within seed noise is called
inconclusive rather than decided by one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from .reference import DISTILLATION_TABLES, PRUNING_TABLES, paper_value, paper_values
from .registry import Registry

VERDICTS = ("holds", "fails", "inconclusive")
ALPHA = 0.05  # significance level of the paired tests
MIN_PAIRS = 3  # fewer paired runs than this decide nothing


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict and the evidence on both sides, as text."""

    verdict: str
    paper: str
    ours: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}; accepted: {', '.join(VERDICTS)}")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper.

    name : registry key. chapter : the chapter that checks it.
    statement : the claim. source : where the paper makes it.
    rule : how the verdict is decided, in words.
    judge : our frame -> :class:`Verdict`.
    """

    name: str
    chapter: str
    statement: str
    source: str
    rule: str
    judge: Callable[[pd.DataFrame], Verdict]


CLAIMS: Registry[Claim] = Registry("claim")
register_claim = CLAIMS.add


def paired_verdict(differences) -> tuple[str, str]:
    """Verdict on "the differences are positive" from paired runs: a
    one-sample t-test of the differences against 0 (two-sided, level
    :data:`ALPHA`); ``"holds"`` when significantly positive, ``"fails"`` when
    significantly negative, ``"inconclusive"`` otherwise or with fewer than
    :data:`MIN_PAIRS` pairs. Returns the verdict and a summary (mean ±
    standard deviation, the count of positive differences, p-value)."""
    diff = np.asarray(differences, dtype=float)
    diff = diff[~np.isnan(diff)]
    positive = f"{int((diff > 0).sum())} of {len(diff)} paired runs"
    if len(diff) < MIN_PAIRS:
        return "inconclusive", f"{positive} (too few to test)"
    if np.allclose(diff, diff[0]):  # no spread: the t statistic is undefined
        p = 0.0 if diff[0] != 0 else 1.0
    else:
        p = float(stats.ttest_1samp(diff, 0.0).pvalue)
    verdict = "inconclusive" if p >= ALPHA else ("holds" if diff.mean() > 0 else "fails")
    return verdict, f"mean {diff.mean():+.2f} ± {diff.std(ddof=1):.2f}, {positive} positive, p = {p:.3f}"


def check_claims(chapter: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Every registered claim of ``chapter`` judged on ``frame``: one row
    each, with the paper's evidence, ours, the verdict and the rule."""
    rows = []
    for claim in CLAIMS.values():
        if claim.chapter != chapter:
            continue
        verdict = claim.judge(frame)
        rows.append({"claim": claim.statement, "source": claim.source, "paper": verdict.paper,
                     "ours": verdict.ours, "verdict": verdict.verdict, "rule": claim.rule})
    if not rows:
        raise ValueError(f"no claims registered for chapter {chapter!r}; chapters: "
                         f"{', '.join(sorted({c.chapter for c in CLAIMS.values()}))}")
    return pd.DataFrame(rows).set_index("claim")


# --------------------------------------------------------------------------
# Quantization (Section 4.3, Tables 2 and 10): a comparison frame of int8
# networks beside their float32 networks (hsilib.report.comparison_frame).
# --------------------------------------------------------------------------

FOUR_X = 3.5  # "up to 4x" holds from this factor
MODE_TITLES = {"dynamic": "Dynamic Quantization", "static": "Static Quantization",
               "qat": "Quantization Aware Training"}  # Table 10's rows


def _table10(method: str, metric: str) -> float:
    return paper_value(10, method, metric)


def _mode_mean(frame: pd.DataFrame, mode: str, column: str) -> float:
    return frame.loc[frame["method"] == mode, column].mean()


def _memory_4x(frame: pd.DataFrame) -> Verdict:
    paper = _table10("CNN2D", "memory_mb") / _table10("Static Quantization", "memory_mb")
    ours = 1 / _mode_mean(frame, "static", "size_ratio")
    return Verdict("holds" if ours >= FOUR_X else "fails", f"×{paper:.1f} (static, Table 10)",
                   f"×{ours:.1f} (static, serialized)")


def _latency_4x(frame: pd.DataFrame) -> Verdict:
    paper = _table10("CNN2D", "latency_ms") / _table10("Static Quantization", "latency_ms")
    batch1 = _mode_mean(frame, "static", "latency_speedup")
    batch1000 = _mode_mean(frame, "static", "throughput_ratio")
    return Verdict("holds" if max(batch1, batch1000) >= FOUR_X else "fails",
                   f"×{paper:.1f} (static, batch 1)",
                   f"×{batch1:.1f} at batch 1, ×{batch1000:.1f} at batch 1,000 (static)")


def _dynamic_fast(frame: pd.DataFrame) -> Verdict:
    paper = _table10("CNN2D", "latency_ms") / _table10("Dynamic Quantization", "latency_ms")
    ours = _mode_mean(frame, "dynamic", "latency_speedup")
    return Verdict("holds" if ours > 1.05 else "fails", f"×{paper:.2f} (batch 1)",
                   f"×{ours:.2f} (batch 1)")


def _static_fastest(frame: pd.DataFrame) -> Verdict:
    paper = ", ".join(f"{mode} {_table10(title, 'latency_ms'):.2f} ms" for mode, title in MODE_TITLES.items())
    speedups = frame[frame["method"] != "base"].groupby("method")["latency_speedup"].mean()
    fastest = speedups.idxmax()
    return Verdict("holds" if fastest in ("static", "qat") else "fails", paper,
                   ", ".join(f"{m} ×{v:.2f}" for m, v in speedups.items()) + f"; fastest: {fastest}")


def _qat_beats_static(frame: pd.DataFrame) -> Verdict:
    paper_runs = [(d, s) for d in ("indian_pines", "pavia_university") for s in ("disjoint", "random")]
    paper_wins = sum(paper_value(10, "Quantization Aware Training", "top1", d, s)
                     >= paper_value(10, "Static Quantization", "top1", d, s) for d, s in paper_runs)
    pairs = frame[frame["method"].isin(["qat", "static"])].pivot_table(
        index=["model", "scene", "split", "seed"], columns="method", values="top1")
    if not {"qat", "static"} <= set(pairs.columns):
        return Verdict("inconclusive", f"QAT ≥ static in {paper_wins} of {len(paper_runs)} settings",
                       "needs both modes")
    verdict, summary = paired_verdict(pairs["qat"] - pairs["static"])
    return Verdict(verdict, f"QAT ≥ static in {paper_wins} of {len(paper_runs)} settings (one run each)",
                   f"QAT − static top-1: {summary}")


def _no_significant_loss(frame: pd.DataFrame) -> Verdict:
    changes = frame[frame["method"] != "base"].groupby("method")["top1_change"].mean()
    def top1(method: str) -> float:
        return paper_value(10, method, "top1", "indian_pines", "disjoint")

    paper = ", ".join(f"{mode} {top1(title) - top1('CNN2D'):+.1f}" for mode, title in MODE_TITLES.items())
    return Verdict("holds" if (changes > -1.0).all() else "fails",
                   f"top-1 change on Indian Pines disjoint: {paper}",
                   "mean top-1 change: " + ", ".join(f"{m} {v:+.2f}" for m, v in changes.items()))


for _claim in (
    Claim("quant_memory_4x", "quantization", "memory reduced up to 4x", "§4.3",
          f"holds from ×{FOUR_X}: an int8 value takes 1 byte, a float32 one 4", _memory_4x),
    Claim("quant_latency_4x", "quantization", "inference latency reduced up to 4x", "§4.3",
          f"holds from ×{FOUR_X} at batch 1 or 1,000", _latency_4x),
    Claim("quant_dynamic_fast", "quantization", "dynamic quantization is fast", "Table 2",
          "holds above ×1.05 at batch 1", _dynamic_fast),
    Claim("quant_static_fastest", "quantization", "static quantization is the fastest mode", "Table 2",
          "holds when static or QAT (the same integer network) is fastest at batch 1", _static_fastest),
    Claim("quant_qat_beats_static", "quantization", "QAT is more accurate than static quantization",
          "§4.3", f"paired t-test over scenes, splits and seeds, level {ALPHA}; "
          f"at least {MIN_PAIRS} pairs", _qat_beats_static),
    Claim("quant_no_significant_loss", "quantization", "no significant loss of accuracy", "§4.3",
          "holds when every mode's mean top-1 change is above −1 point", _no_significant_loss),
):
    register_claim(_claim)


# --------------------------------------------------------------------------
# Pruning (Section 4.2, Tables 4-9): a pruning frame (hsilib.report.pruning).
# --------------------------------------------------------------------------

FIFTEEN_X = 14.0  # "up to 15x" holds from this factor (the paper's own is 1.71 / 0.12 = 14.3)


def _per_setting(rows: pd.DataFrame, by: list[str]) -> pd.Series:
    return rows.groupby(by)["top1"].mean()


def _memory_15x(frame: pd.DataFrame) -> Verdict:
    paper = paper_value(4, "CNN2D", "memory_mb") / paper_value(4, "Prune (98%)", "memory_mb")
    base = frame[(frame["label"] == "cnn2d") & (frame["group"] == "baseline")]["memory_mb"].mean()
    smallest = frame[frame["ratio"] == "98%"]["memory_mb"].mean()
    ours = base / smallest
    return Verdict("holds" if ours >= FIFTEEN_X else "fails", f"×{paper:.1f} (Table 4, 98%)",
                   f"×{ours:.1f} (98%, saved state dicts)")


def _beats_scratch(frame: pd.DataFrame) -> Verdict:
    setting = ["scene", "split", "seed", "ratio"]
    scratch = _per_setting(frame[frame["group"] == "scratch"], setting)
    pruned = frame[(frame["group"] == "prune") & (frame["strategy"] == "I")]
    differences = pd.concat([(_per_setting(rows, setting) - scratch).dropna()
                             for _, rows in pruned.groupby("label")]) if len(pruned) else pd.Series([])
    wins, cells = 0, 0
    for ratio, table in PRUNING_TABLES.items():
        paper = paper_values(table, "top1", setting=ratio)
        scratch_paper = paper[paper["method"] == "Pruned CNN2D"].set_index(["dataset", "split"])["value"]
        for _, row in paper[paper["group"] == "Pruning"].iterrows():
            cells += 1
            wins += row["value"] > scratch_paper[(row["dataset"], row["split"])]
    verdict, summary = paired_verdict(differences)
    return Verdict(verdict, f"pruned > Scratch in {wins} of {cells} cells (Tables 6-8, one run each)",
                   f"pruned (I) − Scratch top-1: {summary}")


def _smallest_beats_spectral(frame: pd.DataFrame) -> Verdict:
    setting = ["scene", "split", "seed"]
    spectral = frame[frame["label"].isin(["mlp", "cnn1d"]) & (frame["group"] == "baseline")]
    best = spectral.groupby(setting)["top1"].max()
    pruned = frame[(frame["ratio"] == "98%") & (frame["group"] == "prune") & (frame["strategy"] == "I")]
    differences = pd.concat([(_per_setting(rows, setting) - best).dropna()
                             for _, rows in pruned.groupby("label")]) if len(pruned) else pd.Series([])
    smaller = pruned["memory_mb"].max() < spectral["memory_mb"].min() if len(spectral) else False
    paper = paper_values(8, "top1", setting="98%")
    paper_best = paper[paper["method"].isin(["MLP", "CNN-1D"])].groupby(["dataset", "split"])["value"].max()
    paper_cells = paper[paper["group"] == "Pruning"]
    paper_wins = sum(row["value"] > paper_best[(row["dataset"], row["split"])]
                     for _, row in paper_cells.iterrows())
    verdict, summary = paired_verdict(differences)
    if verdict == "holds" and not smaller:
        verdict = "fails"
    return Verdict(verdict, f"98% > max(MLP, CNN-1D) in {paper_wins} of {len(paper_cells)} cells (Table 8)",
                   f"98% (I) − max(MLP, CNN-1D) top-1: {summary}; "
                   f"{'smaller' if smaller else 'not smaller'} than both")


def _iterative_best(frame: pd.DataFrame) -> Verdict:
    setting = ["scene", "split", "seed", "ratio"]
    l1 = frame[(frame["label"] == "l1") & (frame["group"] == "prune")]
    by = {s: _per_setting(l1[l1["strategy"] == s], setting) for s in ("I", "II", "III")}
    others = pd.concat([by["I"], by["III"]], axis=1).max(axis=1)
    verdict, summary = paired_verdict((by["II"] - others).dropna())
    paper = paper_values(9, "top1").pivot_table(index=["setting", "dataset", "split"], columns="method",
                                                values="value")
    paper_wins = int((paper["II"] > paper[["I", "III"]].max(axis=1)).sum())
    return Verdict(verdict, f"II best in {paper_wins} of {len(paper)} cells (Table 9, L1)",
                   f"II − best of I and III (L1) top-1: {summary}")


for _claim in (
    Claim("prune_memory_15x", "pruning", "memory reduced up to 15x", "§4.2, Table 4",
          f"holds from ×{FIFTEEN_X:g} (the paper's own figure is ×14.3)", _memory_15x),
    Claim("prune_beats_scratch", "pruning", "pruning outperforms training from scratch", "§4.2",
          f"paired t-test over criteria, scenes, splits, ratios and seeds, level {ALPHA}",
          _beats_scratch),
    Claim("prune_98_beats_spectral", "pruning",
          "the 98% network beats MLP and CNN-1D with less memory", "§4.2",
          f"paired t-test against the better of the two, level {ALPHA}; and smaller than both",
          _smallest_beats_spectral),
    Claim("prune_iterative_best", "pruning", "iterative fine-tuning (II) is the best strategy",
          "§4.2, Table 9", f"paired t-test of II against the better of I and III, level {ALPHA}",
          _iterative_best),
):
    register_claim(_claim)


# --------------------------------------------------------------------------
# Distillation (Section 4.4, Tables 11-13): a frame of students, Scratch and
# baselines (hsilib.report.networks.networks_frame).
# --------------------------------------------------------------------------

DISTILLATION_FAMILIES = ("offline", "online", "self")
_FAMILY_GROUPS = {"offline": "Offline distillation", "online": "Online distillation",
                  "self": "Self distillation"}
SETTING = ["scene", "split", "seed", "ratio"]
TOP_METHODS = 3  # "the best overall performance": among the three best methods


def _distillation_paper() -> pd.DataFrame:
    return pd.concat([paper_values(table, "top1", setting=ratio)
                      for ratio, table in DISTILLATION_TABLES.items()])


def _family_order(frame: pd.DataFrame) -> Verdict:
    paper = _distillation_paper()
    means = {f: paper[paper["group"] == _FAMILY_GROUPS[f]]["value"].mean() for f in DISTILLATION_FAMILIES}
    ours = {f: frame[frame["group"] == f].groupby(SETTING)["top1"].mean() for f in DISTILLATION_FAMILIES}
    verdicts = [paired_verdict((ours[a] - ours[b]).dropna())
                for a, b in (("offline", "online"), ("online", "self"))]
    names = [v for v, _ in verdicts]
    verdict = "fails" if "fails" in names else ("holds" if set(names) == {"holds"} else "inconclusive")
    return Verdict(verdict, ", ".join(f"{f} {m:.2f}" for f, m in means.items()) + " (mean top-1, 12 cells)",
                   f"offline − online: {verdicts[0][1]}; online − self: {verdicts[1][1]}")


def _okddip_ddgsd_best(frame: pd.DataFrame) -> Verdict:
    paper = _distillation_paper()
    paper_rank = paper[paper["group"].isin(_FAMILY_GROUPS.values())].groupby("method")["value"].mean()
    paper_rank = paper_rank.sort_values(ascending=False)
    ours = frame[frame["group"].isin(DISTILLATION_FAMILIES)].groupby("method")["top1"].mean()
    ours = ours.sort_values(ascending=False)
    if not {"OKDDip", "DDGSD"} <= set(ours.index):
        return Verdict("inconclusive", "", "needs OKDDip and DDGSD")
    ranks = {m: list(ours.index).index(m) + 1 for m in ("OKDDip", "DDGSD")}
    paper_ranks = {m: list(paper_rank.index).index(m) + 1 for m in ("OKDDip", "DDGSD")}
    return Verdict("holds" if max(ranks.values()) <= TOP_METHODS else "fails",
                   f"ranks {paper_ranks['OKDDip']} and {paper_ranks['DDGSD']} of {len(paper_rank)} by mean top-1",
                   f"ranks {ranks['OKDDip']} and {ranks['DDGSD']} of {len(ours)} by mean top-1")


def _beat_scratch(families: tuple[str, ...]):
    def judge(frame: pd.DataFrame) -> Verdict:
        scratch = frame[frame["group"] == "scratch"].groupby(SETTING)["top1"].mean()
        methods = frame[frame["group"].isin(families)]
        verdicts = {method: paired_verdict((group.groupby(SETTING)["top1"].mean() - scratch).dropna())[0]
                    for method, group in methods.groupby("method")}
        better = sum(v == "holds" for v in verdicts.values())
        worse = sum(v == "fails" for v in verdicts.values())
        paper = _distillation_paper()
        scratch_paper = paper[paper["group"] == "Scratch"].set_index(["setting", "dataset", "split"])["value"]
        cells = paper[paper["group"].isin([_FAMILY_GROUPS[f] for f in families])]
        above = sum(row["value"] > scratch_paper[(row["setting"], row["dataset"], row["split"])]
                    for _, row in cells.iterrows())
        verdict = ("holds" if better > len(verdicts) / 2 else
                   "fails" if worse >= len(verdicts) / 2 else "inconclusive") if verdicts else "inconclusive"
        return Verdict(verdict, f"above Scratch in {above} of {len(cells)} cells",
                       f"{better} of {len(verdicts)} methods significantly above Scratch, {worse} below")
    return judge


def _teacher_free_memory(frame: pd.DataFrame) -> Verdict:
    held = frame[frame["group"].isin(DISTILLATION_FAMILIES)].groupby("group")["held_params"].max()
    if not {"offline", "online", "self"} <= set(held.index):
        return Verdict("inconclusive", "not measured (no memory column for KD)", "needs every family")
    offline = frame[frame["group"] == "offline"]["held_params"].min()
    verdict = "holds" if max(held["online"], held["self"]) < offline else "fails"
    return Verdict(verdict, "not measured (no memory column for KD)",
                   f"most held in training: online {held['online']:,.0f}, self {held['self']:,.0f}; "
                   f"least by an offline method {offline:,.0f} parameters (teachers included)")


for _claim in (
    Claim("kd_family_order", "distillation", "offline > online > self distillation", "§4.4",
          f"paired t-tests of the family means per setting and seed, level {ALPHA}; holds when both "
          "differences are significantly positive", _family_order),
    Claim("kd_okddip_ddgsd_best", "distillation", "OKDDip and DDGSD show the best overall performance",
          "§4.4", f"holds when both rank among the {TOP_METHODS} best of the methods by mean top-1",
          _okddip_ddgsd_best),
    Claim("kd_online_self_beat_scratch", "distillation",
          "most online and self methods outperform Scratch", "§4.4",
          f"holds when more than half of them are significantly above the paired Scratch students "
          f"(level {ALPHA})", _beat_scratch(("online", "self"))),
    Claim("kd_offline_beat_scratch", "distillation",
          "offline methods keep the accuracy with fewer parameters", "§4.4",
          f"holds when more than half of them are significantly above the paired Scratch students "
          f"(level {ALPHA})", _beat_scratch(("offline",))),
    Claim("kd_teacher_free_memory", "distillation",
          "online and self distillation need less memory (no teacher)", "§4.4",
          "holds when every online and self run holds fewer parameters in training than any offline "
          "run with its teacher", _teacher_free_memory),
):
    register_claim(_claim)


# --------------------------------------------------------------------------
# Discussion (Section 5): a frame of pruned, distilled and baseline networks
# (hsilib.report.networks.networks_frame), and the ledger of every claim.
# --------------------------------------------------------------------------

KEPT_POINTS = 1.0  # "without significant classification loss": within a point of the full network


def _distillation_beats_pruning(frame: pd.DataFrame) -> Verdict:
    pruned = frame[(frame["group"] == "prune") & (frame["strategy"] == "I")].groupby(SETTING)["top1"].mean()
    distilled = frame[frame["group"].isin(DISTILLATION_FAMILIES)].groupby(SETTING)["top1"].mean()
    verdict, summary = paired_verdict((distilled - pruned).dropna())
    paper_kd = _distillation_paper()
    paper_kd = paper_kd[paper_kd["group"].isin(_FAMILY_GROUPS.values())]["value"].mean()
    paper_prune = pd.concat([paper_values(t, "top1", setting=r) for r, t in PRUNING_TABLES.items()])
    paper_prune = paper_prune[paper_prune["group"] == "Pruning"]["value"].mean()
    return Verdict(verdict, f"mean top-1: distillation {paper_kd:.2f}, pruning {paper_prune:.2f} "
                   "(Tables 6-8, 11-13)", f"distillation − pruning (I), mean per setting: {summary}")


def _compression_keeps_accuracy(frame: pd.DataFrame) -> Verdict:
    base = frame[(frame["label"] == "cnn2d") & (frame["group"] == "baseline")].groupby(
        ["scene", "split", "seed"])["top1"].mean()
    compressed = frame[frame["group"].isin(["prune", *DISTILLATION_FAMILIES]) & (frame["ratio"] == "90%")]
    best = compressed.groupby(["scene", "split", "seed"])["top1"].max()
    verdict, summary = paired_verdict((best - base + KEPT_POINTS).dropna())
    paper = paper_values(6, "top1", setting="90%")
    best_paper = paper[paper["group"] == "Pruning"].groupby(["dataset", "split"])["value"].max()
    base_paper = paper[paper["method"] == "CNN-2D"].set_index(["dataset", "split"])["value"]
    return Verdict(verdict, "best 90% pruned − CNN-2D: " + ", ".join(
        f"{(best_paper - base_paper)[key]:+.1f}" for key in best_paper.index),
        f"best 90% network − CNN2D + {KEPT_POINTS:g} point: {summary}")


for _claim in (
    Claim("kd_beats_pruning", "discussion", "distillation performs better than pruning", "§5",
          f"paired t-test of the mean student against the mean one-shot pruned network of each "
          f"setting, size and seed, level {ALPHA}", _distillation_beats_pruning),
    Claim("compression_keeps_accuracy", "discussion",
          "compression reduces size without significant loss of accuracy", "§5",
          f"holds when the best 90% network is significantly no more than {KEPT_POINTS:g} point "
          "below the full CNN2D (paired by setting and seed)", _compression_keeps_accuracy),
):
    register_claim(_claim)


def claims_ledger(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every registered claim whose chapter has a frame in ``frames``, judged
    on it: one table, with the chapter as a column."""
    tables = [check_claims(chapter, frame).assign(chapter=chapter)
              for chapter, frame in frames.items()]
    return pd.concat(tables)[["chapter", "source", "paper", "ours", "verdict", "rule"]]
