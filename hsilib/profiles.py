"""Run profiles of the book: papermill parameters per notebook, in one place.

* ``smoke``: the notebooks' own stored defaults (about a minute each; what nbval runs).
* ``quick``: every method at reduced effort, one seed, training to a
  validation plateau within reduced maxima of epochs.
* ``full``: the paper's protocol with several seeds (a GPU is recommended).

A notebook missing from a profile runs with its defaults.
"""

from __future__ import annotations

import ast

PAPER_SCENES = ["indian_pines", "pavia_university"]
SPLITS = ["disjoint", "random"]
TABLE3_MODELS = ["rf", "mlr", "svm", "mlp", "lstm", "cnn1d", "cnn2d_c1", "cnn2d", "cnn3d"]
QUANT_MODES = ["dynamic", "static", "qat"]
PRUNING_CRITERIA = ["l1", "thinet", "slimming", "sfp"]
PRUNING_RATIOS = ["90%", "95%", "98%"]
STRATEGIES = ["I", "II", "III"]
DISTILLATION_METHODS = ["soft_targets", "fitnets", "attention", "correlation", "simkd", "camkd", "dml",
                        "one", "clilr", "okddip", "tfkd", "cskd", "pskd", "ddgsd"]
STUDENTS = ["90%", "95%", "98%"]
# Maxima: every run stops earlier on a validation plateau (hsilib.train.Plateau).
# Measured on real Indian Pines (benchmarks/plateau.py, fp32, 2-core CPU):
# CNN2D peaks on validation by epoch 5-12 (9 s an epoch on one thread); the
# spectral nets cost 0.05-0.4 s an epoch and still gain after 100 epochs, so
# they get 200; the 3-D CNN (~273M MACs a sample, ~50 s an epoch) gets 3 and
# is marked unconverged. Shared by every chapter, so later chapters compress
# the Baselines chapter's stored networks instead of retraining them. The
# maximum of 40 is for the students (whose budget is the baseline's): at 20,
# 25 of 176 quick students stopped at it still learning; a full-width CNN2D
# stops on its plateau long before either, so its network is the same.
QUICK_EPOCHS = {"epochs": 40, "epochs_by_model": {"mlp": 200, "lstm": 200, "cnn1d": 200, "cnn3d": 3}}
# Fine-tuning at 98% (real Indian Pines, disjoint) reached 99.6-100% validation
# by epoch 7-8 and was still creeping up at 10; the rule then stops ~4 later.
QUICK_FINETUNE_EPOCHS = 15
QUICK_QAT_EPOCHS = 10

PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {},
    "quick": {
        "02_datasets": {"scenes": PAPER_SCENES, "data_source": "auto"},
        "03_baselines": {"dataset": PAPER_SCENES, "split": SPLITS, "models": TABLE3_MODELS,
                         "seeds": [0], **QUICK_EPOCHS, "data_source": "auto",
                         "leak_models": ["mlr", "cnn2d"]},
        # Pruned networks are small: two single-threaded workers train them
        # 1.7x faster than one process with two threads (measured, CNN2D 90%).
        "04_pruning": {"dataset": PAPER_SCENES, "split": SPLITS, "methods": PRUNING_CRITERIA,
                       "ratios": PRUNING_RATIOS, "strategies": STRATEGIES,
                       "finetune_epochs": QUICK_FINETUNE_EPOCHS, "seeds": [0], **QUICK_EPOCHS,
                       "data_source": "auto",
                       "workers": 2},
        "05_quantization": {"dataset": PAPER_SCENES, "split": SPLITS, "models": ["cnn2d"],
                            "preview_models": ["mlp", "cnn1d"], "modes": QUANT_MODES,
                            "qat_epochs": QUICK_QAT_EPOCHS, "seeds": [0], **QUICK_EPOCHS,
                            "data_source": "auto"},
        "06_distillation": {"dataset": PAPER_SCENES, "split": SPLITS, "methods": DISTILLATION_METHODS,
                            "students": STUDENTS, "seeds": [0], **QUICK_EPOCHS,
                            "data_source": "auto", "workers": 2},
    },
    "full": {
        "02_datasets": {"scenes": PAPER_SCENES, "data_source": "auto"},
        "03_baselines": {"dataset": PAPER_SCENES, "split": SPLITS, "models": TABLE3_MODELS,
                         "seeds": [0, 1, 2, 3, 4], "epochs": 100, "data_source": "auto",
                         "leak_models": ["mlr", "cnn2d"]},
        "04_pruning": {"dataset": PAPER_SCENES, "split": SPLITS, "methods": PRUNING_CRITERIA,
                       "ratios": PRUNING_RATIOS, "strategies": STRATEGIES, "finetune_epochs": 20,
                       "seeds": [0, 1, 2, 3, 4], "epochs": 100, "data_source": "auto"},
        "05_quantization": {"dataset": PAPER_SCENES, "split": SPLITS, "models": ["cnn2d"],
                            "preview_models": ["mlp", "cnn1d"], "modes": QUANT_MODES,
                            "qat_epochs": 5, "seeds": [0, 1, 2, 3, 4], "epochs": 100,
                            "data_source": "auto"},
        "06_distillation": {"dataset": PAPER_SCENES, "split": SPLITS, "methods": DISTILLATION_METHODS,
                            "students": STUDENTS, "seeds": [0, 1, 2, 3, 4], "epochs": 100,
                            "data_source": "auto"},
    },
}

