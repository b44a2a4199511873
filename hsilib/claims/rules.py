"""How a claim is tested: a paired comparison of two arms of networks, a
measurement against a threshold, or a ranking; each gives an
:class:`Outcome` on an evidence frame (:mod:`hsilib.claims.evidence`).

A comparison whose test can decide is left undecided here (``verdict``
None): its p-value is Holm-corrected with the rest of its family first
(:mod:`hsilib.claims.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .stats import Estimate, decide, estimate, rank_intervals

VERDICTS = ("holds", "fails", "inconclusive", "not testable here", "indicative")
NOT_TESTABLE, INDICATIVE = "not testable here", "indicative"
MARGIN = 0.5  # points of top-1: a smaller difference is no practical difference
MIN_SETTINGS = 3  # fewer settings than this test nothing
MIN_SEEDS = 3  # fewer seeds a setting than this: indicative only
SETTING = ("scene", "split")
SIZED_SETTING = ("scene", "split", "ratio")


@dataclass
class Outcome:
    """One test's result: its verdict (None until Holm's correction decides
    it), why it is not decided (``reason``), the evidence as ``text``, and
    the estimate behind a comparison."""

    verdict: str | None
    reason: str
    text: str
    estimate: Estimate | None = None


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the evidence rows matching ``where``
    (column -> value, or list of values) at ``stage``, each setting's value
    the mean of its rows (several networks, e.g. a family's methods, are
    averaged within a setting and seed). ``setting``: the columns that make
    a setting of this arm."""

    title: str
    where: dict = field(default_factory=dict)
    setting: tuple[str, ...] = SETTING
    value: str = "top1"
    stage: str = "direct"

    def rows(self, evidence: pd.DataFrame) -> pd.DataFrame:
        keep = evidence["stage"] == self.stage
        for column, wanted in self.where.items():
            keep &= evidence[column].isin(wanted if isinstance(wanted, list) else [wanted])
        return evidence[keep & evidence[self.value].notna()]


def _unconverged(arms: dict[str, pd.DataFrame]) -> list[str]:
    return [f"{title} did not converge in {int((rows['converged'] == False).sum())} of {len(rows)} runs"  # noqa: E712
            for title, rows in arms.items() if (rows["converged"] == False).any()]  # noqa: E712 - None: not trained


def _epochs(budgets: set) -> str:
    return "/".join(f"{b:g}" for b in sorted(budgets))


def _twin(rows: list[pd.DataFrame]) -> str:
    return "; on the offline twin's data" if any((r["data_source"] == "twin").any() for r in rows) else ""


