"""The claims ledger: every verdict of its vocabulary comes out where the
evidence calls for it, each claim is about its own networks only, and a
chapter's verdicts are the whole ledger's."""

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hsilib.claims import (CHAPTERS, CLAIMS, MARGIN, VERDICTS, check_claims, claims_ledger, evidence_frame,
                           ledger_summary, paper_evidence)
from hsilib.claims.catalog import Claim
from hsilib.claims.evidence import COLUMNS
from hsilib.claims.rules import Comparison, Measurement, Outcome, Ranking, combine
from hsilib.claims.stats import estimate

SCENES, SPLITS, SIZES = ("indian_pines", "pavia_university"), ("disjoint", "random"), ("90%", "95%", "98%")
DEFAULTS = {"key": "", "model": "cnn2d", "ratio": "", "strategy": "", "stage": "direct", "data_source": "real",
            "converged": True, "budget": 20, "oversized": False}


def frame(rows: list[dict]) -> pd.DataFrame:
    """Evidence rows as evidence_frame gives them (absent numbers NaN)."""
    return pd.DataFrame([{**DEFAULTS, **row} for row in rows]).reindex(columns=COLUMNS)


def verdict(chapter, evidence, statement):
    return check_claims(chapter, evidence).loc[statement, ["verdict", "reason", "ours"]]


# --------------------------------------------------------------------------
# Pruning against Scratch: each verdict of the vocabulary.
# --------------------------------------------------------------------------

BEATS_SCRATCH = "pruning outperforms training from scratch"


def pruned_and_scratch(gain, seeds=(0, 1, 2), prune_budget=20, scratch_budget=20, unconverged=0, noise=0.3):
    """Scratch and one-shot pruned networks (two criteria) at every scene,
    split and size; pruned = Scratch + ``gain`` + noise."""
    rng = np.random.default_rng(7)
    rows = []
    for (scene, split, size), seed in itertools.product(itertools.product(SCENES, SPLITS, SIZES), seeds):
        common = {"scene": scene, "split": split, "ratio": size, "seed": seed}
        scratch = 80 + 5 * rng.normal() + noise * rng.normal()
        rows.append({**common, "family": "scratch", "arm": "scratch", "top1": scratch,
                     "budget": scratch_budget, "converged": len(rows) >= unconverged})
        for criterion in ("l1", "thinet"):
            rows.append({**common, "family": "prune", "arm": criterion, "strategy": "I",
                         "top1": scratch + gain + noise * rng.normal(), "budget": prune_budget})
    return frame(rows)


def test_holds_when_the_interval_clears_the_margin():
    got = verdict("pruning", pruned_and_scratch(gain=2.0), BEATS_SCRATCH)
    assert got["verdict"] == "holds", got.to_dict()
    assert "12 setting(s) × 3 seed(s)" in got["ours"] and "Holm" in got["ours"]


def test_fails_when_the_interval_lies_beyond_the_margin_the_other_way():
    assert verdict("pruning", pruned_and_scratch(gain=-2.0), BEATS_SCRATCH)["verdict"] == "fails"
    # Better, but by less than the practical margin: not what "outperforms" claims.
    assert verdict("pruning", pruned_and_scratch(gain=MARGIN / 5, noise=0.05), BEATS_SCRATCH)["verdict"] == "fails"


def test_inconclusive_when_the_interval_straddles_the_margin():
    got = verdict("pruning", pruned_and_scratch(gain=MARGIN, noise=2.0), BEATS_SCRATCH)
    assert got["verdict"] == "inconclusive", got.to_dict()


def test_one_seed_is_indicative_however_clear_the_difference():
    got = verdict("pruning", pruned_and_scratch(gain=5.0, seeds=(0,)), BEATS_SCRATCH)
    assert got["verdict"] == "indicative" and "1 seed(s)" in got["reason"]
    assert "+5.0" in got["ours"]  # computed and shown


def test_unequal_budgets_are_not_testable_here():
    got = verdict("pruning", pruned_and_scratch(gain=2.0, prune_budget=10), BEATS_SCRATCH)
    assert got["verdict"] == "not testable here"
    assert "training budgets differ" in got["reason"] and "at most 10" in got["reason"]


