"""The paper's claims as data, each judged on our results and, by the same
rule, on the paper's own tables.

* :mod:`.evidence`: one row per network, from result records
  (:func:`evidence_frame`) or from the paper's tables (:func:`paper_evidence`).
* :mod:`.stats`: mean differences with t intervals, Holm's correction,
  bootstrap rank intervals.
* :mod:`.rules`: how a claim is tested (a paired comparison against a
  practical margin, a measurement against a threshold, a ranking) and the
  verdicts (:data:`VERDICTS`).
* :mod:`.catalog`: the claims (:data:`CLAIMS`), each with its sentence,
  scope and rule.
* :mod:`.ledger`: every claim judged, ours beside the paper's
  (:func:`claims_ledger`, :func:`check_claims`), and what prose says of
  it (:func:`ledger_summary`).
* :mod:`.caption`: what run a ledger judges, in words.
"""

from .caption import ledger_caption, run_profile
from .catalog import CHAPTERS, CLAIMS, Claim, register_claim
from .evidence import evidence_frame, paper_evidence
from .ledger import check_claims, claims_ledger, ledger_summary
from .rules import MARGIN, MIN_SEEDS, MIN_SETTINGS, VERDICTS, paired_verdict

__all__ = ["CHAPTERS", "CLAIMS", "MARGIN", "MIN_SEEDS", "MIN_SETTINGS", "VERDICTS", "Claim",
           "check_claims", "claims_ledger", "evidence_frame", "ledger_caption", "ledger_summary", "paired_verdict",
           "paper_evidence", "register_claim", "run_profile"]
