"""Benchmark: how Soft Filter Pruning recovers, epoch by epoch, and why it may not.

Starts from the trained CNN2D of ``--scene``/``--split`` (the quick
profile's base network, from the result store or trained now) and runs SFP's
soft phase (strategy I) at each ``--ratios`` for ``--epochs`` epochs without
a stopping rule, recording after every epoch, on validation pixels only:

* ``val_soft``: the zeroed network in eval mode as training leaves it (what
  SFP validates and keeps): its batch norms hold running statistics gathered
  while the zeroed filters had grown back;
* ``val_recalibrated``: the same weights after re-estimating every batch
  norm's statistics on training inputs of the zeroed network;
* ``regrowth``: mean L2 norm of the zeroed filters just before they
  are zeroed again, over the kept filters';
* ``dead``: zeroed rows of layers without batch norm that got no gradient
  during the epoch (their pre-activation is 0 for every input, so ReLU passes
  no gradient back).

Nothing here reads a test pixel.

    python benchmarks/sfp_recovery.py --scene indian_pines --split disjoint \\
        --ratios 90% 95% 98% --epochs 10 --json sfp.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch

from hsilib.compress.prune import TrainingInputs
from hsilib.compress.prune.criteria.sfp import SoftPruning, recalibrate_batch_norm
from hsilib.compress.prune.widths import target_widths
from hsilib.experiments import per_model_grid
from hsilib.experiments.config import resolve
from hsilib.experiments.data import config_view
from hsilib.experiments.runner import trained_model
from hsilib.train import Callback, fit, predict_scores


class Probe(Callback):
    """After SFP's zeroing at each epoch's end: validation accuracy as is and
    recalibrated; gradients reaching zeroed rows of layers without batch norm."""

    def __init__(self, soft: SoftPruning, view, data, layers_without_norm):
        self.soft, self.view, self.data = soft, view, data
        self.plain = layers_without_norm
        self.rows = []
        self.got_gradient = {name: None for name in self.plain}

    def epoch_start(self, epoch, model):
        self.got_gradient = {name: None for name in self.plain}

    def before_step(self, model):
        for name in self.plain:
            grad = getattr(model, name).weight.grad
            if grad is None or self.soft.kept is None:
                continue
            zeroed = np.setdiff1d(np.arange(grad.shape[0]), self.soft.kept[name])
            moved = grad[zeroed].flatten(1).abs().sum(1).cpu().numpy() > 0
            seen = self.got_gradient[name]
            self.got_gradient[name] = moved if seen is None else seen | moved

    def epoch_end(self, epoch, model):
        data, view = self.data, self.view
        def accuracy(network):
            return float((predict_scores(network, view, data.val_idx).argmax(1) == data.val_y).mean())
        recalibrated = copy.deepcopy(model)
        recalibrate_batch_norm(recalibrated, TrainingInputs(view, data.fit_idx))
        self.rows.append({
            "epoch": epoch, "val_soft": accuracy(model), "val_recalibrated": accuracy(recalibrated),
            "regrowth": self.soft.regrowth[-1] if self.soft.regrowth else None,
            "dead": {n: None if g is None else int((~g).sum()) for n, g in self.got_gradient.items()},
            "zeroed": {n: int(getattr(model, n).weight.shape[0] - len(k)) for n, k in self.soft.kept.items()}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="indian_pines")
    parser.add_argument("--split", default="disjoint")
    parser.add_argument("--ratios", nargs="+", default=["90%", "95%", "98%"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--base-epochs", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    base = resolve(per_model_grid(["cnn2d"], args.base_epochs, scene=[args.scene], split=[args.split],
                                  seed=[0], data_source="auto", precision="auto")[0], "cpu")
    network, record, data = trained_model(base, device="cpu", progress=False)
    view = config_view(base, data, "cpu")
    out = {"scene": args.scene, "split": args.split, "data_source": data.source,
           "base_val": record["convergence"], "runs": []}
    for ratio in args.ratios:
        model = copy.deepcopy(network).train()
        widths = target_widths(model, ratio)
        soft = SoftPruning(widths)
        probe = Probe(soft, view, data, [n for n in widths if getattr(model, n).__class__ is torch.nn.Linear])
        start = time.perf_counter()
        fit(model, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y, epochs=args.epochs,
            lr=base.lr, batch_size=base.batch_size, seed=base.weight_seed,
            progress=False, callbacks=[soft, probe], stop=None)
        run = {"ratio": ratio, "widths": widths, "epochs": probe.rows, "seconds": time.perf_counter() - start}
        out["runs"].append(run)
        for row in probe.rows:
            print(ratio, row["epoch"], f"soft {row['val_soft']:.3f}", f"recal {row['val_recalibrated']:.3f}",
                  f"regrowth {row['regrowth']:.3f}", "dead", row["dead"], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
