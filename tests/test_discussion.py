"""The discussion chapter: pipelines of compression kinds, recipes moved to
other networks, the frontier of every family, rankings across scenes."""

import dataclasses

import pandas as pd
import pytest

from hsilib.compress import DistillConfig, LowRankConfig, PruneConfig, QuantConfig, scratch_config
from hsilib.compress.pipelines import PIPELINES, pipeline_grid, pipeline_stages
from hsilib.experiments import Config, run_grid
from hsilib.report.discussion import (best_per_family, compounding, compounding_summary, lowrank_table,
                                      pipeline_table, ranking_agreement, stages, transfer_grid, transferred)
from hsilib.report.frontier import frontier_frame

BASE = Config(scene="indian_pines", split="disjoint", model="mlp", epochs=1, data_source="twin")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """One network of every family of the book, the pipelines' among them, in one store."""
    finals = pipeline_grid([BASE], list(PIPELINES), ratio="98%", finetune_epochs=1, mode="dynamic")
    others = [BASE, scratch_config(BASE, "98%"), QuantConfig(BASE, "dynamic"),
              LowRankConfig(BASE, "90%", finetune_epochs=1)]
    every = list(dict.fromkeys([*finals, *(s for f in finals for s in pipeline_stages(f)), *others]))
    records = run_grid(every, store=tmp_path_factory.mktemp("store"), device="cpu", progress=False)
    return finals, records


def test_each_pipeline_stage_is_stored_and_linked_to_the_one_before(book):
    finals, records = book
    by_key = {r["key"]: r for r in records}
    for config, final in zip(finals, records):
        chain = stages(final, by_key)
        assert [r["key"] for r in chain] == [c.key() for c in pipeline_stages(config)]
        assert len(chain) == 1 + config.label().count(" from pruned") + 2
        assert all(0.0 <= r["agreement"] <= 1.0 for r in chain[1:])


def test_a_pipelines_final_network_is_smaller_than_every_stage_before_it(book):
    finals, records = book
    by_key = {r["key"]: r for r in records}
    for final in records[:len(finals)]:
        *before, last = stages(final, by_key)
        sizes = [r["measure"]["memory_mb_serialized"] for r in before]
        assert all(last["measure"]["memory_mb_serialized"] < size for size in sizes), sizes
    table = pipeline_table(records[:len(finals)], records)
    assert (table.xs(0, level="stage")["memory ÷ first"] == 1.0).all()
    assert len(table) == sum(len(stages(f, by_key)) for f in records[:len(finals)])


def test_compounding_multiplies_the_savings_of_the_stage_before_and_of_the_last_alone(book):
    finals, records = book
    by_key = {r["key"]: r for r in records}
    alone = next(r for r in records if r["key"] == QuantConfig(BASE, "dynamic").key())
    table = compounding(records[:len(finals)], records)
    def size(record):
        return record["measure"]["memory_mb_serialized"]

    for final, (_, row) in zip(records[:len(finals)], table.iterrows()):
        chain = stages(final, by_key)
        expected = size(chain[0]) / size(chain[-2]) * size(chain[0]) / size(alone)
        assert row["memory ÷ first, stages multiplied"] == pytest.approx(expected)
        assert row["memory ÷ first"] == pytest.approx(size(chain[0]) / size(final))


def test_the_compounding_summary_averages_settings_and_then_pipelines():
    compound = pd.DataFrame({"pipeline": ["a", "a", "b"], "setting": ["s1", "s2", "s1"],
                             "memory ÷ first": [4.0, 8.0, 10.0], "memory ÷ first, stages multiplied": [6.0, 6.0, 20.0],
                             "speed-up on first": [2.0, 2.0, 3.0], "speed-up on first, stages multiplied": [2.0, 2.0, 6.0]}
                            ).set_index(["pipeline", "setting"])
    summary, kept = compounding_summary(compound)
    assert list(summary.index) == ["a", "b"] and summary.loc["a", "memory ÷ first"] == 6.0
    assert kept == {"memory ÷ first": pytest.approx((6 / 6 + 10 / 20) / 2),
                    "speed-up on first": pytest.approx((1 + 0.5) / 2)}


def test_a_transfer_grid_rebases_each_recipe_onto_the_bases_of_its_architecture():
    other = dataclasses.replace(BASE, scene="ksc", split="random", train_fraction=0.05)
    cnn, other_cnn = (dataclasses.replace(c, model="cnn2d") for c in (BASE, other))
    pruned = PruneConfig(cnn, "l1", "98%", "I", finetune_epochs=1)
    quantized = QuantConfig(BASE, "dynamic")
    grid = transfer_grid([pruned, quantized], [other, other_cnn], "98%")
    assert grid == [other, other_cnn, scratch_config(other_cnn, "98%"), pruned.rebased(other_cnn),
                    quantized.rebased(other)]


