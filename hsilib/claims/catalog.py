"""The paper's claims, as it states them, each with the sentence it comes
from, the networks it is about and how it is tested (:mod:`.rules`).

A claim's ``members`` are its tests on an evidence frame: one for a pooled
claim, one per method (or mode, or cost) where the paper speaks of each;
``need`` says how many must hold. The same claim judges our runs and the
paper's own tables (:func:`hsilib.claims.evidence.paper_evidence`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import pandas as pd

from ..compress.distill import DISTILLERS
from ..compress.prune import CRITERIA
from ..models import MODELS
from ..registry import Registry
from .rules import (MARGIN, SETTING, SIZED_SETTING, Arm, Comparison, Measurement, Ranking, per_setting,
                    ratio)

Test = Union[Comparison, Measurement, Ranking]
Members = Callable[[pd.DataFrame], dict[str, Test]]
CHAPTERS = ("baselines", "pruning", "quantization", "distillation", "discussion")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper.

    name : registry key. chapter : the chapter whose runs test it (one of
    :data:`CHAPTERS`). statement : the claim, short. source : the section
    and the sentence it comes from. scope : the networks it is about.
    rule : how it is judged, in words. members : evidence -> its tests.
    need : ``"all"`` or ``"most"`` of the members must hold.
    parts : evidence -> comparisons shown beside it, not judged (the terms
    a difference decomposes into).
    """

    name: str
    chapter: str
    statement: str
    source: str
    scope: str
    rule: str
    members: Members
    need: str = "all"
    parts: Members | None = None


CLAIMS: Registry[Claim] = Registry("claim")
register_claim = CLAIMS.add

TITLES = {**{n: s.title for n, s in MODELS.items()}, **{n: c.title for n, c in CRITERIA.items()},
          **{n: c.title for n, c in DISTILLERS.items()}, "dynamic": "dynamic", "static": "static",
          "qat": "QAT"}
STUDENT_FAMILIES = ["offline", "online", "self"]
FASTER = 1.1  # a speed-up counts from ×1.1: timings of one run vary by a few percent


def pooled(test: Test) -> Members:
    return lambda evidence: {"": test}


def each(families: list[str], test: Callable[[str], Test]) -> Members:
    """One member per arm of ``families`` in the evidence (each method run)."""
    def members(evidence: pd.DataFrame) -> dict[str, Test]:
        arms = evidence[evidence["family"].isin(families) & (evidence["stage"] == "direct")]["arm"]
        return {TITLES[arm]: test(arm) for arm in dict.fromkeys(arms)}
    return members


def _rule(what: str, threshold: float, settings: str) -> str:
    side = "above" if threshold > 0 else "not below"
    return (f"{what} top-1 (points), paired by {settings} with seeds averaged first; the mean's 95% "
            f"interval must lie {side} {threshold:+g} (the practical margin)")


BY_SETTING = "scene and split"
BY_SIZE = "scene, split and size"


# --------------------------------------------------------------------------
# §4.1, Table 3: the baselines.
# --------------------------------------------------------------------------

def _baseline(model: str, split: str | None = None, setting: tuple[str, ...] = SETTING) -> Arm:
    where = {"family": "baseline", "arm": model} | ({"split": split} if split else {})
    return Arm(TITLES[model] + (f", {split}" if split else ""), where, setting)


CNN2D = _baseline("cnn2d")
SPLIT_PAIRS = ("model", "scene")  # a model on a scene, its two splits paired


def _each_model_split(split: str) -> Arm:
    return Arm(f"{split} split", {"family": "baseline", "split": split}, SPLIT_PAIRS)


