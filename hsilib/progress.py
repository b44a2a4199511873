"""Progress of long work, reported where the person who started it can see it.

A chapter runs inside a Jupyter kernel, whose output goes into the notebook,
not to the terminal of ``hsilib book run``. So the grid runner also reports
each finished run through :func:`report_progress`: when ``$HSILIB_PROGRESS``
names a file, one JSON line ``{"done", "total", "label"}`` is appended to it,
and the book runner, which set the variable for the kernel, shows the lines
as they come.
"""

from __future__ import annotations

import json
import os

ENV_PROGRESS = "HSILIB_PROGRESS"


def report_progress(done: int, total: int, label: str) -> None:
    """Append one progress line to ``$HSILIB_PROGRESS`` (nothing when unset)."""
    path = os.environ.get(ENV_PROGRESS)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"done": done, "total": total, "label": label}) + "\n")
