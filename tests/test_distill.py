"""Distillation runs: what a record holds, bad requests refused before any
training, and a student that really learns from its teacher."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from hsilib.compress import DistillConfig, scratch_config
from hsilib.compress.distill import DISTILLERS, FAMILIES
from hsilib.experiments import Config, ResultStore, run
from hsilib.reference import DISTILLATION_TABLES, paper_values

BASE = Config(model="cnn2d", data_source="twin")


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
