"""``hsilib plan``: each chapter's runs counted once, stored ones recognised,
and estimates that follow from the step time, the training pixels, the
epochs and the width of each run's network."""

import math

import pytest
import torch

from hsilib.chapters import chapter_experiments, paper_chapters
from hsilib.book import notebook_defaults
from hsilib.cli import main
from hsilib.compress import PruneConfig, QuantConfig, scratch_config
from hsilib.experiments import Config, ResultStore, run
from hsilib.experiments.archive import pack, unpack
from hsilib.plan import concrete_widths, duration, epoch_shares, plan_of, profile_keys, training_pixels
from hsilib.profiles import PROFILES, profile_parameters

MLP = Config(scene="indian_pines", split="disjoint", model="mlp", epochs=3, data_source="twin", precision="fp32")
CNN = Config(scene="indian_pines", split="disjoint", model="cnn2d", epochs=4, data_source="twin",
             precision="fp32")


def one_second(model, precision, widths):
    return 1.0


def narrow_is_cheaper(model, precision, widths):
    """A step of the paper's network takes 1 s, of a narrower one its widths' share of conv1's."""
    return 1.0 if widths is None else widths[0] / 50


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store holding one finished run: the MLP."""
    store = ResultStore(tmp_path_factory.mktemp("store"))
    run(MLP, store, device="cpu", progress=False)
    return store


def test_each_run_is_counted_once_in_the_first_chapter_that_needs_it(store):
    pruned = PruneConfig(CNN, "l1", "90%", "II", finetune_epochs=2)
    chapters = {"a": [MLP, pruned], "b": [MLP, QuantConfig(MLP, "dynamic"), scratch_config(CNN, "90%")]}
    plan = plan_of("test", chapters, store, device="cpu", step=one_second)
    table = plan.by_chapter()
    # Chapter a: the MLP, the pruned network and its base (a dependency); b: only what a did not need.
    assert table.loc[("a", "train"), ["runs", "stored", "left"]].tolist() == [2, 1, 1]
    assert table.loc[("a", "prune"), ["runs", "stored", "left"]].tolist() == [1, 0, 1]
    assert table.loc[("b", "quantize"), "runs"] == 1 and table.loc[("b", "train"), "runs"] == 1
    assert table["runs"].sum() == 5 and table["stored"].sum() == 1
    assert "5 runs, 1 stored, 4 to run" in plan.summary()


def test_the_estimate_is_epochs_times_steps_times_the_networks_share(store):
    pixels = training_pixels("indian_pines", "disjoint", 0, "clean", None, MLP.val_fraction)
    steps = math.ceil(pixels / 100)
    pruned = PruneConfig(CNN, "l1", "95%", "II", finetune_epochs=2)
    scratch = scratch_config(CNN, "95%")
    plan = plan_of("test", {"a": [CNN, pruned, scratch, QuantConfig(CNN, "dynamic"),
                                  QuantConfig(CNN, "qat", qat_epochs=2)]}, store, device="cpu",
                   step=narrow_is_cheaper)
    seconds = plan.rows.set_index("label")["seconds"]
    assert seconds[CNN.label()] == pytest.approx(4 * steps)
    # Strategy II fine-tunes after each of CNN2D's three prunable layers, timed at the target widths.
    assert concrete_widths("cnn2d", "95%") == (10, 20, 20)
    assert seconds[pruned.label()] == pytest.approx(2 * 3 * steps * 10 / 50)
    assert seconds[scratch.label()] == pytest.approx(4 * steps * scratch.widths[0] / 50)
    soft = PruneConfig(CNN, "sfp", "95%", "I", finetune_epochs=2)  # soft pruning trains the full width
    assert plan_of("test", {"a": [soft]}, store, device="cpu", step=narrow_is_cheaper).rows.set_index("label").loc[
        soft.label(), "seconds"] == pytest.approx(2 * steps)
    assert seconds[QuantConfig(CNN, "dynamic").label()] == 0
    assert seconds[QuantConfig(CNN, "qat", qat_epochs=2).label()] == pytest.approx(2 * steps)
    assert concrete_widths("lstm", "95%") is None and concrete_widths("cnn2d", None) is None


def test_expected_time_uses_the_epoch_share_the_stores_runs_trained(store, tmp_path):
    record = store.load(MLP.resolved().key())
    # As if the MLP had stopped on its plateau after 1 of 4 epochs.
    record = {**record, "convergence": {**record["convergence"], "epochs_run": 1, "max_epochs": 4}}
    assert epoch_shares([record]) == {("train", "mlp"): 0.25}
    stopped_early = ResultStore(tmp_path)
    stopped_early.put(record)
    other = Config(scene="indian_pines", split="random", model="mlp", epochs=3, data_source="twin",
                   precision="fp32")
    row = plan_of("test", {"a": [other, CNN]}, stopped_early, device="cpu", step=one_second).rows.set_index("model")
    assert row.loc["mlp", "expected"] == pytest.approx(row.loc["mlp", "seconds"] * 0.25)
    assert row.loc["cnn2d", "expected"] == row.loc["cnn2d", "seconds"]  # no CNN2D stored: the maximum


def test_the_summary_calls_the_maximum_an_estimate_only_when_stored_runs_tell_how_early_runs_stop(store, tmp_path):
    record = {**store.load(MLP.resolved().key())}
    record["convergence"] = {**record["convergence"], "epochs_run": 1, "max_epochs": 4}
    informed = ResultStore(tmp_path / "informed")
    informed.put(record)
    chapters = {"a": [CNN]}
    known = plan_of("test", chapters, informed, device="cpu", step=one_second).summary()
    unknown = plan_of("test", chapters, ResultStore(tmp_path / "empty"), device="cpu", step=one_second).summary()
    assert "about " in known and " at most" in known
    assert "about " not in unknown and "at most of training on this machine" in unknown
    assert "no stored run tells how much yet" in unknown


def test_the_plan_counts_the_stored_runs_that_stopped_on_a_plateau(store, tmp_path):
    record = store.load(MLP.resolved().key())
    other = Config(scene="indian_pines", split="random", model="mlp", epochs=3, data_source="twin",
                   precision="fp32")
    mixed = ResultStore(tmp_path)
    mixed.put({**record, "convergence": {**record["convergence"], "stopped": "plateau", "converged": True}})
    mixed.put({**record, "key": other.resolved().key(), "config": {**record["config"], "split": "random"},
               "convergence": {**record["convergence"], "stopped": "max_epochs", "converged": False}})
    plan = plan_of("test", {"a": [MLP, other, QuantConfig(MLP, "dynamic"), CNN]}, mixed, device="cpu",
                   step=one_second)
    table = plan.by_chapter()
    # The quantized copy and the CNN are not stored: neither counts as trained.
    assert table.loc[("a", "train"), ["stored", "trained", "plateau"]].tolist() == [2, 2, 1]
    assert table.loc[("a", "quantize"), ["trained", "plateau"]].tolist() == [0, 0]
    assert plan.plateau_share() == ("stored runs that trained: 1 of 2 stopped on a validation plateau (50.0%), "
                                    "1 at their maximum epochs")


def test_durations_read_at_a_glance():
    assert [duration(s) for s in (42, 720, 4 * 3600)] == ["42 s", "12 min", "4.0 h"]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_paper_chapters_seen_from_the_discussion_are_what_those_chapters_run(profile):
    def effective(stem):
        return {**notebook_defaults(stem), **profile_parameters(profile, stem)}

    theirs = {e for stem in ("03_baselines", "04_pruning", "05_quantization", "06_distillation")
              for e in chapter_experiments(stem, effective(stem))}
    for stem in ("07_discussion", "08_scorecard"):
        seen = {e for grid in paper_chapters(effective(stem)).values() for e in grid}
        assert seen <= theirs, (stem, sorted(e.label() for e in seen - theirs)[:5])


def test_the_plan_command_prints_each_chapters_counts(tmp_path, capsys):
    assert main(["plan", "--profile", "smoke", "05_quantization", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    expected = chapter_experiments("05_quantization", {**notebook_defaults("05_quantization")})
    quantized = sum(e.kind == "quantize" for e in expected)
    assert any(line.split()[:5] == ["05_quantization", "quantize", str(quantized), "0", str(quantized)]
               for line in out.splitlines()), out
    assert "plan (smoke):" in out and "to run" in out
    assert "stored runs that trained: 0 of 0 stopped on a validation plateau" in out
    assert main(["plan", "--profile", "smoke", "09_nothing", "--store", str(tmp_path)]) == 1
    assert "unknown notebooks ['09_nothing']" in capsys.readouterr().err


def test_a_profiles_archive_holds_its_stored_runs_and_what_was_built_only_on_them(store, tmp_path):
    """The plan's stored runs, plus a stored run depending only on them (the
    Discussion's recipes moved to other scenes); not an unrelated run."""
    local = ResultStore(tmp_path / "store")
    unpack_from = tmp_path / "all.tar"
    pack(unpack_from, store)
    unpack(unpack_from, local)  # the MLP
    quantized, unrelated = QuantConfig(MLP, "dynamic"), Config(scene="indian_pines", split="random", model="mlp",
                                                                 epochs=1, data_source="twin", precision="fp32")
    for experiment in (quantized, unrelated):
        run(experiment, local, device="cpu", progress=False)
    plan = plan_of("test", {"a": [MLP, CNN]}, local, device="cpu", step=one_second)
    keys = profile_keys(plan, local)
    assert keys == {MLP.resolved().key(), quantized.resolved().key()}
    archive = tmp_path / "profile.tar"
    assert pack(archive, local, keys) == 3  # the MLP's record and weights, the quantized record
    copy = ResultStore(tmp_path / "copy")
    unpack(archive, copy)
    assert {r["key"] for r in copy.records()} == keys


