"""Benchmark: CNN2D training throughput, PatchSampler vs DataLoader, and bf16 vs fp32.

The paper's setting: Indian Pines, disjoint split, water bands dropped, 40 PCA
components fitted on the training pixels, 19x19 patches, CNN2D, batch 100,
Adam lr 1e-3; torch threads fixed by ``--threads``; everything seeded.

1. Batch production. ``sampler``: :class:`hsilib.data.PatchSampler` pads the
   cube once and gathers each batch by pixel index (as :func:`hsilib.train.fit`
   does). ``dataloader``: the conventional pipeline, every training patch built
   up front as one (N, 40, 19, 19) float32 tensor (a vectorised
   ``sliding_window_view`` gather, timed as setup) fed through ``TensorDataset``
   + ``DataLoader`` with ``num_workers=0``, and ``dataloader_w2`` with 2 workers
   (forked afresh every epoch, the default). All variants run the *same plain
   training loop* (not ``fit``: no validation, no weight copies) from the same
   initial weights in the same shuffled order (a ``BatchSampler`` over a seeded
   ``RandomSampler``, what ``DataLoader(shuffle=True)`` builds), so they end on
   the same loss up to rounding. After a warm-up of a few batches on a throwaway
   copy of each model, the variants take turns epoch by epoch, so that load from
   elsewhere on the machine hits them alike. ``batches s``: one epoch of batch
   production alone, no model (fastest of 5, in turns too); ``model s`` = train
   s - epochs x batches s (rough with workers, which overlap the model). The
   sampler's batches have channels-last strides, the loader's plain NCHW; conv
   layers take both, not necessarily at the same speed, so ``sampler_nchw``
   (the sampler's batches made contiguous) separates gather from memory format.

2. ``fp32`` vs ``bf16`` autocast through :func:`hsilib.train.fit` (validation
   set from ``validation_split(train, 0.1, seed)``), then
   :func:`hsilib.train.predict_scores` on the test set at the same precision.
   Training samples/s use ``fit``'s seconds, which include its per-epoch
   validation pass. Each fit follows a one-epoch warm-up ``fit`` on a few
   hundred pixels; the precisions take turns for ``--rounds`` rounds (fp32
   first, then bf16 first, ...), round ``i`` with seed ``--seed + i``; the
   fastest round of each is reported, and the test OA as mean ± std over the
   rounds' seeds, to tell whether bf16 costs accuracy beyond seed noise.

Run (the real cubes are not needed; the twin has the real shape)::

    HSILIB_DATA_DIR=/path/to/data HSILIB_OFFLINE=1 python benchmarks/training_throughput.py
    python benchmarks/training_throughput.py --quick --json results.json
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import time

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from hsilib.data import (DATA_SOURCES, PatchSampler, Preprocessor, drop_water_bands, load_scene,
                         make_split)
from hsilib.measure import cpu_info
from hsilib.models import CNN2D
from hsilib.train import fit, predict_scores, validation_split

SCENE, PATCH, COMPONENTS, BATCH, LR = "indian_pines", 19, 40, 100, 1e-3  # the paper's setting
# name: DataLoader workers (None: PatchSampler)
VARIANTS = {"sampler": None, "sampler_nchw": None, "dataloader": 0, "dataloader_w2": 2}
WARMUP_BATCHES = 3
BATCH_ROUNDS = 5  # epochs of batch production alone per variant; the fastest is reported
PRECISIONS = ("fp32", "bf16")


def materialize(features: np.ndarray, index: np.ndarray) -> torch.Tensor:
    """Every patch up front: (N, C, s, s) float32, same reflect padding as the sampler."""
    r = PATCH // 2
    padded = np.pad(features, ((r, r), (r, r), (0, 0)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (PATCH, PATCH), axis=(0, 1))
    rows, cols = np.divmod(index, features.shape[1])
    return torch.from_numpy(windows[rows, cols])  # fancy index copies


def shuffled_batches(n: int, seed: int) -> BatchSampler:
    """The batch order of every variant: what ``DataLoader(shuffle=True)`` uses."""
    return BatchSampler(RandomSampler(range(n), generator=torch.Generator().manual_seed(seed)),
                        BATCH, drop_last=False)


class SamplerLoader:
    """Like a DataLoader, each pass is one epoch: batches ``view(pixel indices)``."""

    def __init__(self, view, index, labels, order: BatchSampler):
        self.view, self.index, self.labels, self.order = view, index, labels, order

    def __iter__(self):
        return ((self.view(self.index[b]), self.labels[b]) for b in self.order)


def make_loaders(variant: str, features, index, labels, args):
    """Set up a variant; return a function making a fresh loader (same order every time)."""
    index, labels = torch.from_numpy(index), torch.from_numpy(labels).long()
    n, workers = len(index), VARIANTS[variant]
    if workers is None:
        sampler = PatchSampler(features, PATCH)
        view = sampler.patches if variant == "sampler" else lambda i: sampler.patches(i).contiguous()
        return lambda: SamplerLoader(view, index, labels, shuffled_batches(n, args.seed))
    dataset = TensorDataset(materialize(features, index.numpy()), labels)
    return lambda: DataLoader(dataset, batch_sampler=shuffled_batches(n, args.seed),
                              num_workers=workers)


def train_epoch(model, optimizer, batches) -> tuple[float, float]:
    """One epoch of the plain Adam + cross-entropy loop: (seconds, mean loss)."""
    model.train()
    start = time.perf_counter()
    total, seen = 0.0, 0
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(y), seen + len(y)
    return time.perf_counter() - start, total / seen


def bench_batches(features, index, labels, n_classes, args) -> list[dict]:
    """All variants, interleaved epoch by epoch so that load from elsewhere on
    the machine hits them alike."""
    rows, loaders, runs = {}, {}, {}
    for v in VARIANTS:
        start = time.perf_counter()
        loaders[v] = make_loaders(v, features, index, labels, args)
        rows[v] = dict(variant=v, setup_s=time.perf_counter() - start, batches_s=[], train_s=0.0)
        torch.manual_seed(args.seed)
        model = CNN2D(COMPONENTS, n_classes, patch_size=PATCH)
        warm = copy.deepcopy(model)
        train_epoch(warm, torch.optim.Adam(warm.parameters(), lr=LR),
                    itertools.islice(loaders[v](), WARMUP_BATCHES))
        runs[v] = (model, torch.optim.Adam(model.parameters(), lr=LR), loaders[v]())
    for _ in range(BATCH_ROUNDS):  # batch production alone, no model
        for v in VARIANTS:
            start = time.perf_counter()
            for _ in loaders[v]():
                pass
            rows[v]["batches_s"].append(time.perf_counter() - start)
    for _ in range(args.epochs):
        for v, (model, optimizer, loader) in runs.items():
            seconds, rows[v]["last_loss"] = train_epoch(model, optimizer, loader)
            rows[v]["train_s"] += seconds
    for r in rows.values():
        r["batches_s"] = min(r["batches_s"])
        r["model_s"] = r["train_s"] - args.epochs * r["batches_s"]
        r["samples_per_s"] = len(index) * args.epochs / r["train_s"]
    return list(rows.values())


def bench_precision(precision: str, parts, n_classes: int, seed: int, args) -> dict:
    """One warm-up fit on a few hundred pixels, then fit and predict_scores, timed."""
    sampler, fit_idx, fit_y, val_idx, val_y, test_idx, test_y = parts
    kw = dict(lr=LR, batch_size=BATCH, seed=seed, precision=precision, progress=False)
    fit(CNN2D(COMPONENTS, n_classes, patch_size=PATCH), sampler.patches,
        fit_idx[:300], fit_y[:300], val_idx[:50], val_y[:50], epochs=1, **kw)
    torch.manual_seed(seed)
    model = CNN2D(COMPONENTS, n_classes, patch_size=PATCH)
    history = fit(model, sampler.patches, fit_idx, fit_y, val_idx, val_y, epochs=args.epochs, **kw)
    start = time.perf_counter()
    scores = predict_scores(model, sampler.patches, test_idx, precision=precision)
    return dict(fit_s=history.seconds, infer_s=time.perf_counter() - start,
                test_oa=float((scores.argmax(axis=1) == test_y).mean()))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-source", default="twin", choices=DATA_SOURCES)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per variant and precision")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--rounds", type=int, default=2,
                   help="fits per precision (seeds seed, seed+1, ...), in alternating order; "
                        "the fastest time and the mean ± std test OA are reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="fast check: 1 epoch, 500 training and 1000 test pixels")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = 1
    torch.set_num_threads(args.threads)

    cpu, flags = cpu_info()
    native_bf16 = sorted(flags & {"avx512_bf16", "amx_bf16"})
    data = load_scene(SCENE, args.data_source)
    split = make_split(SCENE, "disjoint", seed=args.seed)
    train_idx, train_y = split.train_index()
    test_idx, test_y = split.test_index()
    if args.quick:
        keep = np.sort(np.random.default_rng(args.seed).choice(len(train_idx), 500, replace=False))
        train_idx, train_y = train_idx[keep], train_y[keep]
        test_idx, test_y = test_idx[:1000], test_y[:1000]
    cube = drop_water_bands(data.cube, data.scene)
    features = Preprocessor(COMPONENTS).fit_transform(cube, train_idx)
    some = train_idx[:: max(1, len(train_idx) // 200)]
    assert torch.equal(PatchSampler(features, PATCH).patches(some), materialize(features, some)), \
        "sampler and materialized patches differ"

    header = dict(torch=torch.__version__, threads=args.threads, cpu=cpu, cpu_count=os.cpu_count(),
                  load_average=os.getloadavg()[0], mkldnn=torch.backends.mkldnn.is_available(),
                  native_bf16_flags=native_bf16, data_source=data.source_label, args=vars(args))
    print(f"torch {torch.__version__}, torch threads {args.threads}, CPU {cpu} ({os.cpu_count()} "
          f"cores), load average {header['load_average']:.2f}")
    print(f"mkldnn available: {header['mkldnn']}; native bf16 CPU flags: "
          f"{', '.join(native_bf16) or 'none (bf16 autocast is emulated, usually slower)'}")
    print(f"data: {SCENE}, {data.source_label}; disjoint split, {len(train_idx)} training / "
          f"{len(test_idx)} test pixels; {COMPONENTS} PCA components (fitted on training pixels), "
          f"{PATCH}x{PATCH} patches, batch {BATCH}, Adam lr {LR}, {args.epochs} timed epoch(s), "
          f"seed {args.seed}\n")

    rows = bench_batches(features, train_idx, train_y, data.scene.n_classes, args)
    head = (f"{'variant':<15}{'setup s':>9}{'train s':>9}{'samples/s':>11}{'last loss':>11}"
            f"{'batches s':>11}{'model s':>9}")
    print("1. batch production, same plain fp32 training loop\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['variant']:<15}{r['setup_s']:>9.3f}{r['train_s']:>9.2f}{r['samples_per_s']:>11.1f}"
              f"{r['last_loss']:>11.4f}{r['batches_s']:>11.3f}{r['model_s']:>9.2f}")
    s = rows[0]
    for r in rows[1:]:
        total = (r["setup_s"] + r["train_s"]) / (s["setup_s"] + s["train_s"])
        print(f"  sampler / {r['variant']:<14} training samples/s "
              f"x{s['samples_per_s'] / r['samples_per_s']:.3f}, batch production alone "
              f"x{r['batches_s'] / s['batches_s']:.2f}, setup + training x{total:.3f}")
    print("  (ratios > 1: the sampler is faster; batches s: one epoch of batches, no model)")

    fit_idx, fit_y, val_idx, val_y = validation_split(train_idx, train_y, 0.1, args.seed)
    parts = (PatchSampler(features, PATCH), fit_idx, fit_y, val_idx, val_y, test_idx, test_y)
    rounds = {q: [] for q in PRECISIONS}
    for i in range(args.rounds):  # alternate the order: fp32, bf16, then bf16, fp32, ...
        for q in PRECISIONS[::1 if i % 2 == 0 else -1]:
            rounds[q].append(bench_precision(q, parts, data.scene.n_classes, args.seed + i, args))
    precisions = []
    for q, runs in rounds.items():
        fit_s, infer_s = min(r["fit_s"] for r in runs), min(r["infer_s"] for r in runs)
        precisions.append(dict(precision=q, fit_s=fit_s, infer_s=infer_s,
                               train_samples_per_s=len(fit_idx) * args.epochs / fit_s,
                               infer_samples_per_s=len(test_idx) / infer_s,
                               test_oa=float(np.mean([r["test_oa"] for r in runs])),
                               test_oa_std=float(np.std([r["test_oa"] for r in runs], ddof=1))
                               if len(runs) > 1 else 0.0, rounds=runs))
    head = (f"{'precision':<11}{'fit s':>8}{'train samples/s':>17}{'infer s':>9}"
            f"{'infer samples/s':>17}{'test OA (mean ± std over seeds)':>33}")
    print(f"\n2. precision: hsilib.train.fit on {len(fit_idx)} pixels (+{len(val_idx)} validation), "
          f"predict_scores on {len(test_idx)} test pixels; fastest of {args.rounds} round(s)\n"
          + head + "\n" + "-" * len(head))
    for r in precisions:
        print(f"{r['precision']:<11}{r['fit_s']:>8.2f}{r['train_samples_per_s']:>17.1f}"
              f"{r['infer_s']:>9.2f}{r['infer_samples_per_s']:>17.1f}"
              f"{r['test_oa']:>24.4f} ± {r['test_oa_std']:.4f}")
    f32, b16 = precisions
    print(f"  bf16 / fp32 speed-up: training "
          f"x{b16['train_samples_per_s'] / f32['train_samples_per_s']:.3f}, inference "
          f"x{b16['infer_samples_per_s'] / f32['infer_samples_per_s']:.3f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(header=header, batch_production=rows, precision=precisions), f, indent=2)


if __name__ == "__main__":
    main()
