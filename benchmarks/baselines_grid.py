"""Benchmark: wall time of the Baselines chapter's grid under a profile.

Builds the configs the ``03_baselines`` notebook runs under ``--profile``
(from :mod:`hsilib.profiles`, so the two never drift apart), runs them into a
fresh, empty result store with the chosen executor, and prints the wall time
of the whole grid and of each model (summed over scenes and splits), split
into training (the epochs, with their validation), measurement (latency and
throughput, where the record has it) and the rest (data, test scoring).

``--from-store DIR`` summarizes the records a chapter run left in a store
instead of running the grid, and ``--compare BEFORE.json`` prints each
model's time beside an earlier result and their ratio, so the effect of a
change is read off one table::

    HSILIB_DATA_DIR=/path/to/data python benchmarks/baselines_grid.py --profile quick
    python benchmarks/baselines_grid.py --profile quick --workers 2 --json grid.json
    python benchmarks/baselines_grid.py --from-store old-store --json before.json
    python benchmarks/baselines_grid.py --from-store new-store --compare before.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from hsilib.book import notebook_defaults
from hsilib.experiments import Config, local_pool, per_model_grid, run_grid
from hsilib.profiles import profile_parameters


def grid_configs(profile: str) -> list[Config]:
    """The configs ``03_baselines`` runs under ``profile`` (leak runs included):
    its stored defaults overridden by the profile, crossed as the notebook does."""
    p = {**notebook_defaults("03_baselines"), **profile_parameters(profile, "03_baselines")}
    common = {"scene": p["dataset"], "split": p["split"], "seed": p["seeds"],
              "data_source": p["data_source"], "precision": p["precision"]}
    epochs = (p["epochs"], p["epochs_by_model"])
    return (per_model_grid(p["models"], *epochs, **common)
            + per_model_grid(p["leak_models"], *epochs, **common, pca_fit="image"))


def per_model(records: list[dict]) -> dict[str, dict[str, float]]:
    """Seconds per model title, summed over its runs: all, training,
    measurement (0 when records predate its timing) and the rest."""
    times: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        entry = times[record["model_title"]]
        entry["run"] += record["wall_s"]
        entry["train"] += record.get("history", {}).get("seconds", 0.0)
        entry["measure"] += record.get("measure_s", 0.0)
    for entry in times.values():
        entry["other"] = entry["run"] - entry["train"] - entry["measure"]
    return {title: dict(entry) for title, entry in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--workers", type=int, default=1, help="1: in this process; >1: local process pool")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--from-store", help="summarize the train records of this store instead of running")
    parser.add_argument("--compare", help="a JSON written earlier by --json: print its times beside these")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.from_store:
        records = [json.loads(p.read_text()) for p in sorted(Path(args.from_store).glob("*.json"))]
        records = [r for r in records if r.get("kind", "train") == "train"]
        total, runs = sum(r["wall_s"] for r in records), len(records)
        print(f"store {args.from_store}: {runs} runs")
    else:
        configs = grid_configs(args.profile)
        with tempfile.TemporaryDirectory() as store:
            executor = local_pool(args.workers) if args.workers > 1 else None
            start = time.perf_counter()
            records = run_grid(configs, executor=executor, store=store, device="cpu")
            total = time.perf_counter() - start
            if executor is not None:
                executor.shutdown()
        runs = len(configs)
        print(f"profile {args.profile}: {runs} runs, workers {args.workers}, torch threads "
              f"{args.threads}, data {sorted({r['data_source'] for r in records})}")
    times = per_model(records)
    before = json.loads(Path(args.compare).read_text())["per_model_s"] if args.compare else {}
    header = f"{'model':<16} {'run s':>8} {'train s':>8} {'measure s':>9} {'other s':>8}"
    print(header + (f" {'before s':>9} {'after/before':>12}" if before else ""))
    for title, entry in sorted(times.items(), key=lambda kv: -kv[1]["run"]):
        line = (f"{title:<16} {entry['run']:>8.1f} {entry['train']:>8.1f} {entry['measure']:>9.1f} "
                f"{entry['other']:>8.1f}")
        if title in before:
            line += f" {before[title]['run']:>9.1f} {entry['run'] / before[title]['run']:>12.2f}"
        print(line)
    print(f"{'sum of runs' if args.from_store else 'grid wall time'}: {total:.1f} s ({total / 60:.1f} min)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"profile": args.profile, "workers": args.workers, "threads": args.threads,
                       "runs": runs, "wall_s": total, "per_model_s": times}, fh, indent=2)


if __name__ == "__main__":
    main()
