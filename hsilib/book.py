"""Execute the book's notebooks with papermill, one profile at a time.

``notebooks/*.ipynb`` are sources (no outputs); executed copies go to
``book/``, which ``jupyter-book build`` renders with execution off.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tqdm.auto import tqdm

from .profiles import profile_parameters

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks"
OUTPUTS = ROOT / "book"


def notebook_sources() -> dict[str, Path]:
    """Source notebooks by file stem, in chapter order."""
    return {p.stem: p for p in sorted(SOURCES.glob("[0-9]*.ipynb"))}


def notebook_defaults(stem: str) -> dict:
    """The stored defaults of a notebook: the assignments of its cell tagged
    ``parameters`` (literals only), by name."""
    sources = notebook_sources()
    if stem not in sources:
        raise ValueError(f"unknown notebook {stem!r}; known: {', '.join(sources)}")
    cells = json.loads(sources[stem].read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"{stem} needs exactly one cell tagged 'parameters', has {len(tagged)}")
    tree = ast.parse("".join(tagged[0]["source"]))
    return {target.id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign) for target in node.targets}


def run_notebooks(profile: str, notebooks: list[str] | None = None) -> list[Path]:
    """Execute ``notebooks`` (stems; default all) under ``profile`` into ``book/``."""
    import papermill  # optional dependency: the 'book' extra

    sources = notebook_sources()
    chosen = notebooks or list(sources)
    unknown = sorted(set(chosen) - set(sources))
    if unknown:
        raise ValueError(f"unknown notebooks {unknown}; known: {', '.join(sources)}")
    params = {stem: profile_parameters(profile, stem) for stem in chosen}
    written = []
    for stem in tqdm(chosen, desc=f"notebooks ({profile})", unit="nb"):
        out = OUTPUTS / f"{stem}.ipynb"
        papermill.execute_notebook(
            sources[stem], out, parameters=params[stem], cwd=str(SOURCES),
            kernel_name="python3", progress_bar=False,
        )
        written.append(out)
    return written
