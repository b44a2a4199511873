"""The experiments of the chapters that rebuild the paper's tables, built
from those chapters' parameters: a later page (the discussion, the
scorecard) asks the store for exactly the networks they ran."""

from __future__ import annotations

from .compress import distillation_grid, pruning_grid, quantization_grid, scratch_config
from .experiments import Experiment, per_model_grid

# The networks Tables 6-8 and 11-13 compare the compressed ones with.
COMPARED_MODELS = ["mlp", "cnn1d", "cnn2d"]


def paper_chapters(*, scenes: list[str], splits: list[str], seeds: list[int], epochs: int,
                   epochs_by_model: dict[str, int], precision: str, data_source: str,
                   baseline_models: list[str], pruning_methods: list[str], ratios: list[str],
                   strategies: list[str], finetune_epochs: int, quant_models: list[str],
                   quant_modes: list[str], qat_epochs: int, distillation_methods: list[str],
                   students: list[str]) -> dict[str, list[Experiment]]:
    """Each paper chapter's experiments ("baselines", "pruning",
    "quantization", "distillation"), as the chapter builds them from the
    same parameters (the earlier chapters' own, see
    :func:`hsilib.profiles.PROFILES`)."""
    common = {"scene": scenes, "split": splits, "seed": seeds, "data_source": data_source,
              "precision": precision}
    compared = per_model_grid(COMPARED_MODELS, epochs, epochs_by_model, **common)
    full = [c for c in compared if c.model == "cnn2d"]
    return {
        "baselines": per_model_grid(baseline_models, epochs, epochs_by_model, **common),
        "pruning": [*compared, *(scratch_config(b, r) for b in full for r in ratios),
                    *pruning_grid(full, pruning_methods, ratios, strategies,
                                  finetune_epochs=finetune_epochs)],
        "quantization": quantization_grid(per_model_grid(quant_models, epochs, epochs_by_model, **common),
                                          quant_modes, qat_epochs=qat_epochs),
        "distillation": [*compared, *(scratch_config(b, s) for b in full for s in students),
                         *distillation_grid(full, distillation_methods, students)],
    }


def full_networks(chapters: dict[str, list[Experiment]]) -> list[Experiment]:
    """The paper's CNN2D of every setting: what the chapters compress."""
    return [c for c in chapters["pruning"] if getattr(c, "model", None) == "cnn2d"
            and c.kind == "train" and c.widths is None]
