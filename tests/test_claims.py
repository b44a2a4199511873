"""The paper's claims as data: verdicts follow the evidence, both ways."""

import itertools

import numpy as np
import pandas as pd
import pytest

from hsilib.claims import CLAIMS, Verdict, check_claims, paired_verdict


def test_paired_verdict_holds_fails_or_cannot_tell():
    assert paired_verdict([0.5, 0.7, 0.6, 0.4])[0] == "holds"
    assert paired_verdict([-0.5, -0.7, -0.6, -0.4])[0] == "fails"
    assert paired_verdict([0.5, -0.7, 0.6, -0.4])[0] == "inconclusive"
    verdict, summary = paired_verdict([1.0, 2.0])
    assert verdict == "inconclusive" and "too few" in summary
    assert paired_verdict([0.3, 0.3, 0.3])[0] == "holds"  # no spread, all positive
    assert paired_verdict([0.0, 0.0, 0.0])[0] == "inconclusive"
    with pytest.raises(ValueError, match="unknown verdict 'maybe'"):
        Verdict("maybe", "", "")


def quantized_frame(static_size=0.25, static_speedup=4.0, dynamic_speedup=1.2, qat_minus_static=0.5,
                    change=0.0):
    rows = []
    for scene in ("indian_pines", "pavia_university"):
        for split in ("disjoint", "random"):
            for seed in (0, 1):
                common = {"model": "cnn2d", "scene": scene, "split": split, "seed": seed}
                rows += [
                    {**common, "method": "dynamic", "size_ratio": 0.6, "latency_speedup": dynamic_speedup,
                     "throughput_ratio": 1.0, "top1": 90.0, "top1_change": change},
                    {**common, "method": "static", "size_ratio": static_size,
                     "latency_speedup": static_speedup, "throughput_ratio": 2.0, "top1": 90.0,
                     "top1_change": change},
                    {**common, "method": "qat", "size_ratio": static_size,
                     "latency_speedup": static_speedup * 0.99, "throughput_ratio": 2.0,
                     "top1": 90.0 + qat_minus_static + 0.1 * seed, "top1_change": change}]
    return pd.DataFrame(rows)


def verdicts(frame):
    return check_claims("quantization", frame)["verdict"].to_dict()


def test_quantization_claims_hold_on_evidence_that_supports_them():
    got = verdicts(quantized_frame())
    assert set(got.values()) == {"holds"}, got
    assert len(got) == sum(c.chapter == "quantization" for c in CLAIMS.values())


def test_quantization_claims_fail_on_evidence_against_them():
    got = verdicts(quantized_frame(static_size=0.5, static_speedup=0.9, dynamic_speedup=1.0,
                                   qat_minus_static=-0.5, change=-2.0))
    assert got == {"memory reduced up to 4x": "fails", "inference latency reduced up to 4x": "fails",
                   "dynamic quantization is fast": "fails",
                   "static quantization is the fastest mode": "fails",
                   "QAT is more accurate than static quantization": "fails",
                   "no significant loss of accuracy": "fails"}


def test_a_claim_within_seed_noise_is_inconclusive():
    frame = quantized_frame(qat_minus_static=0.0)
    noise = np.random.default_rng(0).normal(scale=0.5, size=(frame["method"] == "qat").sum())
    frame.loc[frame["method"] == "qat", "top1"] += noise - noise.mean()
    assert verdicts(frame)["QAT is more accurate than static quantization"] == "inconclusive"


def test_unknown_chapter_is_a_clear_error():
    with pytest.raises(ValueError, match="no claims registered for chapter 'poetry'.*quantization"):
        check_claims("poetry", quantized_frame())


def pruning_frame(prune_gain=2.0, ii_gain=1.0, small_gain=1.0, base_mb=1.7, small_mb=0.04):
    """Rows as hsilib.report.pruning.pruning_frame gives them: baselines,
    Scratch and L1/ThiNet with three strategies, over 2 scenes x 2 splits x 2 seeds."""
    rows = []
    rng = np.random.default_rng(0)
    for scene, split, seed in itertools.product(("indian_pines", "pavia_university"),
                                                ("disjoint", "random"), (0, 1)):
        common = {"scene": scene, "split": split, "seed": seed}
        rows += [{**common, "label": "mlp", "group": "baseline", "ratio": "", "strategy": "",
                  "top1": 80.0, "memory_mb": 0.13},
                 {**common, "label": "cnn1d", "group": "baseline", "ratio": "", "strategy": "",
                  "top1": 81.0, "memory_mb": 0.29},
                 {**common, "label": "cnn2d", "group": "baseline", "ratio": "", "strategy": "",
                  "top1": 85.0, "memory_mb": base_mb}]
        for ratio in ("90%", "95%", "98%"):
            noise = rng.normal(scale=0.1)
            rows.append({**common, "label": "scratch", "group": "scratch", "ratio": ratio,
                         "strategy": "", "top1": 80.0 + noise, "memory_mb": small_mb})
            for label, strategy in itertools.product(("l1", "thinet"), ("I", "II", "III")):
                top1 = 80.0 + noise + prune_gain + (ii_gain if strategy == "II" else 0.0)
                if ratio == "98%":
                    top1 = 81.0 + small_gain + rng.normal(scale=0.1) + (ii_gain if strategy == "II" else 0)
                rows.append({**common, "label": label, "group": "prune", "ratio": ratio,
                             "strategy": strategy, "top1": top1, "memory_mb": small_mb})
    return pd.DataFrame(rows)


