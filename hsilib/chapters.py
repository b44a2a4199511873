"""The experiments each chapter runs, built from its parameters (a
notebook's, by name): what ``hsilib plan`` counts before a run, and what a
later page (the discussion, the scorecard) asks the store for again."""

from __future__ import annotations

import dataclasses
from typing import Callable

from .compress import LowRankConfig, distillation_grid, pruning_grid, quantization_grid, scratch_config
from .compress.pipelines import pipeline_grid, pipeline_stages
from .experiments import Experiment, per_model_grid
from .profiles import as_list, parameter

# The networks Tables 6-8 and 11-13 compare the compressed ones with.
COMPARED_MODELS = ["mlp", "cnn1d", "cnn2d"]


def _axes(p: dict) -> dict:
    """The grid axes every chapter shares, from its parameters."""
    return {"scene": as_list(p["dataset"]), "split": as_list(p["split"]), "seed": as_list(p["seeds"]),
            "data_source": p["data_source"], "precision": p["precision"]}


def _trained(models: list[str], p: dict, **axes) -> list[Experiment]:
    return per_model_grid(models, p["epochs"], parameter(p["epochs_by_model"]), **_axes(p), **axes)


def _full(compared: list[Experiment]) -> list[Experiment]:
    return [c for c in compared if c.model == "cnn2d"]


def baselines_experiments(p: dict) -> dict[str, list[Experiment]]:
    """Table 3: every model, and the models run with PCA fitted on the whole image."""
    val = {"val_fraction": p.get("val_fraction", 0.1)}
    return {"models": _trained(as_list(p["models"]), p, **val),
            "leak": _trained(as_list(p.get("leak_models", [])), p, **val, pca_fit="image")}


def pruning_experiments(p: dict) -> dict[str, list[Experiment]]:
    """Tables 6-8: the compared networks, Scratch and every pruning."""
    compared = _trained(COMPARED_MODELS, p)
    full = _full(compared)
    ratios = as_list(p["ratios"])
    return {"compared": compared, "scratch": [scratch_config(b, r) for b in full for r in ratios],
            "pruned": pruning_grid(full, as_list(p["methods"]), ratios, as_list(p["strategies"]),
                                   finetune_epochs=p["finetune_epochs"])}


def quantization_experiments(p: dict) -> dict[str, list[Experiment]]:
    """Table 10: the float32 networks and their int8 copies in every mode."""
    bases = _trained(list(dict.fromkeys([*as_list(p["models"]), *as_list(p.get("preview_models", []))])), p)
    settings = {name: p[name] for name in ("engine", "calibration_samples", "observer") if name in p}
    return {"bases": bases, "quantized": quantization_grid(bases, as_list(p["modes"]), qat_epochs=p["qat_epochs"],
                                                           **settings)}


def distillation_experiments(p: dict) -> dict[str, list[Experiment]]:
    """Tables 11-13: the compared networks, Scratch students and every distillation."""
    compared = _trained(COMPARED_MODELS, p)
    full = _full(compared)
    students = as_list(p["students"])
    return {"compared": compared, "scratch": [scratch_config(b, s) for b in full for s in students],
            "students": distillation_grid(full, as_list(p["methods"]), students)}


def paper_chapters(p: dict) -> dict[str, list[Experiment]]:
    """Each paper chapter's experiments ("baselines", "pruning",
    "quantization", "distillation") from the Discussion's or the
    scorecard's parameters, which name the earlier chapters' own (see
    :data:`hsilib.profiles.PROFILES`)."""
    shared = {k: p[k] for k in ("dataset", "split", "seeds", "epochs", "epochs_by_model", "precision",
                                "data_source")}
    chapters = {
        "baselines": baselines_experiments({**shared, "models": p["baseline_models"]}),
        "pruning": pruning_experiments({**shared, "methods": p["pruning_methods"], "ratios": p["ratios"],
                                        "strategies": p["strategies"], "finetune_epochs": p["finetune_epochs"]}),
        "quantization": quantization_experiments({**shared, "models": p["quant_models"],
                                                  "modes": p["quant_modes"], "qat_epochs": p["qat_epochs"]}),
        "distillation": distillation_experiments({**shared, "methods": p["distillation_methods"],
                                                  "students": p["students"]}),
    }
    return {name: [e for group in groups.values() for e in group] for name, groups in chapters.items()}


def full_networks(chapters: dict[str, list[Experiment]]) -> list[Experiment]:
    """The paper's CNN2D of every setting: what the chapters compress."""
    return [c for c in chapters["pruning"] if getattr(c, "model", None) == "cnn2d"
            and c.kind == "train" and c.widths is None]


def discussion_experiments(p: dict) -> dict[str, list[Experiment]]:
    """The Discussion: the paper chapters' networks, every stage of each
    pipeline, each pipeline's last method on the full network alone,
    low-rank networks, and the networks trained on the scenes the paper did
    not use (the best recipes moved there are chosen from results, so they
    are not among these)."""
    chapters = paper_chapters(p)
    full = full_networks(chapters)
    finals = pipeline_grid(full, as_list(p["pipelines"]), ratio=p["focus_size"], criterion=p["pipeline_criterion"],
                           finetune_epochs=p["finetune_epochs"], method=p["pipeline_method"],
                           mode=p["pipeline_mode"], quantization=(("qat_epochs", p["qat_epochs"]),))
    extra_models = list(dict.fromkeys([*as_list(p["extra_models"]), "cnn2d"]))
    extra = per_model_grid(extra_models, p["epochs"], parameter(p["epochs_by_model"]), scene=as_list(p["extra_scenes"]),
                           split="random", seed=as_list(p["seeds"]), data_source=p["data_source"],
                           precision=p["precision"], train_fraction=p["extra_train_fraction"])
    return {"chapters": list(dict.fromkeys(e for grid in chapters.values() for e in grid)),
            "finals": finals, "stages": [s for f in finals for s in pipeline_stages(f)],
            # Each pipeline's last stage applied to the full network alone: do savings multiply?
            "alone": [dataclasses.replace(f, base=pipeline_stages(f)[0]) for f in finals],
            "lowrank": [LowRankConfig(b, r, finetune_epochs=p["finetune_epochs"]) for b in full
                        for r in as_list(p["lowrank_ratios"])],
            "extra_bases": extra,
            "extra_scratch": [scratch_config(b, p["focus_size"]) for b in extra if b.model == "cnn2d"]}


def scorecard_experiments(p: dict) -> dict[str, list[Experiment]]:
    """The scorecard: the paper chapters' networks, read back."""
    return paper_chapters(p)


# Each chapter's experiments by notebook; a notebook not here runs none.
CHAPTER_EXPERIMENTS: dict[str, Callable[[dict], dict[str, list[Experiment]]]] = {
    "03_baselines": baselines_experiments, "04_pruning": pruning_experiments,
    "05_quantization": quantization_experiments, "06_distillation": distillation_experiments,
    "07_discussion": discussion_experiments, "08_scorecard": scorecard_experiments,
}


def chapter_experiments(stem: str, params: dict) -> list[Experiment]:
    """Every experiment notebook ``stem`` runs with ``params`` (its
    parameters by name), each once, in the order it runs them."""
    build = CHAPTER_EXPERIMENTS.get(stem)
    return [] if build is None else list(dict.fromkeys(e for group in build(params).values() for e in group))