def test_the_transfer_rows_are_the_chosen_networks_and_the_references_on_the_new_scenes():
    frame = pd.DataFrame({"family": ["pruning", "pruning", "baseline", "baseline", "scratch"],
                          "label": ["L1", "SFP", "MLP", "CNN2D", "Scratch"],
                          "scene": ["ip", "ksc", "ksc", "ip", "ip"]})
    assert list(transferred(frame, {"L1"}, ["ksc"])["label"]) == ["L1", "MLP"]


def test_the_frontier_has_every_family_of_the_book(book):
    _, records = book
    frame = frontier_frame(records)
    assert set(frame["family"]) == {"baseline", "scratch", "pruning", "quantization", "distillation",
                                    "low-rank", "pipeline"}
    assert set(frame[frame["family"] == "pipeline"]["label"].str.count("→")) == {1, 2}


def test_a_recipe_moves_to_another_network_whole():
    other = dataclasses.replace(BASE, scene="pavia_university", seed=3)
    quantized = QuantConfig(PruneConfig(BASE, "l1", "95%", "II", finetune_epochs=2), "qat", qat_epochs=2)
    moved = quantized.rebased(other)
    assert moved == QuantConfig(PruneConfig(other, "l1", "95%", "II", finetune_epochs=2), "qat",
                                qat_epochs=2)
    teachers = (BASE, dataclasses.replace(BASE, init_seed=7))
    cnn = dataclasses.replace(BASE, model="cnn2d")
    distilled = DistillConfig(cnn, "camkd", "98%", teachers=(cnn, dataclasses.replace(cnn, init_seed=7)))
    target = dataclasses.replace(other, model="cnn2d")
    assert distilled.rebased(target).teachers == (target, target)
    assert teachers[1].rebased(other) == other


def frame_of(rows):
    return pd.DataFrame([dict(zip(("family", "label", "size", "scene", "top1", "key"), row)) for row in rows])


def test_the_best_of_a_family_is_its_best_label_on_average_at_that_size():
    frame = frame_of([("pruning", "L1 98% I", "98%", "a", 70.0, "k1"),
                      ("pruning", "L1 98% I", "98%", "b", 90.0, "k2"),
                      ("pruning", "SFP 98% I", "98%", "a", 85.0, "k3"),
                      ("pruning", "SFP 90% I", "90%", "a", 99.0, "k4"),
                      ("quantization", "CNN2D → static", "", "a", 80.0, "k5")])
    assert best_per_family(frame, ["pruning", "quantization"], "98%") == {"pruning": "k3",
                                                                           "quantization": "k5"}
    with pytest.raises(ValueError, match="no low-rank network of size 98%"):
        best_per_family(frame, ["low-rank"], "98%")


def test_the_ranking_agreement_reads_a_kept_and_a_reversed_ranking():
    rows = [(None, label, "", scene, top1, "") for scene, values in
            (("ip", (1, 2, 3, 4)), ("same", (10, 20, 30, 40)), ("reversed", (4, 3, 2, 1)))
            for label, top1 in zip("abcd", values)]
    table = ranking_agreement(frame_of(rows), ["ip"], ["same", "reversed"])
    assert table.loc["same", "rank correlation"] == pytest.approx(1.0)
    assert table.loc["reversed", "rank correlation"] == pytest.approx(-1.0)
    assert table.loc["reversed", "best here"] == "a" and table.loc["same", "best here"] == "d"


def test_the_lowrank_table_sets_each_network_beside_the_one_shot_pruned_and_scratch_of_its_ratio():
    cnn = dataclasses.replace(BASE, model="cnn2d")
    other_seed = dataclasses.replace(cnn, seed=1)

    def record(top1, params, before=None):
        return {"metrics": {"top1": top1}, "measure": {"params": params},
                **({} if before is None else {"val_oa_before_finetuning": before})}

    lowrank = [LowRankConfig(cnn, "90%"), LowRankConfig(other_seed, "90%")]
    one_shot = [PruneConfig(cnn, "l1", "90%", "I"), PruneConfig(other_seed, "l1", "90%", "I")]
    record_of = {lowrank[0]: record(0.80, 100, 0.5), lowrank[1]: record(0.90, 100, 0.7),
                 one_shot[0]: record(0.70, 98), one_shot[1]: record(0.60, 98),
                 scratch_config(cnn, "90%"): record(0.50, 98)}
    # Neither another strategy, another ratio nor a config of another kind is compared.
    candidates = [cnn, *one_shot, PruneConfig(cnn, "l1", "90%", "II"), PruneConfig(cnn, "l1", "95%", "I")]
    table = lowrank_table(lowrank, candidates, record_of)
    assert table.index.tolist() == [("90%", "low-rank"), ("90%", "pruned (l1, I)"), ("90%", "Scratch")]
    assert table.loc[("90%", "low-rank")].tolist() == pytest.approx([85.0, 100, 60.0])
    assert table.loc[("90%", "pruned (l1, I)"), "top-1 (%)"] == pytest.approx(65.0)
    assert table.loc[("90%", "Scratch"), "top-1 (%)"] == pytest.approx(50.0)  # only seed 0's was run
