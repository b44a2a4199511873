"""Benchmark: where training plateaus, and what a stopping rule costs.

Trains each ``--models`` network from scratch on ``--scene``/``--split`` for
``--epochs`` epochs *without* a stopping rule (fp32, one seed), recording the
validation accuracy and the seconds of every epoch; then replays each
:class:`hsilib.train.Plateau` rule of the grid (``--patience`` x
``--min-gain`` x ``--fraction``) on those curves: the epoch it stops at, the best epoch it
keeps, and the validation accuracy given up against training to the end.
That is how the rule's defaults were chosen: the rule that stops soonest
while giving up (almost) nothing on validation. Nothing here reads a test pixel.

    python benchmarks/plateau.py --scene indian_pines --split disjoint \\
        --models mlp cnn1d cnn2d --epochs 40 --json plateau.json
    python benchmarks/plateau.py --replay plateau.json --patience 3 4 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch

from hsilib.experiments import Config
from hsilib.experiments.config import resolve
from hsilib.experiments.data import config_view, experiment_data
from hsilib.train import Callback, Plateau, fit


class EpochClock(Callback):
    """Seconds of each epoch's training (validation excluded)."""

    def __init__(self):
        self.seconds, self._start = [], 0.0

    def epoch_start(self, epoch, model):
        self._start = time.perf_counter()

    def epoch_end(self, epoch, model):
        self.seconds.append(time.perf_counter() - self._start)


def curve(model: str, scene: str, split: str, epochs: int, seed: int) -> dict:
    """One network's validation curve over ``epochs`` epochs, and its epoch seconds."""
    config = resolve(Config(scene=scene, split=split, model=model, seed=seed, epochs=epochs,
                            precision="fp32"), "cpu")
    data = experiment_data(config)
    view = config_view(config, data, "cpu")
    torch.manual_seed(config.weight_seed)
    network = config.network(data)
    network = network.to(memory_format=network.memory_format)
    clock = EpochClock()
    history = fit(network, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y, epochs=epochs,
                  lr=config.lr, batch_size=config.batch_size, seed=config.weight_seed, progress=True,
                  callbacks=[clock], stop=None)
    return {"model": model, "scene": scene, "split": split, "data_source": data.source,
            "val_oa": history.val_oa, "epoch_s": clock.seconds, "total_s": history.seconds,
            "validation_pixels": len(data.val_idx)}


def replay(val_oa: list[float], rule: Plateau) -> dict:
    """Where ``rule`` stops on ``val_oa`` and what it keeps."""
    for end in range(1, len(val_oa) + 1):
        if rule.reached(val_oa[:end]):
            break
    kept = max(val_oa[:end])
    return {"stop": end, "best": int(np.argmax(val_oa[:end])) + 1, "lost": max(val_oa) - kept,
            "stopped": rule.reached(val_oa[:end])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", default="indian_pines")
    parser.add_argument("--split", default="disjoint")
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn1d", "cnn2d"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--patience", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    parser.add_argument("--min-gain", type=float, nargs="+", default=[0.0, 0.005, 0.01])
    parser.add_argument("--fraction", type=float, nargs="+", default=[0.0, 0.2, 0.3])
    parser.add_argument("--json", help="write the curves here")
    parser.add_argument("--replay", nargs="+", help="curves written by --json: replay them only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.replay:
        curves = [c for path in args.replay for c in json.loads(open(path).read())]
    else:
        curves = [curve(m, args.scene, args.split, args.epochs, args.seed) for m in args.models]
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(curves, fh)
    for c in curves:
        epoch_s = np.median(c["epoch_s"])
        print(f"{c['model']:6s} {c['scene']}/{c['split']} ({c['data_source']}): best val "
              f"{max(c['val_oa']):.4f} at epoch {int(np.argmax(c['val_oa'])) + 1} of "
              f"{len(c['val_oa'])}; {epoch_s:.2f} s an epoch; one validation pixel "
              f"{100 / c['validation_pixels']:.2f} points")
    print("\nrule: mean stop epoch, mean best epoch kept, mean and worst validation points "
          "given up, runs stopped by the rule (of all)")
    for patience, min_gain, fraction in itertools.product(args.patience, args.min_gain, args.fraction):
        rule = Plateau(patience, min_gain, fraction)
        results = [replay(c["val_oa"], rule) for c in curves]
        lost = [100 * r["lost"] for r in results]
        print(f"patience {patience} min_gain {min_gain:.3f} fraction {fraction:.2f}: stop "
              f"{np.mean([r['stop'] for r in results]):5.1f}, best "
              f"{np.mean([r['best'] for r in results]):5.1f}, lost {np.mean(lost):.2f} "
              f"(worst {max(lost):.2f}), stopped {sum(r['stopped'] for r in results)}/"
              f"{len(results)}")

if __name__ == "__main__":
    main()