EXTRA_SCENES = ["salinas", "pavia_centre", "ksc", "botswana"]


def _discussion(chapters: dict[str, dict], **own) -> dict:
    """The Discussion chapter's parameters: the earlier chapters' own (so the
    networks they stored are found again), and what it adds."""
    baselines, pruning = chapters["03_baselines"], chapters["04_pruning"]
    quantization, distillation = chapters["05_quantization"], chapters["06_distillation"]
    shared = {k: baselines[k] for k in ("dataset", "split", "seeds", "epochs", "epochs_by_model",
                                        "precision", "data_source") if k in baselines}
    return {**shared, "baseline_models": baselines["models"], "pruning_methods": pruning["methods"],
            "ratios": pruning["ratios"], "strategies": pruning["strategies"],
            "finetune_epochs": pruning["finetune_epochs"],
            "quant_models": list(dict.fromkeys([*quantization["models"], *quantization["preview_models"]])),
            "quant_modes": quantization["modes"], "qat_epochs": quantization["qat_epochs"],
            "distillation_methods": distillation["methods"], "students": distillation["students"], **own}


# The pipelines and the networks on other scenes at the middle size; low-rank
# networks at every budget of Table 5.
PROFILES["quick"]["07_discussion"] = _discussion(
    PROFILES["quick"], focus_size="95%", lowrank_ratios=PRUNING_RATIOS, extra_scenes=EXTRA_SCENES,
    workers=2)
PROFILES["full"]["07_discussion"] = _discussion(
    PROFILES["full"], focus_size="95%", lowrank_ratios=PRUNING_RATIOS, extra_scenes=EXTRA_SCENES)

# The scorecard reads back the paper chapters' runs: their parameters, as the Discussion has them.
SCORECARD_PARAMETERS = ("dataset", "split", "seeds", "epochs", "epochs_by_model", "precision",
                        "data_source", "baseline_models", "pruning_methods", "ratios", "strategies",
                        "finetune_epochs", "quant_models", "quant_modes", "qat_epochs",
                        "distillation_methods", "students", "workers")
for _chapters in (PROFILES["quick"], PROFILES["full"]):
    _chapters["08_scorecard"] = {k: v for k, v in _chapters["07_discussion"].items()
                                 if k in SCORECARD_PARAMETERS}


def profile_parameters(profile: str, notebook: str) -> dict:
    """Papermill parameters of ``notebook`` (file stem) under ``profile``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; accepted: {', '.join(PROFILES)}")
    return dict(PROFILES[profile].get(notebook, {}))


def parameter(value):
    """A notebook parameter as its value: papermill's ``-p`` passes every
    value as a string, so a string that holds a list, tuple or dict
    (``'["indian_pines"]'``) is read as one; anything else is returned as is."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "(", "{"):
        try:
            return ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f"parameter {value!r} looks like a list or dict but is not one") from None
    return value


def as_list(value) -> list:
    """A parameter that may hold one value or several, as a list."""
    value = parameter(value)
    return list(value) if isinstance(value, (list, tuple)) else [value]