@dataclass(frozen=True)
class Comparison:
    """``a`` minus ``b``, paired by setting and seed: the seeds of a setting
    are averaged first, then the settings' differences give a mean with its
    95% t interval, tested against ``threshold`` (``+MARGIN``: ``a`` is
    better in practice; ``-MARGIN``: ``a`` is not worse in practice). The
    settings are the columns both arms share: where ``b`` holds one network
    for several of ``a``'s (one teacher for three student sizes), they are
    one setting, so no run counts twice. ``matched_budgets``: the claim is
    about methods, so arms trained for different maximum epochs are not
    comparable."""

    a: Arm
    b: Arm
    threshold: float
    matched_budgets: bool = False

    def evaluate(self, evidence: pd.DataFrame) -> Outcome:
        a, b = self.a.rows(evidence), self.b.rows(evidence)
        missing = [arm.title for arm, rows in ((self.a, a), (self.b, b)) if rows.empty]
        if missing:
            return Outcome(NOT_TESTABLE, f"no runs of {' or '.join(missing)}", "no runs")
        units = [c for c in self.a.setting if c in self.b.setting]
        pair = units + ["seed"]
        differences = (a.groupby(pair)[self.a.value].mean() - b.groupby(pair)[self.b.value].mean()).dropna()
        per_setting = differences.groupby(level=units).mean()
        seeds = int(differences.groupby(level=units).size().min()) if len(differences) else 0
        n = len(per_setting)
        if n == 0:
            return Outcome(NOT_TESTABLE, f"no setting has both {self.a.title} and {self.b.title}",
                           "no paired setting")
        est = estimate(per_setting, self.threshold) if n >= 2 else None
        text = (f"{est.text(' points') if est else f'{per_setting.iloc[0]:+.2f} points'}, "
                f"{n} setting(s) × {seeds} seed(s)")
        # An arm of ``base_*`` values is the network before compression: its
        # rows' convergence is the compression's own, already the other arm's.
        reasons = _unconverged({arm.title: rows for arm, rows in ((self.a, a), (self.b, b))
                                if not arm.value.startswith("base_")})
        budgets = {arm.title: set(rows["budget"].dropna()) for arm, rows in ((self.a, a), (self.b, b))}
        if self.matched_budgets and all(budgets.values()) and len(set.union(*budgets.values())) > 1:
            reasons.append("training budgets differ: " + ", ".join(
                f"{title} at most {_epochs(epochs)} epochs" for title, epochs in budgets.items()))
        if n < MIN_SETTINGS:
            reasons.append(f"{n} paired setting(s), fewer than {MIN_SETTINGS}")
        twin = _twin([a, b])
        if reasons:
            return Outcome(NOT_TESTABLE, "; ".join(reasons) + twin, text, est)
        if seeds < MIN_SEEDS:
            return Outcome(INDICATIVE, f"{seeds} seed(s) a setting, fewer than {MIN_SEEDS}{twin}", text, est)
        return Outcome(None, twin.lstrip("; "), text, est)


@dataclass(frozen=True)
class Measurement:
    """A measured quantity per setting (``values``: evidence -> one value a
    setting, seeds averaged) against ``threshold`` (reached from it, or
    only above it where ``strict``): holds where every setting reaches it,
    fails where none does, inconclusive where some do. Sizes and speeds
    need no seeds: a network's size does not depend on its seed, and
    timings are medians of repeated calls."""

    what: str
    values: Callable[[pd.DataFrame], pd.Series]
    threshold: float
    strict: bool = False

    def evaluate(self, evidence: pd.DataFrame) -> Outcome:
        values = self.values(evidence).dropna()
        if values.empty:
            return Outcome(NOT_TESTABLE, f"no measurement of {self.what}", "no measurement")
        reached = int((values > self.threshold if self.strict else values >= self.threshold).sum())
        low, high = f"×{values.min():.2f}", f"×{values.max():.2f}"
        span = low if low == high else f"{low} to {high}"
        text = (f"{self.what}: {span}; {'above' if self.strict else 'at least'} ×{self.threshold:g} in "
                f"{reached} of {len(values)} setting(s)")
        verdict = "holds" if reached == len(values) else "fails" if reached == 0 else "inconclusive"
        return Outcome(verdict, "", text)


@dataclass(frozen=True)
class Ranking:
    """The arms (``by``) of ``rows`` ranked by mean top-1 over the settings,
    with 95% bootstrap intervals of the ranks
    (:func:`~hsilib.claims.stats.rank_intervals`): holds when every one of
    ``targets`` ranks within the first ``best`` in its whole interval, fails
    when one's interval lies beyond them. ``titles``: the targets' names in
    the text."""

    rows: Arm
    targets: tuple[str, ...]
    best: int
    titles: dict = field(default_factory=dict)
    by: str = "arm"

    def evaluate(self, evidence: pd.DataFrame) -> Outcome:
        rows = self.rows.rows(evidence)
        missing = [t for t in self.targets if t not in set(rows[self.by])]
        if missing:
            return Outcome(NOT_TESTABLE, f"no runs of {', '.join(missing)}", "no runs")
        setting = list(self.rows.setting)
        table = rows.groupby([*setting, self.by])[self.rows.value].mean().unstack(self.by).dropna()
        seeds = int(rows.groupby(setting)["seed"].nunique().reindex(table.index).min()) if len(table) else 0
        reasons = _unconverged({self.rows.title: rows})
        if len(table) < MIN_SETTINGS:
            reasons.append(f"{len(table)} setting(s) with every arm, fewer than {MIN_SETTINGS}")
        if len(table) < 2:
            return Outcome(NOT_TESTABLE, "; ".join(reasons), "too few settings")
        ranks = rank_intervals(table)
        text = ", ".join(f"{self.titles.get(t, t)} rank {ranks.loc[t, 'rank']} [{ranks.loc[t, 'low']}, "
                         f"{ranks.loc[t, 'high']}]" for t in self.targets) + f" of {table.shape[1]}, {len(table)} settings × {seeds} seed(s)"
        twin = _twin([rows])
        if reasons:
            return Outcome(NOT_TESTABLE, "; ".join(reasons) + twin, text)
        if seeds < MIN_SEEDS:
            return Outcome(INDICATIVE, f"{seeds} seed(s) a setting, fewer than {MIN_SEEDS}{twin}", text)
        within = ranks.loc[list(self.targets)]
        verdict = ("holds" if (within["high"] <= self.best).all() else
                   "fails" if (within["low"] > self.best).any() else "inconclusive")
        return Outcome(verdict, twin.lstrip("; "), text)


