"""Benchmark: scoring test pixels over the image at once (hsilib.dense) against patch by patch.

For each scene's test pixels (the disjoint split) and each patch network
(CNN2D, a 95%-pruned CNN2D, CNN3D; untrained weights, eval mode: the cost
does not depend on the values), times :func:`hsilib.train.predict_scores`
(which scores over the image where that is cheaper) and the plain
patch-by-patch loop in the same process, in turns, fastest of ``--rounds``;
reports the ratio and the largest difference of the scores. fp32, torch
threads as ``--threads``.

    HSILIB_DATA_DIR=../shared/data python benchmarks/dense_scoring.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hsilib.experiments import Config
from hsilib.experiments.config import resolve
from hsilib.experiments.data import config_view, experiment_data
from hsilib.measure import cpu_info
from hsilib.models import build_model
from hsilib.train import PREDICT_BATCH, eval_mode, predict_scores

NETWORKS = {"CNN2D": ("cnn2d", None), "CNN2D 95%": ("cnn2d", (10, 20, 20)), "CNN3D": ("cnn3d", None)}


def patch_by_patch(model, view, index):
    with torch.inference_mode(), eval_mode(model):
        return torch.cat([model(view(index[i:i + PREDICT_BATCH]))
                          for i in range(0, len(index), PREDICT_BATCH)]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", nargs="+", default=["indian_pines", "pavia_university"])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_info()[0]}, {args.threads} thread(s), fp32")
    print(f"{'scene':18} {'source':6} {'network':10} {'pixels':>7} {'patches s':>10} {'image s':>8} "
          f"{'ratio':>6} {'max |diff|':>10}")
    for scene in args.scenes:
        for title in args.networks:
            name, widths = NETWORKS[title]
            config = resolve(Config(scene=scene, split="disjoint", model=name, precision="fp32"), "cpu")
            data = experiment_data(config)
            view = config_view(config, data, "cpu")
            torch.manual_seed(0)
            model = build_model(name, data.features.shape[2], data.n_classes, widths=widths).eval()
            model = model.to(memory_format=model.memory_format)
            index = data.test_idx
            times = {"patches": [], "image": []}
            for _ in range(args.rounds):
                start = time.perf_counter()
                expected = patch_by_patch(model, view, index)
                times["patches"].append(time.perf_counter() - start)
                start = time.perf_counter()
                got = predict_scores(model, view, index)
                times["image"].append(time.perf_counter() - start)
            slow, fast = min(times["patches"]), min(times["image"])
            print(f"{scene:18} {data.source:6} {title:10} {len(index):>7} {slow:>10.2f} {fast:>8.2f} "
                  f"{slow / fast:>6.1f} {np.abs(got - expected).max():>10.1e}", flush=True)


if __name__ == "__main__":
    main()
