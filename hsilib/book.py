"""Execute the book's notebooks with papermill, one profile at a time.

``notebooks/*.ipynb`` are sources (no outputs); executed copies go to
``book/``, which ``jupyter-book build`` renders with execution off. Before
the first chapter, the plan's one line says what will run and about how
long it takes (:mod:`hsilib.plan`). Figures
are drawn inline whatever ``MPLBACKEND`` says. While a
chapter runs, its grid's progress (which run of how many) is shown on the
terminal (see :mod:`hsilib.progress`). Each chapter's wall time, the machine,
the data source of each scene, the profile and the versions are recorded in
``book/build_info.json``, from which the book's "About this build" page
(``book/about.md``) is generated.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import platform
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from tqdm.auto import tqdm

from .profiles import PAPER_SCENES, TABLE3_MODELS, profile_parameters
from .progress import ENV_PROGRESS

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks"
OUTPUTS = ROOT / "book"
# ipykernel picks the inline backend only where MPLBACKEND is unset: under
# MPLBACKEND=Agg (headless servers, batch systems, CI) a chapter's plt.show()
# would draw nothing. Executed chapters always get the inline backend.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


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


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """Set the environment variable ``name`` (which a kernel started in the
    block inherits) while the block runs."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _progress_shown(stem: str) -> Iterator[None]:
    """Show the progress lines a chapter's kernel writes (``$HSILIB_PROGRESS``)
    as a bar on this terminal while the block runs."""
    fd, path = tempfile.mkstemp(prefix=f"hsilib-{stem}-", suffix=".jsonl")
    os.close(fd)
    bar = tqdm(desc=f"{stem}: runs", unit="run", leave=True)
    stop = threading.Event()

    def show(event: dict) -> None:
        if event["total"] != bar.total or event["done"] < bar.n:  # a new grid began
            bar.reset(total=event["total"])
        bar.n = event["done"]
        bar.set_postfix_str(event["label"], refresh=False)
        bar.refresh()

    def follow() -> None:
        position = 0
        while True:
            finished = stop.is_set()
            with open(path, "rb") as fh:
                fh.seek(position)
                data = fh.read()
            complete = data[:data.rfind(b"\n") + 1]  # a line being written waits
            position += len(complete)
            for line in complete.splitlines():
                show(json.loads(line))
            if finished:
                return
            stop.wait(0.3)

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    try:
        with _environ(ENV_PROGRESS, path):  # the kernel inherits it
            yield
    finally:
        stop.set()
        watcher.join(timeout=5)
        bar.close()
        Path(path).unlink(missing_ok=True)


def machine() -> dict:
    """The machine a build ran on: CPU, cores, torch threads, accelerator."""
    import torch

    from .measure import cpu_info

    return {"cpu": cpu_info()[0], "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
            "platform": platform.platform()}


def data_sources(scenes: list[str]) -> dict[str, str]:
    """What ``data_source="auto"`` uses for each scene on this machine."""
    import warnings

    from .data import TwinDataWarning, load_scene

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TwinDataWarning)
        return {scene: load_scene(scene, "auto").source for scene in scenes}


def precisions() -> dict[str, dict]:
    """What ``precision="auto"`` chose for each torch model of Table 3 on
    this machine, and why (:func:`hsilib.precision.choose`)."""
    from .models import get_model
    from .precision import choose

    return {name: choose(name) for name in TABLE3_MODELS if get_model(name).family == "torch"}


def precision_rows(choices: dict[str, dict]) -> str:
    """The "About this build" page's table of precision choices."""
    rows = []
    for name, choice in choices.items():
        seconds = choice["seconds"]
        if not choice["native_bf16"]:
            why = "bfloat16 not native here (or HSILIB_NATIVE_BF16=0): emulated, it is slower"
        else:
            why = (f"benchmark: {1000 * seconds['fp32']:.0f} ms a training step in fp32, "
                   f"{1000 * seconds['bf16']:.0f} ms in bf16")
        rows.append(f"| {name} | {choice['precision']} | {why} |")
    return "\n".join(rows)


def build_info_path() -> Path:
    return OUTPUTS / "build_info.json"


def read_build_info() -> dict:
    """The recorded builds (empty when none ran here)."""
    path = build_info_path()
    return json.loads(path.read_text()) if path.exists() else {"chapters": {}}