def _reasons(outcomes: dict[str, Outcome], verdict: str | None = None) -> str:
    """The members' reasons (of those with ``verdict``, or all), each once,
    naming the members it applies to where it is not all of them."""
    members: dict[str, list[str]] = {}
    for member, outcome in outcomes.items():
        if outcome.reason and verdict in (None, outcome.verdict):
            members.setdefault(outcome.reason, []).append(member)
    return "; ".join(reason if len(names) == len(outcomes) else f"{', '.join(names)}: {reason}"
                     for reason, names in members.items())


def combine(outcomes: dict[str, Outcome], need: str) -> tuple[str, str]:
    """A claim's verdict and reason from its members' decided outcomes:
    ``need`` ``"all"`` (every member must hold; one failing fails it) or
    ``"most"`` (more than half must hold; half or more failing fails it).
    Otherwise the claim is not testable where a member is not, indicative
    where a member is only indicative, else inconclusive."""
    verdicts = [o.verdict for o in outcomes.values()]
    n, holds, fails = len(verdicts), verdicts.count("holds"), verdicts.count("fails")
    if {"all": holds == n, "most": holds > n / 2}[need]:
        return "holds", _reasons(outcomes)
    if {"all": fails > 0, "most": fails >= n / 2}[need]:
        return "fails", _reasons(outcomes)
    for undecided in (NOT_TESTABLE, INDICATIVE):
        if undecided in verdicts:
            return undecided, _reasons(outcomes, undecided)
    return "inconclusive", _reasons(outcomes)


def per_setting(rows: pd.DataFrame, column: str, setting: tuple[str, ...] = SETTING) -> pd.Series:
    """``column`` averaged over the seeds (and networks) of each setting."""
    return rows.groupby(list(setting))[column].mean()


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """Two per-setting series divided, on the settings both have."""
    return (numerator / denominator).dropna().replace([np.inf, -np.inf], np.nan).dropna()


def paired_verdict(differences, threshold: float = MARGIN) -> tuple[str, str]:
    """Verdict on "the first is better in practice" from paired differences
    (one a pair of runs): ``"holds"`` / ``"fails"`` where the 95% t interval
    of their mean lies above / below ``threshold``, ``"inconclusive"`` where
    it straddles it or the differences do not vary, not testable with fewer
    than :data:`MIN_SETTINGS`. Unlike a claim, no seeds are averaged and no
    family corrected: a table's per-method summary. Returns the verdict and
    the evidence in words."""
    differences = np.asarray(differences, dtype=float)
    differences = differences[~np.isnan(differences)]
    positive = f"{int((differences > 0).sum())} of {len(differences)} positive"
    if len(differences) < MIN_SETTINGS:
        return NOT_TESTABLE, f"{positive} (fewer than {MIN_SETTINGS} pairs)"
    est = estimate(differences, threshold)
    return decide(est, est.p), f"mean {est.text(' points')}, {positive}"
