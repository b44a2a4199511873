"""Whether each network had finished learning: a run stopped at its maximum
epochs while validation accuracy still rose is a budget artefact, not a
method's result. Every table cell and plot point made from such a run is
marked with :data:`MARK`, and each chapter counts them in a compact table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..train import PLATEAU

MARK = "†"
MARK_NOTE = (f"{MARK}: at least one run behind the value stopped at its maximum epochs while its "
             "validation accuracy was still rising (not converged).")


def converged(record: dict) -> bool | None:
    """Whether the training that made a record's network stopped on a
    validation plateau; ``None`` where nothing trained (scikit-learn
    models, post-training quantization)."""
    summary = record.get("convergence")
    return None if summary is None else bool(summary["converged"])


def epochs_run(record: dict) -> float:
    """Epochs a record's network trained (all loops); NaN where nothing trained."""
    summary = record.get("convergence")
    return np.nan if summary is None else summary["epochs_run"]


def unconverged(flags: pd.Series) -> bool:
    """Whether any run among ``flags`` (a frame's ``converged`` column) did
    not converge; runs that did not train count as converged."""
    return bool((flags == False).any())  # noqa: E712 - None/NaN (not trained) are not False


def marked(text: str, flags: pd.Series) -> str:
    """``text`` with :data:`MARK` appended when a run among ``flags`` did not converge."""
    return f"{text} {MARK}" if unconverged(flags) else text


def convergence_table(frame: pd.DataFrame, by: str = "method") -> pd.DataFrame:
    """Per ``by`` (a method, model or criterion): how many of its runs
    trained, how many stopped on a plateau, how many stopped at their
    maximum still learning, and the median epochs they ran. Rows whose runs
    did not train are left out."""
    trained = frame[frame["converged"].notna()]
    if trained.empty:
        return pd.DataFrame(columns=["runs", "converged", "stopped at the maximum",
                                     "median epochs run"]).rename_axis(by)
    flags = trained["converged"].astype(bool)
    groups = trained.assign(converged=flags, at_max=~flags).groupby(by, sort=False)
    return pd.DataFrame({"runs": groups.size(), "converged": groups["converged"].sum(),
                         "stopped at the maximum": groups["at_max"].sum(),
                         "median epochs run": groups["epochs_run"].median()})


def convergence_share(frame: pd.DataFrame) -> tuple[int, int]:
    """(runs that converged, runs that trained) over a frame."""
    flags = frame["converged"].dropna().astype(bool)
    return int(flags.sum()), len(flags)


def convergence_summary(frame: pd.DataFrame) -> str:
    """One sentence for a chapter: how many of its trained networks stopped
    on a plateau, and how the others are marked."""
    done, trained = convergence_share(frame)
    if trained == 0:
        return "No network of this run was trained."
    rule = (f"no gain of {100 * PLATEAU.min_gain:g} points of validation accuracy over the last "
            f"{PLATEAU.patience} epochs or {100 * PLATEAU.fraction:g}% of the epochs run, whichever "
            "is longer")
    late = trained - done
    if late == 0:
        return f"All {trained} trained networks stopped on a plateau ({rule})."
    return (f"{done} of {trained} trained networks stopped on a plateau ({rule}); the other "
            f"{late} stopped at their maximum epochs while still improving: their values are "
            f"marked {MARK} in the tables and ringed in red in the figures.")


def ring(ax, x, y, size: float = 120) -> None:
    """Ring plot points made from runs that did not converge."""
    ax.scatter(x, y, s=size, facecolors="none", edgecolors="red", linewidths=1.2, zorder=5)


def ring_legend_handle():
    """The legend entry of :func:`mark_points`' rings."""
    import matplotlib.pyplot as plt

    return plt.Line2D([], [], ls="", marker="o", mfc="none", mec="red", ms=9,
                      label="did not converge")
