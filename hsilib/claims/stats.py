"""The ledger's statistics, each small enough to check by hand: a mean with
its t confidence interval and the p-value of "the mean equals a threshold",
Holm's step-down correction, and bootstrap intervals of ranks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05  # family-wise error rate of each Holm family
CONFIDENCE = 0.95  # of the intervals shown
BOOTSTRAP_DRAWS = 2000
# Equal values leave a standard deviation of rounding error (1e-17), not zero:
# below this share of the mean's size, the values do not vary.
NO_SPREAD = 1e-9


@dataclass(frozen=True)
class Estimate:
    """The mean of ``n`` per-setting values with its ``CONFIDENCE`` t interval
    (``low``, ``high``) and the two-sided p-value of "the true mean equals
    ``threshold``". Where the values do not vary, the t statistic is
    undefined: interval and p-value are NaN, never a certainty."""

    n: int
    mean: float
    low: float
    high: float
    p: float
    threshold: float

    def text(self, unit: str = "") -> str:
        if np.isnan(self.low):
            return f"{self.mean:+.2f}{unit} (no spread across {self.n} settings: no interval)"
        return f"{self.mean:+.2f}{unit} [{self.low:+.2f}, {self.high:+.2f}]"


def estimate(values, threshold: float = 0.0) -> Estimate:
    """:class:`Estimate` of the mean of ``values`` (at least two)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        raise ValueError(f"an interval needs at least 2 values, got {n}")
    mean = float(values.mean())
    sd = float(values.std(ddof=1))
    if sd <= NO_SPREAD * max(1.0, abs(mean)):
        return Estimate(n, mean, np.nan, np.nan, np.nan, threshold)
    se = sd / np.sqrt(n)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * se
    p = 2 * float(stats.t.sf(abs(mean - threshold) / se, n - 1))
    return Estimate(n, mean, mean - half, mean + half, p, threshold)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): the i-th smallest of m
    is multiplied by m - i + 1, then made non-decreasing in that order and
    capped at 1. NaN p-values (tests that could not run) stay NaN and do
    not count in m."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full_like(p, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = len(order)
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return adjusted


def decide(est: Estimate, p_adjusted: float) -> str:
    """``"holds"`` when the (adjusted) test puts the mean above its
    threshold, ``"fails"`` when below, ``"inconclusive"`` otherwise."""
    if not p_adjusted < ALPHA:  # NaN too
        return "inconclusive"
    return "holds" if est.mean > est.threshold else "fails"


def rank_intervals(table: pd.DataFrame, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> pd.DataFrame:
    """Ranks of the columns of ``table`` (rows: settings, columns: what is
    ranked; higher is better, rank 1 best) by their mean over the settings,
    with a ``CONFIDENCE`` bootstrap interval: the settings are drawn with
    replacement ``draws`` times and the ranks recomputed (ties share the
    best rank). Columns ``rank``, ``low``, ``high``."""
    values = table.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    drawn = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    ranks = stats.rankdata(-drawn, method="min", axis=1)
    tail = (1 - CONFIDENCE) / 2
    return pd.DataFrame({
        "rank": stats.rankdata(-values.mean(axis=0), method="min").astype(int),
        "low": np.quantile(ranks, tail, axis=0, method="inverted_cdf").astype(int),
        "high": np.quantile(ranks, 1 - tail, axis=0, method="inverted_cdf").astype(int)},
        index=table.columns)
