"""Benchmark: wall time of the Baselines chapter's grid under a profile.

Builds the configs the ``03_baselines`` notebook runs under ``--profile``
(from :mod:`hsilib.profiles`, so the two never drift apart), runs them into a
fresh, empty result store with the chosen executor, and prints the wall time
of the whole grid and of each model (summed over scenes and splits).

Run::

    HSILIB_DATA_DIR=/path/to/data python benchmarks/baselines_grid.py --profile quick
    python benchmarks/baselines_grid.py --profile quick --workers 2 --json grid.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--workers", type=int, default=1, help="1: in this process; >1: local process pool")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configs = grid_configs(args.profile)
    with tempfile.TemporaryDirectory() as store:
        executor = local_pool(args.workers) if args.workers > 1 else None
        start = time.perf_counter()
        records = run_grid(configs, executor=executor, store=store, device="cpu")
        total = time.perf_counter() - start
        if executor is not None:
            executor.shutdown()
    per_model: dict[str, float] = defaultdict(float)
    for record in records:
        per_model[record["model_title"]] += record["wall_s"]
    print(f"profile {args.profile}: {len(configs)} runs, workers {args.workers}, torch threads "
          f"{args.threads}, data {sorted({r['data_source'] for r in records})}")
    print(f"{'model':<16} {'run time s (sum)':>16}")
    for title, seconds in sorted(per_model.items(), key=lambda kv: -kv[1]):
        print(f"{title:<16} {seconds:>16.1f}")
    print(f"grid wall time: {total:.1f} s ({total / 60:.1f} min)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"profile": args.profile, "workers": args.workers, "threads": args.threads,
                       "runs": len(configs), "wall_s": total, "per_model_s": per_model}, fh, indent=2)


if __name__ == "__main__":
    main()
