"""What every distiller shares (batchmean KL, soft targets against the
spec's hand-computed value, the teacher cache) and distillation runs: what
a record holds, bad requests refused before any training, settings chosen
on validation, and a student that really learns from its teacher."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hsilib.compress import DistillConfig, scratch_config
from hsilib.compress.distill import DISTILLERS, FAMILIES, kl_batchmean, soft_kl
from hsilib.compress.distill.base import TeacherCache, TrainingPixels
from hsilib.compress.distill.soft_targets import soft_target_loss
from hsilib.experiments import Config, ResultStore, run
from hsilib.models import build_model
from hsilib.reference import DISTILLATION_TABLES, paper_values

BASE = Config(model="cnn2d", data_source="twin")


# --------------------------------------------------------------------------
# The shared losses and the teacher cache
# --------------------------------------------------------------------------

def test_soft_target_loss_matches_the_spec():
    """Spec §3.1 (h): L = 0.4487; a KL averaged over the classes too
    (``reduction="mean"``) would give 0.2350."""
    z_s = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    z_t = torch.tensor([[2.0, 1.0, 0.1], [1.0, 0.0, -1.0]])
    terms = soft_target_loss(z_s, z_t, torch.tensor([0, 2]), temperature=4.0, a_kd=0.9)
    assert terms["ce"].item() == pytest.approx(0.1 * 1.2815, abs=1e-4)
    assert terms["kd"].item() == pytest.approx(0.9 * 16 * 0.022261, abs=1e-4)
    assert sum(terms.values()).item() == pytest.approx(0.4487, abs=1e-4)


def test_kl_batchmean_is_the_written_out_sum_over_classes_mean_over_samples():
    rng = np.random.default_rng(0)
    z_s, z_t = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    p = np.exp(z_t / 3) / np.exp(z_t / 3).sum(1, keepdims=True)
    q = np.exp(z_s / 3) / np.exp(z_s / 3).sum(1, keepdims=True)
    expected = np.mean(np.sum(p * np.log(p / q), axis=1))
    target = torch.tensor(p)
    assert kl_batchmean(torch.tensor(z_s), target, 3.0).item() == pytest.approx(expected, rel=1e-5)
    # Hinton's term: T^2 times that KL, and the teacher's logits are constants
    z_t_leaf = torch.tensor(z_t, requires_grad=True)
    term = soft_kl(torch.tensor(z_s, requires_grad=True), z_t_leaf, 3.0)
    assert term.item() == pytest.approx(9 * expected, rel=1e-5)
    assert torch.autograd.grad(term, z_t_leaf, allow_unused=True)[0] is None


def test_the_teacher_cache_is_read_by_pixel_index_not_batch_position():
    """Fitting pixels out of order, read in another order and in part: each
    row is the teacher's output for that very pixel."""
    torch.manual_seed(0)
    teacher = build_model("cnn2d", 6, 4, patch_size=11, widths=(4, 8, 8)).eval()
    inputs = torch.randn(50, 6, 11, 11)  # pixel i's input is row i

    def view(index):
        return inputs[torch.as_tensor(np.asarray(index))]

    fit_idx = np.random.default_rng(1).permutation(50)[:30]
    cache = TeacherCache(teacher, TrainingPixels(view, fit_idx, np.zeros(30, int), 4, 0, 1),
                         ("fc1", "logits"), batch=7)
    batch = fit_idx[[12, 3, 29, 0, 17]]
    read = cache(batch)
    with torch.no_grad():
        expected = teacher.forward_features(view(batch))
    for tap in ("fc1", "logits"):
        assert torch.allclose(read[tap], expected[tap], atol=1e-6)


def test_fourteen_methods_in_three_families_named_as_the_papers_tables():
    assert len(DISTILLERS) == 14
    rows = paper_values(DISTILLATION_TABLES["90%"], "top1", setting="90%", dataset="indian_pines",
                        split="disjoint")
    groups = {"Offline distillation": "offline", "Online distillation": "online",
              "Self distillation": "self"}
    paper = {r.method: groups[r.group] for r in rows.itertuples() if r.group in groups}
    assert {cls.title: cls.family for cls in DISTILLERS.values()} == paper
    assert [cls.title for cls in DISTILLERS.values()] == list(paper)  # the tables' order
    assert set(paper.values()) == set(FAMILIES)