def test_an_arm_that_did_not_converge_is_not_testable_here():
    got = verdict("pruning", pruned_and_scratch(gain=2.0, unconverged=1), BEATS_SCRATCH)
    assert got["verdict"] == "not testable here"
    assert "Scratch did not converge in 1 of 36 runs" in got["reason"]


def test_fewer_settings_than_the_minimum_are_not_testable_here():
    evidence = pruned_and_scratch(gain=2.0)
    evidence = evidence[(evidence["scene"] == "indian_pines") & (evidence["ratio"] == "90%")]
    got = verdict("pruning", evidence, BEATS_SCRATCH)
    assert got["verdict"] == "not testable here" and "2 paired setting(s), fewer than 3" in got["reason"]


def test_each_scratch_run_counts_once_however_many_criteria_share_it():
    """Criteria are averaged within a setting and seed, then seeds within a
    setting, before the interval: 12 settings, not 12 x criteria x seeds pairs."""
    evidence = pruned_and_scratch(gain=1.0, noise=1.0)
    evidence = pd.concat([evidence, evidence[evidence["arm"] == "l1"].assign(arm="sfp", top1=lambda f: f["top1"] - 1)])
    setting = ["scene", "split", "ratio"]
    pruned = evidence[evidence["family"] == "prune"].groupby([*setting, "seed"])["top1"].mean()
    scratch = evidence[evidence["family"] == "scratch"].groupby([*setting, "seed"])["top1"].mean()
    by_hand = (pruned - scratch).groupby(level=setting).mean()
    expected = estimate(by_hand.to_numpy(), MARGIN)
    got = verdict("pruning", evidence, BEATS_SCRATCH)
    assert len(by_hand) == 12 and got["ours"].startswith(expected.text(" points") + ", 12 setting(s)")


def test_accuracy_verdicts_on_the_twin_say_so():
    got = verdict("pruning", pruned_and_scratch(gain=2.0).assign(data_source="twin"), BEATS_SCRATCH)
    assert got["verdict"] == "holds" and "twin" in got["reason"]


# --------------------------------------------------------------------------
# Quantization: the claims are about CNN2D; the chapters agree.
# --------------------------------------------------------------------------

def quantized(cnn2d_factor=3.9, others_factor=3.0, change=0.0, seeds=(0, 1, 2), qat_budget=10):
    """int8 copies of CNN2D, MLP and CNN1D beside their float32 networks."""
    rng = np.random.default_rng(3)
    rows = []
    for scene, split, seed in itertools.product(SCENES, SPLITS, seeds):
        for model, factor in (("cnn2d", cnn2d_factor), ("mlp", others_factor), ("cnn1d", others_factor)):
            base = 85 + rng.normal()
            for mode, speed in (("dynamic", 1.0), ("static", 2.0), ("qat", 2.0)):
                rows.append({"family": "quantize", "arm": mode, "model": model, "scene": scene, "split": split,
                             "seed": seed, "top1": base + change + 0.05 * rng.normal(), "base_top1": base,
                             "memory_mb": 1.7 / (factor if mode != "dynamic" else 1.8), "base_memory_mb": 1.7,
                             "latency_ms": 3.0 / speed, "base_latency_ms": 3.0,
                             "throughput_per_s": 1000 * speed, "base_throughput_per_s": 1000.0,
                             "budget": qat_budget if mode == "qat" else 0,
                             "converged": True if mode == "qat" else None})
    return frame(rows)


def test_the_memory_claim_is_about_cnn2d_only():
    assert verdict("quantization", quantized(), "quantization reduces memory up to 4x")["verdict"] == "holds"
    small = verdict("quantization", quantized(cnn2d_factor=3.0, others_factor=3.9),
                    "quantization reduces memory up to 4x")
    assert small["verdict"] == "fails" and "×3.00" in small["ours"]


def test_no_significant_loss_holds_within_the_margin_and_fails_beyond_it():
    statement = "quantization costs no significant accuracy"
    assert verdict("quantization", quantized(change=-0.1), statement)["verdict"] == "holds"
    assert verdict("quantization", quantized(change=-2.0), statement)["verdict"] == "fails"


def test_qat_against_static_is_not_testable_while_only_qat_trains():
    got = verdict("quantization", quantized(), "QAT is more accurate than static quantization")
    assert got["verdict"] == "not testable here" and "QAT at most 10" in got["reason"]