for _claim in (
    Claim("disjoint_harder", "baselines", "disjoint splits are harder than random ones for every baseline",
          "§4.1: “The results demonstrate that the classification accuracy using disjoint data "
          "splitting is worse than random splitting for all baseline algorithms”",
          "every baseline of Table 3 run",
          _rule("random − disjoint", MARGIN, "model and scene") + "; pooled over the models (two "
          "scenes cannot test each model alone)",
          pooled(Comparison(_each_model_split("random"), _each_model_split("disjoint"), MARGIN))),
    Claim("cnn2d_best", "baselines", "CNN2D (c=40) is the best baseline",
          "§4.1: “It can be seen that CNN2D, with 40 channels, achieves the best performance by "
          "utilizing both spectral and spatial information”",
          "every baseline of Table 3 run",
          "rank of CNN2D (c=40) by mean top-1 over scenes and splits among the baselines run: its "
          "95% bootstrap rank interval must be [1, 1]",
          pooled(Ranking(Arm("baselines", {"family": "baseline"}), ("cnn2d",), best=1, titles=TITLES))),
    Claim("c1_much_worse", "baselines", "one channel instead of 40 hurts CNN2D",
          "§4.1: “If we reduce the number of channels to one, significant information loss will "
          "hurt the model performance”",
          "CNN2D with 40 and with 1 input channel",
          _rule("CNN2D (c=40) − CNN2D (c=1)", MARGIN, BY_SETTING),
          pooled(Comparison(CNN2D, _baseline("cnn2d_c1"), MARGIN))),
    Claim("cnn3d_poor", "baselines", "CNN3D does not work well",
          "§4.1: “Additionally, CNN3D does not work well in this case because it assumes existing "
          "spatial correlations between different channels”",
          "CNN3D against CNN2D (c=40), the baseline the paper compresses",
          _rule("CNN2D (c=40) − CNN3D", MARGIN, BY_SETTING),
          pooled(Comparison(CNN2D, _baseline("cnn3d"), MARGIN))),
):
    register_claim(_claim)


# --------------------------------------------------------------------------
# §4.2, Tables 4-9: pruning, on CNN2D at Table 5's sizes.
# --------------------------------------------------------------------------

FIFTEEN_X = 14.5  # "up to 15x": 15 when rounded to a whole factor
SLOWER = 2.0  # "time-consuming": at least twice strategy I's time
PRUNED = {"family": "prune", "model": "cnn2d", "strategy": "I", "oversized": False}
SCRATCH = Arm("Scratch", {"family": "scratch", "model": "cnn2d"}, SIZED_SETTING)
PRUNED_I = Arm("pruned (strategy I)", PRUNED, SIZED_SETTING)


def _l1(strategy: str) -> Arm:
    return Arm(f"L1-norm, strategy {strategy}",
               {"family": "prune", "model": "cnn2d", "arm": "l1", "strategy": strategy}, SIZED_SETTING)


def _memory_15x(evidence: pd.DataFrame) -> pd.Series:
    full = per_setting(CNN2D.rows(evidence), "memory_mb")
    smallest = per_setting(Arm("", PRUNED | {"ratio": "98%"}).rows(evidence), "memory_mb")
    return ratio(full, smallest)


def _smaller_than(model: str) -> Measurement:
    def values(evidence: pd.DataFrame) -> pd.Series:
        evidence = evidence[evidence["scene"] == "indian_pines"]
        smallest = per_setting(Arm("", {"family": ["prune", "scratch"], "model": "cnn2d", "ratio": "98%",
                                        "oversized": False}).rows(evidence), "params")
        return ratio(per_setting(_baseline(model).rows(evidence), "params"), smallest)
    return Measurement(f"{TITLES[model]} parameters ÷ 98% network's", values, 1.0, strict=True)


def _iterative_time(evidence: pd.DataFrame) -> pd.Series:
    def seconds(strategy: str) -> pd.Series:
        return per_setting(_l1(strategy).rows(evidence), "compress_s", SIZED_SETTING)
    return ratio(seconds("II"), seconds("I"))