@pytest.mark.parametrize("change, message", [
    ({"method": "magic"}, "unknown distillation method 'magic'"),
    ({"student": "80%"}, "unknown student size '80%'"),
    ({"method": "soft_targets", "student": (60, 30, 30)}, r"must not be wider than its teacher \(50, 100, 100\)"),
    ({"method": "camkd", "teachers": (BASE,)}, "needs at least 2, got 1"),
    ({"method": "soft_targets", "teachers": ()}, "distils from a trained teacher; none was given"),
    ({"method": "dml", "teachers": (BASE,)}, "online distillation: it needs no teacher"),
    ({"method": "soft_targets", "teachers": (dataclasses.replace(BASE, scene="pavia_university"),)},
     "differs from the student's data in scene"),
    ({"method": "soft_targets", "teachers": (dataclasses.replace(BASE, split="random"),)},
     "differs from the student's data in split"),
    ({"method": "soft_targets", "settings": {"temperatur": 4}}, "Soft targets has no setting 'temperatur'"),
])
def test_bad_requests_are_refused_before_any_training(change, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(BASE, **change)


def test_a_multi_teacher_method_trains_its_extra_teachers_on_the_same_split():
    teachers = DistillConfig(BASE, "camkd").teacher_configs()
    assert len(teachers) == 3 and teachers[0] == BASE
    assert [t.init_seed for t in teachers[1:]] == [1, 2]
    assert all(t.seed == BASE.seed and t.split == BASE.split for t in teachers)  # same split, pixels
    assert DistillConfig(BASE, "dml").teacher_configs() == ()


@pytest.fixture(scope="module")
def distilled(trained_cnn2d, tmp_path_factory):
    """A 90% student distilled with soft targets from the session's CNN2D,
    and the Scratch student of the same seed, in a copy of its store."""
    root = tmp_path_factory.mktemp("distill-store") / "store"
    shutil.copytree(trained_cnn2d["store"].root, root)
    store, base = ResultStore(root), trained_cnn2d["config"]
    base = dataclasses.replace(base, epochs=3)  # the teacher's and the students' budget
    teacher_record = run(base, store, device="cpu", progress=False)
    student = run(DistillConfig(base, "soft_targets", "90%"), store, device="cpu", progress=False)
    scratch = run(scratch_config(base, "90%"), store, device="cpu", progress=False)
    return teacher_record, student, scratch


def test_a_distilled_student_agrees_with_its_teacher_more_than_scratch_does(distilled):
    """Same initial weights, same batches, same epochs: only the teacher term
    differs (under Adam, a scaled cross-entropy alone would train exactly as
    Scratch), so a student that ignored its teacher could not agree more."""
    teacher, student, scratch = distilled
    teacher_predictions = np.asarray(teacher["test_predictions"])
    scratch_agreement = (np.asarray(scratch["test_predictions"]) == teacher_predictions).mean()
    assert student["agreement"] == pytest.approx(
        (np.asarray(student["test_predictions"]) == teacher_predictions).mean())
    assert student["agreement"] > scratch_agreement + 0.005


def test_a_distillation_record_names_its_teacher_and_costs(distilled):
    teacher, student, _ = distilled
    assert student["kind"] == "distill" and student["family"] == "offline"
    assert student["teachers"] == [teacher["key"]] and student["base_key"] == teacher["key"]
    assert student["measure"]["params"] == 49_321 and student["widths"] == [15, 30, 30]
    assert student["teacher_params"] == teacher["measure"]["params_all"]
    assert student["extra_training_params"] == 0  # soft targets train the student alone
    assert student["history"]["terms"].keys() == {"ce", "kd"}
    assert len(student["history"]["val_oa"]) == 3


@pytest.mark.slow
def test_correlation_congruence_chooses_beta_on_validation(trained_cnn2d, tmp_path):
    """One student per beta of the spec's grid, the best validation accuracy
    kept; a single value trains exactly that grid's candidate."""
    root = tmp_path / "store"
    shutil.copytree(trained_cnn2d["store"].root, root)
    store, base = ResultStore(root), trained_cnn2d["config"]
    grid = run(DistillConfig(base, "correlation", "98%"), store, device="cpu", progress=False)
    tried = grid["selection"]["tried"]
    assert [t["settings"] for t in tried] == [{"beta": 0.1}, {"beta": 1.0}, {"beta": 10.0}]
    best = max(range(3), key=lambda i: (tried[i]["val_oa"], -i))  # the first best
    assert grid["selection"]["chosen"] == tried[best]["settings"]
    assert grid["settings"]["beta"] == tried[best]["settings"]["beta"]
    history = grid["history"]
    assert history["val_oa"][history["best_epoch"] - 1] == tried[best]["val_oa"]
    fixed = run(DistillConfig(base, "correlation", "98%", settings={"beta": 1.0}), store, device="cpu",
                progress=False)
    assert fixed["selection"] is None and fixed["settings"]["beta"] == 1.0
    assert fixed["history"]["val_oa"][fixed["history"]["best_epoch"] - 1] == tried[1]["val_oa"]
    # a weight that swamps the labels loses on validation, wherever it stands in the grid
    swamped = run(DistillConfig(base, "correlation", "98%", settings={"beta": (1.0, 1e4)}), store,
                  device="cpu", progress=False)["selection"]
    assert swamped["tried"][0]["val_oa"] == tried[1]["val_oa"] > swamped["tried"][1]["val_oa"]
    assert swamped["chosen"] == {"beta": 1.0}