def test_an_unconverged_qat_run_makes_its_accuracy_change_not_testable():
    evidence = quantized()
    evidence.loc[evidence["arm"] == "qat", "converged"] = False
    got = verdict("quantization", evidence, "quantization costs no significant accuracy")
    assert got["verdict"] == "not testable here"
    assert got["reason"] == "QAT: QAT did not converge in 12 of 12 runs"  # its float32 network's rows are the same runs


def other_chapters(seeds=(0, 1, 2)):
    """Pruning runs whose tests sit at their threshold (p-values spread over
    0-1): a correction over the whole ledger would make the quantization
    tests stricter."""
    rows = []
    rng = np.random.default_rng(5)
    for (scene, split, size), seed in itertools.product(itertools.product(SCENES, SPLITS, SIZES), seeds):
        common = {"scene": scene, "split": split, "seed": seed, "ratio": size}
        scratch = 80 + rng.normal()
        rows.append({**common, "family": "scratch", "arm": "scratch", "top1": scratch})
        for criterion, strategy in itertools.product(("l1", "thinet"), ("I", "II", "III")):
            rows.append({**common, "family": "prune", "arm": criterion, "strategy": strategy,
                         "top1": scratch + MARGIN + rng.normal()})
    return frame(rows)


def test_the_quantization_chapter_and_the_discussion_give_the_same_verdicts():
    # Dynamic quantization's accuracy change is decided by a correction over
    # the chapter's tests, and would not be over the whole ledger's.
    chapter = quantized(change=-0.1)
    dynamic = chapter["arm"] == "dynamic"
    chapter.loc[dynamic, "top1"] += np.random.default_rng(10).normal(scale=0.45, size=int(dynamic.sum()))
    alone = check_claims("quantization", chapter)
    assert alone.loc["quantization costs no significant accuracy", "verdict"] == "holds"
    ledger = claims_ledger(pd.concat([chapter, other_chapters()], ignore_index=True))
    assert ledger.loc[alone.index, ["verdict", "reason", "ours"]].equals(alone[["verdict", "reason", "ours"]])
    assert set(ledger["chapter"]) == set(CHAPTERS)


# --------------------------------------------------------------------------
# Distillation and ranks.
# --------------------------------------------------------------------------

def students(bonus=5.0, seeds=(0, 1, 2)):
    from hsilib.compress.distill import DISTILLERS

    rng = np.random.default_rng(11)
    rows = []
    for (scene, split, size), seed in itertools.product(itertools.product(SCENES, SPLITS, SIZES), seeds):
        common = {"scene": scene, "split": split, "seed": seed, "ratio": size}
        rows.append({**common, "family": "scratch", "arm": "scratch", "top1": 80 + rng.normal()})
        for name, cls in DISTILLERS.items():
            extra = bonus if name in ("okddip", "ddgsd") else 0.0
            rows.append({**common, "family": cls.family, "arm": name, "top1": 81 + extra + rng.normal(),
                         "params": 16_041 if name == "simkd" else 8_951, "held_params": 5e5 if
                         cls.family == "offline" else 2e4, "oversized": name == "simkd"})
    return frame(rows)


def test_ranks_with_bootstrap_intervals_decide_the_best_methods():
    statement = "OKDDip and DDGSD are the best online and self methods"
    got = verdict("distillation", students(bonus=5.0), statement)
    assert got["verdict"] == "holds" and re.search(r"OKDDip rank [12] \[1, 2\], DDGSD rank [12] \[1, 2\]", got["ours"])
    assert verdict("distillation", students(bonus=-5.0), statement)["verdict"] == "fails"
    assert verdict("distillation", students(bonus=5.0, seeds=(0,)), statement)["verdict"] == "indicative"


def test_most_needs_more_than_half_and_all_needs_every_member():
    outcome = {v: Outcome(v, "", "") for v in VERDICTS}
    assert combine({"a": outcome["holds"], "b": outcome["holds"], "c": outcome["fails"]}, "most")[0] == "holds"
    assert combine({"a": outcome["holds"], "b": outcome["fails"]}, "most")[0] == "fails"
    assert combine({"a": outcome["holds"], "b": outcome["fails"]}, "all")[0] == "fails"
    assert combine({"a": outcome["holds"], "b": outcome["indicative"]}, "all")[0] == "indicative"
    assert combine({"a": outcome["holds"], "b": outcome["not testable here"]}, "all")[0] == "not testable here"
    assert combine({"a": outcome["holds"], "b": outcome["inconclusive"]}, "all")[0] == "inconclusive"