for _claim in (
    Claim("prune_memory_15x", "pruning", "pruning reduces memory up to 15x",
          "§4.2: “It can be seen that by using network pruning, the memory size can be reduced by up "
          "to 15x”", "the full CNN2D and its 98% pruned networks",
          f"serialized size of CNN2D ÷ that of the 98% pruned network, per scene and split; holds "
          f"from ×{FIFTEEN_X:g} (15 when rounded) in every setting",
          pooled(Measurement("memory reduction", _memory_15x, FIFTEEN_X))),
    Claim("prune_98_smaller_than_spectral", "pruning", "the 98% CNN2D is smaller than MLP and CNN1D",
          "§4.2: “We can even build a smaller CNN2D network than MLP and CNN1D, with a pruning ratio "
          "of 98%”", "Indian Pines (Table 4 counts its networks): the 98% network, MLP, CNN1D",
          "parameters (the paper's count) of MLP and of CNN1D ÷ those of the 98% network, Indian "
          "Pines; holds when both exceed ×1 in every split",
          lambda evidence: {TITLES[m]: _smaller_than(m) for m in ("mlp", "cnn1d")}),
    Claim("prune_beats_scratch", "pruning", "pruning outperforms training from scratch",
          "§4.2: “It can be seen the network pruning results outperform the scratch training "
          "baseline”", "one-shot pruned CNN2D (every criterion run) and Scratch, at each size",
          _rule("pruned (criteria averaged) − Scratch", MARGIN, BY_SIZE) + "; both trained for the "
          "same maximum epochs", pooled(Comparison(PRUNED_I, SCRATCH, MARGIN, matched_budgets=True))),
    Claim("prune_98_beats_spectral", "pruning", "the 98% network beats MLP and CNN-1D",
          "§4.2: “The model using a pruning ratio of 98% performs better than MLP and CNN-1D, even "
          "though it consumes less memory than MLP and CNN-1D”",
          "one-shot 98% pruned CNN2D (criteria averaged), MLP, CNN1D",
          _rule("98% pruned − MLP and − CNN1D", MARGIN, BY_SETTING) + "; both must hold",
          lambda evidence: {TITLES[m]: Comparison(Arm("98% pruned", PRUNED | {"ratio": "98%"}),
                                                  _baseline(m), MARGIN) for m in ("mlp", "cnn1d")}),
    Claim("prune_iterative_best", "pruning", "iterative fine-tuning (strategy II) is the best",
          "§4.2: “It can be seen that if we prune the model layer by layer and retrain it iteratively, "
          "the model performance shows the best”", "L1-norm pruning of CNN2D (Table 9)",
          _rule("strategy II − I and II − III", MARGIN, BY_SIZE) + "; both must hold; the strategies "
          "trained for the same maximum epochs",
          lambda evidence: {f"II vs {s}": Comparison(_l1("II"), _l1(s), MARGIN, matched_budgets=True)
                            for s in ("I", "III")}),
    Claim("prune_iterative_slow", "pruning", "iterative fine-tuning is time-consuming",
          "§4.2: “However, this strategy is time-consuming when a deep model with a large number of "
          "layers is fine-tuned”", "L1-norm pruning of CNN2D, strategies I and II",
          f"time to prune and fine-tune with strategy II ÷ with strategy I, per scene, split and "
          f"size; holds from ×{SLOWER:g} in every setting",
          pooled(Measurement("time, II ÷ I", _iterative_time, SLOWER))),
):
    register_claim(_claim)


# --------------------------------------------------------------------------
# §4.3, Table 2, §5: quantization, of the CNN2D Table 10 quantizes.
# --------------------------------------------------------------------------

FOUR_X = 3.5  # "up to 4x": 4 when rounded to a whole factor
QUANT_SCOPE = "int8 copies of CNN2D (c=40), the network of Table 10"


def _mode(mode: str | list[str], stage: str = "direct", value: str = "top1") -> Arm:
    title = (TITLES[mode] if isinstance(mode, str) else "int8") + ("'s float32 network" if value == "base_top1" else "")
    return Arm(title, {"family": "quantize", "model": "cnn2d", "arm": mode}, value=value, stage=stage)


def _factor(column: str, base_first: bool, mode: str | list[str], stage: str = "direct"
            ) -> Callable[[pd.DataFrame], pd.Series]:
    """Per setting: the base's ``column`` ÷ the int8 network's (``base_first``) or the reverse."""
    def values(evidence: pd.DataFrame) -> pd.Series:
        rows = _mode(mode, stage, column).rows(evidence)
        base, own = per_setting(rows, f"base_{column}"), per_setting(rows, column)
        return ratio(base, own) if base_first else ratio(own, base)
    return values


def _memory_factor(mode, stage: str = "direct") -> Callable[[pd.DataFrame], pd.Series]:
    return _factor("memory_mb", True, mode, stage)


def _speedup(mode, stage: str = "direct") -> Callable[[pd.DataFrame], pd.Series]:
    return _factor("latency_ms", True, mode, stage)


def _throughput(mode, stage: str = "direct") -> Callable[[pd.DataFrame], pd.Series]:
    return _factor("throughput_per_s", False, mode, stage)


