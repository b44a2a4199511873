"""What a profile will cost before it runs (``hsilib plan``).

Each chapter's experiments (:mod:`hsilib.chapters`), their dependencies
included and each counted in the first chapter that needs it, by kind; how
many the result store already holds; and an estimate of the time the rest
takes on this machine: each run's most passes over its training pixels
(:data:`PASSES`) times the seconds one training step of the network it
trains takes here, at that network's widths (:data:`TRAINED_WIDTHS`). The
step times come from a short calibration (:func:`hsilib.precision.step_seconds`,
a few steps of each architecture at each width), cached per machine beside
the precision benchmark.

That is the most training a run can do. Runs stop on a validation plateau,
so the plan also gives an expected time: the most, times the share of its
maximum epochs that the store's finished runs of the same kind and model
used (1 where the store has none). Classical models (RF, MLR, SVM), scoring
and measuring are not counted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import pandas as pd

from .book import notebook_defaults, notebook_sources
from .chapters import chapter_experiments
from .compress.distill import get_distiller
from .data import TwinDataWarning, make_split
from .experiments import Experiment, ResultStore
from .experiments.config import resolve
from .experiments.runner import in_waves
from .measure import thread_limit
from .compress.prune import target_widths
from .models import get_model
from .precision import (BENCH_BANDS, BENCH_BATCH, BENCH_CLASSES, cache_path, fastest, machine_id, read_cache,
                        step_seconds, write_cache)
from .profiles import profile_parameters
from .report.convergence import converged
from .train import resolve_device

StepSeconds = Callable[[str, str, "tuple[int, ...] | None"], float]
"""``step(model, precision, widths)``: seconds of one training step of
``model`` at ``widths`` (``None``: the paper's network) in ``precision``."""

# CPU threads a calibration step is timed on (see calibrated_step_seconds).
STEP_THREADS = 1
# A teacher's forward pass, as a share of a training step (forward, backward, update).
TEACHER_SHARE = 1 / 3


def _teachers(e) -> int:
    if e.teachers:
        return len(e.teachers)
    return dict(e.settings).get("teachers", get_distiller(e.method).defaults.get("teachers", 1))


# Each kind's most passes over its training pixels, in training steps of its
# network trained from scratch.
PASSES: dict[str, Callable[[Experiment], float]] = {
    "train": lambda e: e.epochs if get_model(e.model).family == "torch" else 0,
    "sparsity": lambda e: e.base.epochs,
    "prune": lambda e: e.finetune_epochs * {"I": 1, "II": len(get_model(e.base.model).prunable),
                                            "III": e.passes}[e.strategy],
    "quantize": lambda e: e.qat_epochs if e.mode == "qat" else 0,
    "distill": lambda e: (e.epochs or e.base.epochs) * (1 + TEACHER_SHARE * _teachers(e)),
    "lowrank": lambda e: e.finetune_epochs,
}


# The widths of the network each kind trains (a Table 5 ratio or explicit
# widths); kinds not here train their base network's.
TRAINED_WIDTHS: dict[str, Callable[[Experiment], str | tuple[int, ...] | None]] = {
    "train": lambda e: e.widths, "distill": lambda e: e.student,
    "prune": lambda e: None if e.criterion == "sfp" else e.ratio,  # SFP fine-tunes the full network, zeroed
    "lowrank": lambda e: e.ratio,  # a low-rank network has the pruned one's parameter budget
}


@lru_cache(maxsize=None)
def concrete_widths(model: str, widths: str | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """The layer widths of ``model`` at ``widths`` (a Table 5 ratio, or
    widths as given); ``None`` for the paper's network."""
    spec = get_model(model)
    if widths is None or not spec.prunable:
        return None
    if not isinstance(widths, str):
        return tuple(widths)
    full = spec.make(spec.components or BENCH_BANDS, BENCH_CLASSES)
    return tuple(target_widths(full, widths).values())


@lru_cache(maxsize=None)
def training_pixels(scene: str, split: str, seed: int, defects: str, train_fraction: float | None,
                    val_fraction: float) -> int:
    """The pixels a network of this split fits on (its training pixels less validation)."""
    split_ = make_split(scene, split, seed=seed, defects=defects, train_fraction=train_fraction)
    return round(len(split_.train_index()[0]) * (1 - val_fraction))


def calibrated_step_seconds(model: str, precision: str, widths: tuple[int, ...] | None = None,
                            device: str = "auto") -> float:
    """Seconds of one training step (batch :data:`hsilib.precision.BENCH_BATCH`)
    of ``model`` at ``widths`` (``None``: the paper's) in ``precision`` here:
    measured once per machine, then cached. Narrow networks are timed, not
    scaled by their multiply-accumulates: their small layers run far below
    the processor's peak (CNN2D at Table 5's 98% widths: 5% of the full
    network's MACs, 12% of its fp32 step time and 19% in bf16, one thread).

    Steps are timed on one CPU thread: on a busy 2-core machine two threads
    timed an LSTM step 190 times (and a CNN-1D step 65 times) slower than
    one thread did, and that was cached as the machine's speed. One thread
    is what the chapters' parallel workers use and at most what a run on an
    idle machine takes."""
    device_ = resolve_device(device)
    name = model if widths is None else f"{model}@{','.join(map(str, widths))}"
    path = cache_path().with_name("steps.json")
    entry = f"{machine_id(device_)}/{name}/{precision}/{STEP_THREADS} thread"
    cache = read_cache(path)
    if not isinstance(cache.get(entry), float):
        with thread_limit(STEP_THREADS):
            seconds = fastest(step_seconds(model, precision, device_, widths))
        cache = {**read_cache(path), entry: seconds}
        write_cache(path, cache)
    return cache[entry]


def estimate_seconds(experiment: Experiment, step: StepSeconds) -> float:
    """Most seconds ``experiment`` (resolved) trains, given ``step(model,
    precision, widths)``, the seconds of one training step."""
    passes = PASSES[experiment.kind](experiment)
    if not passes:
        return 0.0
    net = experiment.network_config()
    pixels = training_pixels(net.scene, net.split, net.seed, net.defects, net.train_fraction, net.val_fraction)
    widths = TRAINED_WIDTHS.get(experiment.kind, lambda e: None)(experiment)
    return passes * math.ceil(pixels / BENCH_BATCH) * step(net.model, net.precision,
                                                         concrete_widths(net.model, widths))


def epoch_shares(records: list[dict]) -> dict[tuple[str, str], float]:
    """The share of their maximum epochs that stored runs trained, by kind
    and model (their epochs run over their maxima, summed)."""
    totals: dict[tuple[str, str], list[int]] = {}
    for record in records:
        convergence = record.get("convergence") or {}
        if convergence.get("max_epochs"):
            config = record["config"]
            while "model" not in config and isinstance(config.get("base"), dict):
                config = config["base"]
            model = config.get("model", "")
            run, most = totals.setdefault((record["kind"], model), [0, 0])
            totals[(record["kind"], model)] = [run + convergence["epochs_run"], most + convergence["max_epochs"]]
    return {group: run / most for group, (run, most) in totals.items()}


def duration(seconds: float) -> str:
    """Seconds in words a reader takes in at a glance: "40 s", "12 min", "3.4 h"."""
    if seconds < 100:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 6000 else f"{seconds / 3600:.1f} h"


@dataclass
class Plan:
    """Every run of a profile: one row per run (``chapter``, ``kind``,
    ``model``, ``label``, ``key``, ``stored``; ``converged``, whether a stored
    run that trained stopped on a validation plateau in every loop, else ``None``;
    ``seconds``, the most it trains, and ``expected``, that times the
    store's epoch share), each in the first chapter that needs it."""

    profile: str
    rows: pd.DataFrame = field(repr=False)
    # whether stored runs gave epoch shares (else ``expected`` is the most)
    informed: bool = True

    def by_chapter(self) -> pd.DataFrame:
        """Runs, stored and left per chapter and kind, with the estimate of what is left."""
        rows, todo = self.rows, ~self.rows["stored"]
        left = rows.assign(left=todo, seconds=rows["seconds"].where(todo, 0), expected=rows["expected"].where(todo, 0))
        left = left.assign(trained=rows["converged"].notna(), plateau=rows["converged"] == True)  # noqa: E712
        table = left.groupby(["chapter", "kind"], sort=False).agg(
            runs=("label", "size"), stored=("stored", "sum"), left=("left", "sum"), trained=("trained", "sum"),
            plateau=("plateau", "sum"), seconds=("seconds", "sum"), expected=("expected", "sum"))
        return table.astype({"runs": int, "stored": int, "left": int, "trained": int, "plateau": int})

    def plateau_share(self) -> str:
        """One line: how many of the stored runs that trained stopped on a
        validation plateau in every training loop (the rest stopped at a
        maximum at least once)."""
        table = self.by_chapter()
        trained, plateau = int(table["trained"].sum()), int(table["plateau"].sum())
        share = f" ({100 * plateau / trained:.1f}%)" if trained else ""
        return (f"stored runs that trained: {plateau} of {trained} stopped on a validation plateau{share}, "
                f"{trained - plateau} at their maximum epochs")

    def largest(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` longest runs still to do."""
        return self.rows[~self.rows["stored"]].nlargest(n, "expected")

    def summary(self) -> str:
        """One line: runs, stored, and the estimate of what is left."""
        table = self.by_chapter()
        counts = (f"plan ({self.profile}): {table['runs'].sum()} runs, {table['stored'].sum()} stored, "
                  f"{table['left'].sum()} to run")
        most = f"{duration(table['seconds'].sum())} at most"
        estimate = (f"about {duration(table['expected'].sum())} of training on this machine, {most}" if self.informed else
                    f"{most} of training on this machine (runs stop earlier on a plateau; no stored run tells how much yet)")
        return f"{counts}: {estimate} (hsilib plan --profile {self.profile})"


def make_plan(profile: str, notebooks: list[str] | None = None, store: ResultStore | None = None,
              device: str = "auto", step: StepSeconds | None = None) -> Plan:
    """The plan of ``notebooks`` (default: all) under ``profile``, against
    ``store`` (default: the user's); ``step(model, precision, widths)`` gives
    a training step's seconds (default: :func:`calibrated_step_seconds`)."""
    sources = notebook_sources()
    chosen = notebooks or list(sources)
    unknown = sorted(set(chosen) - set(sources))
    if unknown:
        raise ValueError(f"unknown notebooks {unknown}; known: {', '.join(sources)}")
    chapters = {stem: chapter_experiments(stem, {**notebook_defaults(stem), **profile_parameters(profile, stem)})
                for stem in chosen}
    return plan_of(profile, chapters, store, device, step)


def plan_of(profile: str, chapters: dict[str, list[Experiment]], store: ResultStore | None = None,
            device: str = "auto", step: StepSeconds | None = None) -> Plan:
    """The plan of ``chapters`` (each chapter's experiments, in chapter
    order): see :func:`make_plan`."""
    store = store or ResultStore()
    stored = {r["key"]: r for r in store.records()}  # read once: for the shares and every row
    shares = epoch_shares(list(stored.values()))
    step = step or (lambda model, precision, widths: calibrated_step_seconds(model, precision, widths, device))
    rows, seen = [], set()
    for stem, unresolved in chapters.items():
        with warnings.catch_warnings():  # the chapters name their data sources
            warnings.simplefilter("ignore", TwinDataWarning)
            experiments = [resolve(e, device) for e in unresolved]
        for experiment in (e for wave in in_waves(experiments) for e in wave):
            key = experiment.key()
            if key in seen:
                continue
            seen.add(key)
            model, most = experiment.network_config().model, estimate_seconds(experiment, step)
            record = stored.get(key)
            rows.append({"chapter": stem, "kind": experiment.kind, "model": model, "label": experiment.label(),
                         "key": key, "stored": record is not None,
                         "converged": None if record is None else converged(record), "seconds": most,
                         "expected": most * shares.get((experiment.kind, model), 1.0)})
    columns = ["chapter", "kind", "model", "label", "key", "stored", "converged", "seconds", "expected"]
    return Plan(profile, pd.DataFrame(rows, columns=columns).astype(
        {"stored": bool, "seconds": float, "expected": float}), informed=bool(shares))


def profile_keys(plan: Plan, store: ResultStore) -> set[str]:
    """The keys of a plan's stored runs and of the stored runs built only on
    them (the Discussion's best recipes on other scenes, which it chooses
    from results): what a book of that profile reads."""
    keys = set(plan.rows.loc[plan.rows["stored"], "key"])
    records = store.records()
    while extra := {r["key"] for r in records if r["key"] not in keys and r["dependencies"]
                    and set(r["dependencies"]) <= keys}:
        keys |= extra
    return keys