def test_packing_a_profile_that_has_no_stored_run_says_so(store, tmp_path, capsys):
    code = main(["results", "pack", str(tmp_path / "a.tar"), "--profile", "smoke", "--store", str(store.root)])
    err = capsys.readouterr().err
    assert code == 1 and "runs of the smoke profile are not in the store" in err
    assert "holds no records to pack among the runs asked for" in err


def test_each_width_is_timed_once_and_cached_and_on_one_thread(tmp_path, monkeypatch):
    import hsilib.plan as plan_module

    monkeypatch.setenv("HSILIB_RESULTS_DIR", str(tmp_path))
    timed = []

    def fake_steps(model, precision, device, widths=None):
        timed.append((widths, torch.get_num_threads()))  # a slow first step, as when other work shares the processor
        return [2.0, 0.5, 0.7] if widths is None else [0.1, 0.3, 0.2]

    monkeypatch.setattr(plan_module, "step_seconds", fake_steps)
    narrow = concrete_widths("cnn2d", "98%")
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # a run's own count, whatever this test process was given
    try:
        assert plan_module.calibrated_step_seconds("cnn2d", "fp32", None, "cpu") == 0.5
        assert plan_module.calibrated_step_seconds("cnn2d", "fp32", narrow, "cpu") == 0.1
        assert plan_module.calibrated_step_seconds("cnn2d", "fp32", narrow, "cpu") == 0.1
        # Timed on one thread (two on a busy machine were 65-190x slower); the caller's count restored.
        assert timed == [(None, 1), (narrow, 1)]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