def _best_of(factors: list[Callable[[pd.DataFrame], pd.Series]]) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda evidence: pd.concat([f(evidence) for f in factors], axis=1).max(axis=1)


MODES_RUN = ["dynamic", "static", "qat"]


def _static_fastest(evidence: pd.DataFrame) -> pd.Series:
    """Per setting: the faster of static and QAT (one integer network) ÷
    the fastest of dynamic and float32."""
    integer = _best_of([_speedup("static"), _speedup("qat")])(evidence)
    others = _speedup("dynamic")(evidence).reindex(integer.index).fillna(1.0).clip(lower=1.0)
    return ratio(integer, others)


QUOTE_43 = ("§4.3: “It is demonstrated that quantized models consume less memory with lower inference "
            "latency because of less expansive computations without significant loss in model "
            "performance”")
QUOTE_4X = "§4.3: “The memory can be reduced up to 4x, and the inference latency can also be optimized up to 4x”"

for _claim in (
    Claim("quant_less_memory", "quantization", "quantized models consume less memory", QUOTE_43,
          QUANT_SCOPE, "serialized size of float32 ÷ int8, per scene and split; every mode run must "
          "exceed ×1 in every setting",
          each(["quantize"], lambda m: Measurement("memory reduction", _memory_factor(m), 1.0, strict=True))),
    Claim("quant_lower_latency", "quantization", "quantized models have lower inference latency",
          QUOTE_43, QUANT_SCOPE, f"batch-1 latency of float32 ÷ int8 (measured in the same run), per "
          f"scene and split; every mode run must reach ×{FASTER:g} in every setting",
          each(["quantize"], lambda m: Measurement("speed-up at batch 1", _speedup(m), FASTER))),
    Claim("quant_no_loss", "quantization", "quantization costs no significant accuracy", QUOTE_43,
          QUANT_SCOPE, _rule("int8 − its float32 network's", -MARGIN, BY_SETTING) + "; every mode run",
          each(["quantize"], lambda m: Comparison(_mode(m), _mode(m, value="base_top1"), -MARGIN))),
    Claim("quant_qat_beats_static", "quantization", "QAT is more accurate than static quantization",
          "§4.3: “QAT achieves better accuracy than static quantization by updating the quantization "
          "parameters during training”", QUANT_SCOPE,
          _rule("QAT − static", MARGIN, BY_SETTING) + "; QAT's fine-tuning is extra training, so "
          "the two must have had the same epochs",
          pooled(Comparison(_mode("qat"), _mode("static"), MARGIN, matched_budgets=True))),
    Claim("quant_memory_4x", "quantization", "quantization reduces memory up to 4x", QUOTE_4X, QUANT_SCOPE,
          f"serialized size of float32 ÷ int8 with the best mode run, per scene and split; holds "
          f"from ×{FOUR_X:g} (4 when rounded) in every setting",
          pooled(Measurement("memory reduction, best mode", _best_of([_memory_factor(m) for m in MODES_RUN]),
                             FOUR_X))),
    Claim("quant_latency_4x", "quantization", "quantization reduces latency up to 4x", QUOTE_4X,
          QUANT_SCOPE, f"float32 ÷ int8 time at batch 1 or per sample at batch 1,000 (the paper's "
          f"batch is not stated), the best mode run, per scene and split; holds from ×{FOUR_X:g} in "
          "every setting",
          pooled(Measurement("speed-up, best mode and batch",
                             _best_of([f(m) for m in MODES_RUN for f in (_speedup, _throughput)]), FOUR_X))),
    Claim("quant_dynamic_fast", "quantization", "dynamic quantization is fast",
          "Table 2: “Dynamic Quantization | No Data | Fast | Smallest”", QUANT_SCOPE,
          f"batch-1 speed-up of dynamic int8 over float32, per scene and split; holds from "
          f"×{FASTER:g} in every setting",
          pooled(Measurement("speed-up at batch 1", _speedup("dynamic"), FASTER))),
    Claim("quant_static_fastest", "quantization", "static quantization (and QAT) is the fastest mode",
          "Table 2: “Static Quantization | Unlabeled data | Fastest | Small” and “Quantization Aware "
          "Training | Labeled data | Fastest | Smallest”", QUANT_SCOPE,
          "batch-1 speed-up of the faster of static and QAT (the same integer network) ÷ that of "
          "dynamic (or float32, where faster), per scene and split; holds from ×1 in every setting",
          pooled(Measurement("static or QAT ÷ the next fastest", _static_fastest, 1.0))),
    Claim("quant_loss_order", "quantization", "static quantization loses more accuracy than dynamic and QAT",
          "Table 2's accuracy-loss column: “Smallest” (dynamic, QAT), “Small” (static)", QUANT_SCOPE,
          _rule("dynamic − static and QAT − static", MARGIN, BY_SETTING) + "; both must hold; QAT "
          "and static must have had the same epochs",
          lambda evidence: {"dynamic vs static": Comparison(_mode("dynamic"), _mode("static"), MARGIN),
                            "QAT vs static": Comparison(_mode("qat"), _mode("static"), MARGIN,
                                                        matched_budgets=True)}),
    Claim("quant_efficient", "quantization", "quantization is memory and computationally efficient",
          "§5: “Quantization successfully reduces the bit width of network weights, which makes it "
          "both memory and computationally efficient”",
          "static int8 CNN2D (c=40), whose every layer is integer",
          f"float32 ÷ int8 serialized size (above ×1) and time per sample at batch 1,000 (from "
          f"×{FASTER:g}), per scene and split; both in every setting",
          lambda evidence: {"memory": Measurement("memory reduction", _memory_factor("static"), 1.0, strict=True),
                            "computation": Measurement("speed-up at batch 1,000", _throughput("static"),
                                                       FASTER)}),
):
    register_claim(_claim)