def test_students_larger_than_table_5s_network_are_left_out():
    def offline_minus_online(evidence):
        text = check_claims("distillation", evidence).loc["offline beats online and self distillation", "ours"]
        return float(re.search(r"vs online: ([+-][0-9.]+)", text).group(1))

    evidence = students(bonus=0.0)
    evidence.loc[evidence["arm"] == "simkd", "top1"] = 10.0  # a larger network, and a bad one
    assert abs(offline_minus_online(evidence)) < 1.0
    assert offline_minus_online(evidence.assign(oversized=False)) < -8.0


# --------------------------------------------------------------------------
# The catalog, the paper under the same rule, records.
# --------------------------------------------------------------------------

def test_every_claim_names_its_sentence_scope_and_rule():
    assert len(CLAIMS) >= 22
    for claim in CLAIMS.values():
        assert claim.chapter in CHAPTERS
        assert claim.source.startswith(("§", "Table")) and "“" in claim.source, claim.name
        assert claim.scope and claim.rule and claim.need in ("all", "most")


def test_the_paper_is_judged_by_the_same_rule_on_its_own_tables():
    ledger = claims_ledger(frame([]))
    assert ledger["verdict"].eq("not testable here").all()
    assert ledger["paper_verdict"].isin(VERDICTS).all()
    # One run a cell: no accuracy claim of the paper can be decided.
    accuracy = [c.name for c in CLAIMS.values()
                if any(isinstance(t, (Comparison, Ranking)) for t in c.members(paper_evidence()).values())]
    decided = ledger.set_index("name").loc[accuracy, "paper_verdict"]
    assert decided.isin(["indicative", "not testable here"]).all(), decided.to_dict()
    # Sizes are measurements: Table 4's 1.71 MB ÷ 0.12 MB is ×14.25, not 15 when rounded.
    row = ledger.set_index("name").loc["prune_memory_15x"]
    assert row["paper_verdict"] == "fails" and "×14.25" in row["paper"]


def test_the_summary_counts_each_column_of_the_ledger_by_verdict():
    ledger = pd.DataFrame({"verdict": ["holds", "holds", "fails", "not testable here"],
                           "paper_verdict": ["indicative", "holds", "indicative", "indicative"]})
    summary = ledger_summary(ledger)
    assert summary["n_claims"] == 4
    assert (summary["n_holds"], summary["n_fails"], summary["n_not_testable_here"], summary["n_inconclusive"]) == \
        (2, 1, 1, 0)
    assert (summary["n_paper_indicative"], summary["n_paper_holds"], summary["n_paper_fails"]) == (3, 1, 0)
    assert summary["verdict_counts"] == "holds 2, fails 1, not testable here 1"
    assert summary["margin"] == f"{MARGIN:g}"


def test_paper_evidence_holds_the_published_numbers():
    paper = paper_evidence()
    static = paper[(paper["family"] == "quantize") & (paper["arm"] == "static")]
    assert static["memory_mb"].eq(0.44).all() and static["base_memory_mb"].eq(1.71).all()
    assert len(paper[paper["family"].isin(["offline", "online", "self"])]) == 14 * 12
    l1 = paper[(paper["arm"] == "l1")]
    assert sorted(l1["strategy"].unique()) == ["I", "II", "III"] and len(l1) == 3 * 12
    assert paper["converged"].isna().all() and paper["budget"].isna().all() and paper["seed"].eq(0).all()


def record(key, kind, config, **fields):
    metrics = {"top1": 0.8, "top5": 0.9, "oa": 0.8, "aa": 0.7, "kappa": 0.7}
    measure = {"params": 100, "memory_mb_serialized": 1.0, "latency_ms_median": 1.0, "throughput_per_s": 10.0}
    return {"key": key, "kind": kind, "config": config, "metrics": metrics, "measure": measure,
            "data_source": "real", "wall_s": 1.0, "convergence": None, **fields}


