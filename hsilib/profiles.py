"""Run profiles of the book: papermill parameters per notebook, in one place.

* ``smoke``: the notebooks' own stored defaults (seconds each; what nbval runs).
* ``quick``: every method at reduced effort, one seed: the whole book on a
  2-core CPU in well under an hour.
* ``full``: the paper's protocol with several seeds (a GPU is recommended).

A notebook missing from a profile runs with its defaults.
"""

from __future__ import annotations

PAPER_SCENES = ["indian_pines", "pavia_university"]

PROFILES: dict[str, dict[str, dict]] = {
    "smoke": {},
    "quick": {
        "02_datasets": {"scenes": PAPER_SCENES, "data_source": "auto"},
    },
    "full": {
        "02_datasets": {"scenes": PAPER_SCENES, "data_source": "auto"},
    },
}


def profile_parameters(profile: str, notebook: str) -> dict:
    """Papermill parameters of ``notebook`` (file stem) under ``profile``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; accepted: {', '.join(PROFILES)}")
    return dict(PROFILES[profile].get(notebook, {}))