# --------------------------------------------------------------------------
# §4.4, Tables 11-13: distillation into Table 5's CNN2D students.
# --------------------------------------------------------------------------

KD_SCOPE = "students of Table 5's sizes (networks larger than Table 5's, as SimKD's, left out)"
TEACHER = CNN2D
QUOTE_MOST = "§4.4: “It is shown that most online and self-KD methods outperform the baseline and scratch accuracy”"


def _students(families: list[str], title: str, arm: str | None = None) -> Arm:
    where = {"family": families, "model": "cnn2d", "oversized": False} | ({"arm": arm} if arm else {})
    return Arm(title, where, SIZED_SETTING)


def _teacher_free(evidence: pd.DataFrame) -> pd.Series:
    """Per setting: the fewest parameters any offline run held in training ÷
    the most any online or self run held."""
    held = evidence[evidence["stage"] == "direct"]
    offline = held[held["family"] == "offline"].groupby(list(SIZED_SETTING))["held_params"].min()
    others = held[held["family"].isin(["online", "self"])].groupby(list(SIZED_SETTING))["held_params"].max()
    return ratio(offline, others)


for _claim in (
    Claim("kd_offline_keeps_accuracy", "distillation", "offline distillation keeps the teacher's accuracy",
          "§4.4: “It can be observed that offline distillation methods successfully reduce the number of "
          "parameters while maintaining or even improving the model performance”",
          KD_SCOPE + " and their CNN2D teacher",
          _rule("offline students (averaged) − teacher", -MARGIN, BY_SETTING + " (sizes averaged: "
                "one teacher serves every size)"),
          pooled(Comparison(_students(["offline"], "offline students"), TEACHER, -MARGIN))),
    Claim("kd_online_self_beat_scratch", "distillation", "most online and self methods beat Scratch",
          QUOTE_MOST, KD_SCOPE + " and Scratch networks of the same size",
          _rule("each method − Scratch", MARGIN, BY_SIZE) + "; more than half of the methods run "
          "must hold; same maximum epochs", need="most",
          members=each(["online", "self"], lambda m: Comparison(
              _students(["online", "self"], TITLES[m], m), SCRATCH, MARGIN, matched_budgets=True))),
    Claim("kd_online_self_beat_baseline", "distillation", "most online and self methods beat the baseline",
          QUOTE_MOST, KD_SCOPE + " and the full CNN2D (the baseline they compress)",
          _rule("each method − CNN2D", MARGIN, BY_SETTING + " (sizes averaged)") + "; more than half "
          "of the methods run must hold", need="most",
          members=each(["online", "self"], lambda m: Comparison(
              _students(["online", "self"], TITLES[m], m), TEACHER, MARGIN))),
    Claim("kd_okddip_ddgsd_best", "distillation", "OKDDip and DDGSD are the best online and self methods",
          "§4.4: “Specifically, two more recent works, OKDDip and DDGSD show the best overall "
          "performance”", "online and self students (the sentence's subject)",
          "ranks by mean top-1 over scenes, splits and sizes among the online and self methods run: "
          "both 95% bootstrap rank intervals must lie within ranks 1-2",
          pooled(Ranking(_students(["online", "self"], "online and self students"), ("okddip", "ddgsd"),
                         best=2, titles=TITLES))),
    Claim("kd_offline_best_family", "distillation", "offline beats online and self distillation",
          "§4.4: “Compared with the three offline KD tables, it can be seen that offline distillation "
          "approaches achieve an overall better performance than online and self-distillation”; §5: "
          "“Offline KD methods perform better than online and self-distillation methods”", KD_SCOPE,
          _rule("offline − online and offline − self (family means)", MARGIN, BY_SIZE) + "; both must "
          "hold; same maximum epochs",
          lambda evidence: {f"vs {f}": Comparison(_students(["offline"], "offline"), _students([f], f),
                                                  MARGIN, matched_budgets=True) for f in ("online", "self")}),
    Claim("kd_teacher_free_memory", "distillation", "online and self distillation need less memory",
          "§4.4: “However, online and self-distillation methods consume less memory since no strong "
          "teacher network is required”", "distillation runs of every family",
          "parameters held in training (teachers included): the least of any offline method ÷ the "
          "most of any online or self method, per scene, split and size; above ×1 in every setting",
          pooled(Measurement("training parameters, offline ÷ online and self", _teacher_free, 1.0, strict=True))),
):
    register_claim(_claim)