def test_pruning_claims_hold_on_evidence_that_supports_them():
    got = check_claims("pruning", pruning_frame())["verdict"].to_dict()
    assert set(got.values()) == {"holds"}, got


def test_pruning_claims_fail_on_evidence_against_them():
    got = check_claims("pruning", pruning_frame(prune_gain=-2.0, ii_gain=-1.0, small_gain=-3.0,
                                                small_mb=0.5))["verdict"].to_dict()
    assert got == {"memory reduced up to 15x": "fails",
                   "pruning outperforms training from scratch": "fails",
                   "the 98% network beats MLP and CNN-1D with less memory": "fails",
                   "iterative fine-tuning (II) is the best strategy": "fails"}


def test_a_small_network_that_is_not_smaller_than_the_spectral_ones_fails_that_claim():
    got = check_claims("pruning", pruning_frame(small_mb=0.2))["verdict"].to_dict()
    assert got["the 98% network beats MLP and CNN-1D with less memory"] == "fails"


def distillation_frame(offline=2.0, online=1.0, self_=0.5, okddip_bonus=3.0, held=(500_000, 100_000)):
    """Students of every family and their Scratch networks, 2 scenes x 2 splits x 3 seeds."""
    from hsilib.compress.distill import DISTILLERS

    rows = []
    rng = np.random.default_rng(1)
    gains = {"offline": offline, "online": online, "self": self_}
    for scene, split, seed in itertools.product(("indian_pines", "pavia_university"),
                                                ("disjoint", "random"), (0, 1, 2)):
        common = {"scene": scene, "split": split, "seed": seed, "ratio": "90%"}
        base = 80.0 + rng.normal(scale=0.2)
        rows.append({**common, "method": "Pruned CNN2D", "group": "scratch", "top1": base,
                     "held_params": np.nan})
        for cls in DISTILLERS.values():
            bonus = okddip_bonus if cls.title in ("OKDDip", "DDGSD") else 0.0
            rows.append({**common, "method": cls.title, "group": cls.family,
                         "top1": base + gains[cls.family] + bonus + rng.normal(scale=0.05),
                         "held_params": held[0] if cls.family == "offline" else held[1]})
    return pd.DataFrame(rows)


def test_distillation_claims_hold_on_evidence_that_supports_them():
    got = check_claims("distillation", distillation_frame(okddip_bonus=0.0, offline=3.0))["verdict"]
    assert got.to_dict() == {"offline > online > self distillation": "holds",
                             "OKDDip and DDGSD show the best overall performance": "fails",
                             "most online and self methods outperform Scratch": "holds",
                             "offline methods keep the accuracy with fewer parameters": "holds",
                             "online and self distillation need less memory (no teacher)": "holds"}
    assert check_claims("distillation", distillation_frame())["verdict"][
        "OKDDip and DDGSD show the best overall performance"] == "holds"


def test_distillation_claims_fail_on_evidence_against_them():
    got = check_claims("distillation", distillation_frame(offline=-2.0, online=-1.0, self_=1.0,
                                                          okddip_bonus=-5.0,
                                                          held=(50_000, 600_000)))["verdict"]
    assert set(got.to_dict().values()) == {"fails"}, got.to_dict()


def discussion_frame(distill_gain=1.0, best_change=0.0):
    """The full CNN2D, one-shot pruned networks and students of every family
    at 90%, 2 scenes x 2 splits x 2 seeds."""
    rows = []
    rng = np.random.default_rng(2)
    for scene, split, seed in itertools.product(("indian_pines", "pavia_university"),
                                                ("disjoint", "random"), (0, 1)):
        common = {"scene": scene, "split": split, "seed": seed}
        rows.append({**common, "label": "cnn2d", "group": "baseline", "ratio": "", "strategy": "",
                     "top1": 85.0})
        pruned = 85.0 + best_change + rng.normal(scale=0.05)
        rows.append({**common, "label": "l1", "group": "prune", "ratio": "90%", "strategy": "I",
                     "top1": pruned})
        for family in ("offline", "online", "self"):
            rows.append({**common, "label": family, "group": family, "ratio": "90%", "strategy": "",
                         "top1": pruned + distill_gain + rng.normal(scale=0.05)})
    return pd.DataFrame(rows)


def test_discussion_claims_hold_on_evidence_that_supports_them():
    got = check_claims("discussion", discussion_frame())["verdict"].to_dict()
    assert got == {"distillation performs better than pruning": "holds",
                   "compression reduces size without significant loss of accuracy": "holds"}


def test_discussion_claims_fail_on_evidence_against_them():
    got = check_claims("discussion", discussion_frame(distill_gain=-1.0, best_change=-5.0))["verdict"]
    assert set(got.to_dict().values()) == {"fails"}, got.to_dict()


def test_the_ledger_judges_every_claim_of_the_chapters_given():
    from hsilib.claims import claims_ledger

    ledger = claims_ledger({"pruning": pruning_frame(), "discussion": discussion_frame()})
    expected = {c.statement for c in CLAIMS.values() if c.chapter in ("pruning", "discussion")}
    assert set(ledger.index) == expected
    assert ledger["verdict"].isin(["holds", "fails", "inconclusive"]).all()
    assert set(ledger["chapter"]) == {"pruning", "discussion"}