def test_evidence_from_records_names_each_network_and_its_budget():
    base = {"scene": "indian_pines", "split": "disjoint", "model": "cnn2d", "seed": 0, "epochs": 20,
            "widths": None, "pca_fit": "train", "train_fraction": None}
    trained = {"converged": True, "max_epochs": 20, "epochs_run": 9}
    records = [
        record("b", "train", base, convergence=trained),
        record("s", "train", {**base, "widths": [15, 30, 30]}, convergence=trained),
        record("p", "prune", {"base": base}, method="sfp", ratio="90%", strategy="I",
               convergence={"converged": False, "max_epochs": 10}),
        record("d", "distill", {"base": base, "start": None}, method="dml", family="online", student="90%",
               training_params=2000, teacher_params=0, convergence=trained),
        record("q", "quantize", {"base": {"base": base}}, method="static", base_key="p",
               base_metrics={"top1": 0.9}, base_measure={"memory_mb_serialized": 4.0, "latency_ms_median": 2.0,
                                                         "throughput_per_s": 5.0}),
        record("leak", "train", {**base, "pca_fit": "image"}),
        record("ksc", "train", {**base, "scene": "ksc"}),
        record("teacher2", "train", {**base, "init_seed": 1}),  # a multi-teacher method's extra teacher
    ]
    evidence = evidence_frame(records).set_index("key")
    assert list(evidence.index) == ["b", "s", "p", "d", "q"]  # other protocols and scenes left out
    assert evidence.loc["s", ["family", "ratio"]].tolist() == ["scratch", "90%"]
    assert evidence.loc["p", ["family", "arm", "budget", "converged"]].tolist() == ["prune", "sfp", 10, False]
    assert evidence.loc["q", ["stage", "budget", "base_top1"]].tolist() == ["pipeline", 0, 90.0]
    assert evidence.loc["d", "held_params"] == 2000 and evidence.loc["b", "top1"] == 80.0


def test_unknown_chapter_is_a_clear_error():
    with pytest.raises(ValueError, match="no claims for chapter.*'poetry'.*quantization"):
        check_claims("poetry", frame([]))


def test_a_claim_without_a_runnable_member_is_not_testable():
    claim = Claim("x", "pruning", "x", "§4.2: “x”", "x", "x", members=lambda evidence: {})
    assert claim.members(frame([])) == {}
    measured = Measurement("size", lambda evidence: pd.Series(dtype=float), 1.0).evaluate(frame([]))
    assert measured.verdict == "not testable here" and "no measurement of size" in measured.reason


def test_the_caption_names_the_profile_the_seeds_and_each_arms_epochs():
    from hsilib.book import notebook_defaults
    from hsilib.claims import ledger_caption, run_profile
    from hsilib.profiles import profile_parameters

    defaults = notebook_defaults("05_quantization")
    assert run_profile("05_quantization", defaults) == "smoke"
    quick = {**defaults, **profile_parameters("quick", "05_quantization")}
    assert run_profile("05_quantization", quick) == "quick"
    assert run_profile("05_quantization", {**quick, "qat_epochs": 99}) == "custom"
    text = ledger_caption(quantized(seeds=(0, 1)), "quick")
    assert text.startswith("Profile quick; 2 seed(s) (0, 1)")
    assert "QAT 10" in text and "no training: dynamic, static" in text


def test_every_quoted_sentence_is_the_papers_own():
    paper_dir = Path(__file__).resolve().parents[2] / "shared" / "paper"
    texts = list(paper_dir.glob("*.txt"))
    if not texts:
        pytest.skip(f"the paper's text is not beside this clone ({paper_dir})")
    paper = re.sub(r"\s+", " ", texts[0].read_text())
    for claim in CLAIMS.values():
        quotes = re.findall(r"“(.*?)”", claim.source)
        assert quotes, claim.name
        for quote in quotes:
            assert re.sub(r"\s+", " ", quote) in paper, (claim.name, quote)


def test_pruning_claims_are_about_cnn2d_only():
    evidence = pruned_and_scratch(gain=2.0)
    other = evidence.assign(model="mlp", top1=0.0)  # the same recipe on another network
    assert verdict("pruning", pd.concat([evidence, other]), BEATS_SCRATCH).equals(
        verdict("pruning", evidence, BEATS_SCRATCH))