# --------------------------------------------------------------------------
# §5 and pipelines: across families.
# --------------------------------------------------------------------------

def _int8_against_base() -> Comparison:
    return Comparison(_mode(MODES_RUN), _mode(MODES_RUN, value="base_top1"), -MARGIN)


for _claim in (
    Claim("compression_keeps_accuracy", "discussion", "compression keeps accuracy",
          "§5: “The results show that network compression successfully reduces the model size and "
          "memory without significant classification loss”",
          "one-shot pruned networks, students and int8 networks of CNN2D, each family averaged",
          _rule("each family's mean − the full CNN2D", -MARGIN, BY_SETTING + " (sizes averaged)")
          + "; pruning, distillation and quantization must each hold (no network picked on test "
          "accuracy)",
          lambda evidence: {
              "pruning": Comparison(PRUNED_I, CNN2D, -MARGIN),
              "distillation": Comparison(_students(STUDENT_FAMILIES, "students"), CNN2D, -MARGIN),
              "quantization": _int8_against_base()}),
    Claim("kd_beats_pruning", "discussion", "distillation beats pruning",
          "§5: “Specifically, knowledge distillation methods perform better than benchmark pruning "
          "methods”", "students (all methods) and one-shot pruned networks (all criteria) of each size",
          _rule("students − pruned (methods and criteria averaged)", MARGIN, BY_SIZE) + "; same maximum "
          "epochs. Shown beside it: the two terms it decomposes into",
          pooled(Comparison(_students(STUDENT_FAMILIES, "students"), PRUNED_I, MARGIN, matched_budgets=True)),
          parts=lambda evidence: {
              "students − Scratch": Comparison(_students(STUDENT_FAMILIES, "students"), SCRATCH, MARGIN),
              "Scratch − pruned": Comparison(SCRATCH, PRUNED_I, MARGIN)}),
    Claim("quant_combines", "discussion", "quantization combines with other compression",
          "§4.3: “Quantization techniques can be easily combined with other network compression "
          "methods to reduce the computation and memory costs further”",
          "int8 networks quantized from pruned or distilled ones (the pipelines)",
          f"the stage before ÷ its int8 copy: serialized size (above ×1) and time per sample at batch "
          f"1,000 (from ×{FASTER:g}), per scene and split; both in every setting",
          lambda evidence: {
              "memory": Measurement("memory reduction", _memory_factor(MODES_RUN, "pipeline"), 1.0, strict=True),
              "computation": Measurement("speed-up at batch 1,000", _throughput(MODES_RUN, "pipeline"),
                                         FASTER)}),
):
    register_claim(_claim)
