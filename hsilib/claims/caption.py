"""What run a ledger judges, in words: its profile, its seeds and the
maximum epochs of each arm's own training (a verdict can be the budget's)."""

from __future__ import annotations

import pandas as pd

from ..profiles import PROFILES, parameter, profile_parameters
from .catalog import TITLES

# How each family's networks are named in the caption.
ARM_LABELS = {"baseline": lambda row: TITLES[row["arm"]], "scratch": lambda row: "Scratch",
              "prune": lambda row: f"pruned ({row['strategy']})",
              "offline": lambda row: "offline students", "online": lambda row: "online students",
              "self": lambda row: "self students", "quantize": lambda row: TITLES[row["arm"]]}


def run_profile(notebook: str, values: dict) -> str:
    """The profile (:data:`hsilib.profiles.PROFILES`) whose parameters a
    notebook ran with: ``values`` holds its parameters by name (a notebook
    passes ``globals()``); ``"custom"`` where no profile matches."""
    from ..book import notebook_defaults  # papermill's side of the package, imported when asked

    defaults = notebook_defaults(notebook)
    for name in PROFILES:
        expected = {**defaults, **profile_parameters(name, notebook)}
        if all(key in values and parameter(values[key]) == parameter(value) for key, value in expected.items()):
            return name
    return "custom"


def arm_epochs(evidence: pd.DataFrame) -> str:
    """Each arm's maximum epochs (of its own training: a pruned network's
    fine-tuning, a quantized one's QAT), and the arms that do not train."""
    labels = evidence.apply(lambda row: ARM_LABELS[row["family"]](row), axis=1) if len(evidence) else []
    budgets = evidence["budget"].groupby(labels, sort=False).unique()
    trained = {label: "/".join(f"{b:g}" for b in sorted(b for b in values if b > 0))
               for label, values in budgets.items() if any(b > 0 for b in values)}
    untrained = [label for label, values in budgets.items() if not any(b > 0 for b in values)]
    text = ", ".join(f"{label} {epochs}" for label, epochs in trained.items())
    return text + (f"; no training: {', '.join(untrained)}" if untrained else "")


def ledger_caption(evidence: pd.DataFrame, profile: str) -> str:
    """The ledger's caption: the profile, the seeds, each arm's maximum epochs."""
    seeds = sorted(evidence["seed"].unique())
    return (f"Profile {profile}; {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); maximum epochs: "
            f"{arm_epochs(evidence)}.")
