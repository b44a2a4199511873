"""The ledger: every claim judged on an evidence frame (our runs) and, by
the same rule, on the paper's own tables.

Holm's correction runs over the tests of each chapter (every pooled claim's
test and every member test of a per-method claim), so that a chapter's
verdicts do not depend on which other chapters ran: the Quantization
chapter and the Discussion judge its claims alike on the same store.
"""

from __future__ import annotations

import pandas as pd

from .catalog import CHAPTERS, CLAIMS, Claim
from .evidence import paper_evidence
from .rules import MARGIN, MIN_SEEDS, MIN_SETTINGS, VERDICTS, Outcome, combine
from .stats import CONFIDENCE, decide, holm

# Verdicts first, ours beside the paper's; then what the claim is.
COLUMNS = ["name", "chapter", "verdict", "paper_verdict", "reason", "ours", "paper", "paper_reason", "scope",
           "rule", "source"]


def _decide_by_holm(claims: list[Claim], outcomes: dict[str, dict[str, Outcome]]) -> None:
    """Decide the outcomes a test can decide, Holm-corrected within each chapter."""
    for chapter in CHAPTERS:
        pending = [outcome for claim in claims if claim.chapter == chapter
                   for outcome in outcomes[claim.name].values() if outcome.verdict is None]
        for outcome, p in zip(pending, holm([o.estimate.p for o in pending])):
            outcome.verdict = decide(outcome.estimate, p)
            if p == p:  # not NaN
                outcome.text += f", p = {p:.3g} (Holm, {chapter})"
            else:
                outcome.reason = "; ".join(filter(None, ["the settings' differences do not vary: no "
                                                         "t-test", outcome.reason]))


def _text(outcomes: dict[str, Outcome]) -> str:
    if list(outcomes) == [""]:
        return outcomes[""].text
    return "; ".join(f"{member}: {o.text} ({o.verdict})" for member, o in outcomes.items())


def judge(claims: list[Claim], evidence: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """Each claim's verdict, reason and evidence text on ``evidence``."""
    if evidence.empty:
        return {claim.name: ("not testable here", "no runs", "") for claim in claims}
    outcomes = {claim.name: {member: test.evaluate(evidence) for member, test in claim.members(evidence).items()}
                for claim in claims}
    _decide_by_holm(claims, outcomes)
    judged = {}
    for claim in claims:
        mine = outcomes[claim.name]
        if not mine:
            judged[claim.name] = ("not testable here", "no runs", "no runs")
            continue
        verdict, reason = combine(mine, claim.need)
        text = _text(mine)
        if claim.parts:
            text += "; decomposed: " + " + ".join(
                f"({name}) {test.evaluate(evidence).text}" for name, test in claim.parts(evidence).items())
        judged[claim.name] = (verdict, reason, text)
    return judged


def _claims_of(chapters: list[str] | None) -> list[Claim]:
    unknown = sorted(set(chapters or []) - set(CHAPTERS))
    if unknown:
        raise ValueError(f"no claims for chapter(s) {', '.join(map(repr, unknown))}; chapters: "
                         f"{', '.join(CHAPTERS)}")
    return [c for c in CLAIMS.values() if chapters is None or c.chapter in chapters]


def claims_ledger(evidence: pd.DataFrame, chapters: list[str] | None = None,
                  paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claims of ``chapters`` (default: all) judged on ``evidence``
    (:func:`~hsilib.claims.evidence.evidence_frame`) and on ``paper``
    (default: the paper's tables, :func:`~hsilib.claims.evidence.paper_evidence`):
    one row per claim, indexed by the claim as stated, with the columns
    :data:`COLUMNS`."""
    claims = _claims_of(chapters)
    ours = judge(claims, evidence)
    theirs = judge(claims, paper_evidence() if paper is None else paper)
    rows = [{"claim": c.statement, "name": c.name, "chapter": c.chapter, "source": c.source,
             "scope": c.scope, "rule": c.rule, **dict(zip(("verdict", "reason", "ours"), ours[c.name])),
             **dict(zip(("paper_verdict", "paper_reason", "paper"), theirs[c.name]))} for c in claims]
    return pd.DataFrame(rows).set_index("claim")[COLUMNS]


def check_claims(chapter: str, evidence: pd.DataFrame) -> pd.DataFrame:
    """The claims of one chapter (``"baselines"``, ``"pruning"``,
    ``"quantization"``, ``"distillation"`` or ``"discussion"``): the rows of
    :func:`claims_ledger` for it, the same verdicts the whole ledger gives."""
    return claims_ledger(evidence, [chapter])


def ledger_summary(ledger: pd.DataFrame) -> dict[str, object]:
    """What a chapter's prose says of a ledger (rows of :func:`claims_ledger`),
    by name: ``n_claims``; how many of our verdicts and of the paper's are
    each verdict (``n_holds``, ``n_not_testable_here``, ``n_paper_holds``,
    ...); our verdicts' counts in words (``verdict_counts``); and the rules'
    constants (``margin``, ``confidence``, ``min_seeds``, ``min_settings``)."""
    summary: dict[str, object] = {"n_claims": len(ledger)}
    for column, prefix in (("verdict", "n"), ("paper_verdict", "n_paper")):
        counts = ledger[column].value_counts()
        summary |= {f"{prefix}_{verdict.replace(' ', '_')}": int(counts.get(verdict, 0)) for verdict in VERDICTS}
    counts = ledger["verdict"].value_counts()
    summary["verdict_counts"] = ", ".join(f"{verdict} {counts[verdict]}" for verdict in VERDICTS if verdict in counts)
    return summary | {"margin": f"{MARGIN:g}", "confidence": f"{100 * CONFIDENCE:g}%", "min_seeds": MIN_SEEDS,
                      "min_settings": MIN_SETTINGS}