def write_build_info(info: dict) -> None:
    """Write the build record and the "About this build" page it generates."""
    from .experiments.runner import versions

    info = {**info, "machine": machine(), "versions": versions(),
            "data_sources": data_sources(PAPER_SCENES), "precisions": precisions()}
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    build_info_path().write_text(json.dumps(info, indent=1))
    (OUTPUTS / "about.md").write_text(about_page(info))


def about_page(info: dict) -> str:
    """Markdown of the "About this build" page from a build record."""
    from .precision import MIN_SPEEDUP

    chapters = info["chapters"]
    total = sum(entry["seconds"] for entry in chapters.values())
    rows = "\n".join(f"| {stem} | {entry['profile']} | {entry['seconds'] / 60:.1f} | {entry['finished']} |"
                     for stem, entry in chapters.items())
    machine_info, versions_info = info["machine"], info["versions"]
    sources = "\n".join(f"| {scene} | {source} |" for scene, source in info["data_sources"].items())
    return f"""# About this build

Every chapter of this book was executed by `hsilib book run`; this page is
generated from what that run recorded (`book/build_info.json`).

## Chapters

| chapter | profile | wall time (min) | finished (UTC) |
|---|---|---|---|
{rows}

In all: {total / 60:.1f} minutes.

## Machine

| | |
|---|---|
| CPU | {machine_info['cpu']} |
| cores | {machine_info['cores']} |
| torch threads | {machine_info['torch_threads']} |
| accelerator | {machine_info['accelerator']} |
| platform | {machine_info['platform']} |

## Precision

What `precision="auto"` (the default) chose for each network on this
machine: bfloat16 autocast only where the device computes it natively and a
short benchmark of the model's training steps measures it at least
{MIN_SPEEDUP:g} times faster than fp32; fp32 otherwise.

| model | precision | why |
|---|---|---|
{precision_rows(info.get("precisions", dict()))}

## Data

What `data_source="auto"` used for each of the paper's scenes (`twin`: the
offline twin, synthetic spectra over the real ground truth, never a
reproduction of the paper's numbers):

| scene | data |
|---|---|
{sources}

## Versions

{", ".join(f"{name} {version}" for name, version in versions_info.items())}.
"""


def run_notebooks(profile: str, notebooks: list[str] | None = None, scheduler: str | None = None) -> list[Path]:
    """Execute ``notebooks`` (stems; default all) under ``profile`` into
    ``book/``, recording each chapter's wall time for the "About this build"
    page; ``scheduler``, a Dask scheduler's address, runs every chapter's
    grid on that cluster (checked before the first chapter)."""
    import papermill  # optional dependency: the 'book' extra

    from .experiments.runner import ENV_SCHEDULER, cluster
    from .plan import make_plan  # the plan imports this module

    sources = notebook_sources()
    chosen = notebooks or list(sources)
    unknown = sorted(set(chosen) - set(sources))
    if unknown:
        raise ValueError(f"unknown notebooks {unknown}; known: {', '.join(sources)}")
    params = {stem: profile_parameters(profile, stem) for stem in chosen}
    print(make_plan(profile, chosen).summary(), flush=True)
    if scheduler:
        with cluster(scheduler) as client:  # unreachable: a clear error now, not in a chapter
            print(f"grids run on the Dask cluster at {scheduler} ({len(client.scheduler_info()['workers'])} "
                  "workers)", flush=True)
    info = read_build_info()
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    written = []
    for stem in tqdm(chosen, desc=f"notebooks ({profile})", unit="nb"):
        out = OUTPUTS / f"{stem}.ipynb"
        start = time.perf_counter()
        # The kernel inherits the scheduler's address: run_grid reads it.
        on_cluster = _environ(ENV_SCHEDULER, scheduler) if scheduler else contextlib.nullcontext()
        with _environ("MPLBACKEND", INLINE_BACKEND), on_cluster, _progress_shown(stem):
            papermill.execute_notebook(
                sources[stem], out, parameters=params[stem], cwd=str(SOURCES),
                kernel_name="python3", progress_bar=False,
                # The kernel's own log (ipykernel's plain-TCP warning, and the
                # interrupt jupyter_client sends before every shutdown) would
                # cut through the progress bars; a failing cell still stops
                # the run with its traceback.
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        info["chapters"][stem] = {
            "seconds": round(time.perf_counter() - start, 1), "profile": profile,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        info["chapters"] = dict(sorted(info["chapters"].items()))
        write_build_info(info)
        written.append(out)
    return written
