"""Benchmark: device-resident ``PatchSampler`` versus materialising every patch.

Two ways to feed (N, C, s, s) float32 patch batches to a model:

* ``sampler``: :class:`hsilib.data.PatchSampler` pads the preprocessed cube
  once and gathers each batch by index. Its batches are (N, C, s, s) tensors
  with channels-last strides (what conv layers take as is); ``sampler_nchw``
  adds ``.contiguous()`` for a model that needs plain NCHW memory;
* ``naive``: the (C, s, s) patch of every labelled pixel is built up front as
  one (N_pixels, C, s, s) array (a vectorised ``sliding_window_view`` gather,
  the fastest way to build it), and batches are indexed from it.

For each scene, every labelled ground-truth pixel (train + test of the random
split, which is exactly the labelled pixels) is visited once per epoch in
shuffled batches; each batch is a float32 torch tensor of shape (N, C, s, s). Data are loaded with hsilib itself (``load_scene(.., "twin")``,
``make_split``, ``Preprocessor`` fitted on the training pixels).

Each approach runs in its own fresh spawned process, so its peak memory is its
own. Peak memory is the child's peak RSS minus a baseline taken after imports
and data loading, just before the patches are built; on Linux, freed heap is
returned to the OS (``malloc_trim``) and the peak (``VmHWM``) is reset at the
baseline (``/proc/self/clear_refs``), so the transient memory of loading and
PCA hides nothing that follows. Times: ``setup`` (build the sampler
or the patch array), ``epoch`` (median over ``--repeats`` epochs of batch
gathering), ``total`` = setup + one epoch.

Run (the real cubes are not needed; the twin has the real shape)::

    HSILIB_DATA_DIR=/path/to/data python benchmarks/patch_sampler.py
    python benchmarks/patch_sampler.py --scenes indian_pines pavia_university --repeats 5
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch

from hsilib.data import PatchSampler, Preprocessor, drop_water_bands, load_scene, make_split

APPROACHES = ("sampler", "sampler_nchw", "naive")
MiB = 2**20


def load_features(name: str, components: int, seed: int):
    """(H, W, C) float32 features and the flat indices of all labelled pixels."""
    data = load_scene(name, "twin")
    split = make_split(name, "random", seed=seed)
    train, _ = split.train_index()
    test, _ = split.test_index()
    cube = drop_water_bands(data.cube, data.scene)
    features = Preprocessor(n_components=components).fit_transform(cube, train)
    return features, np.union1d(train, test), data.source_label


def naive_patches(features: np.ndarray, index: np.ndarray, patch: int) -> torch.Tensor:
    """Every patch up front: (N, C, s, s) float32, same reflect padding as the sampler."""
    r = patch // 2
    padded = np.pad(features, ((r, r), (r, r), (0, 0)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (patch, patch), axis=(0, 1))
    rows, cols = np.divmod(index, features.shape[1])
    return torch.from_numpy(windows[rows, cols])  # fancy index copies: (N, C, s, s)


def peak_rss() -> int:
    """Peak resident set of this process, bytes.

    Linux: ``VmHWM`` of /proc/self/status, which ``reset_peak`` resets. Not
    ``ru_maxrss``: after fork + exec (the spawn start method) it also keeps the
    parent's peak at the fork, which no reset clears."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def reset_peak() -> bool:
    """Return freed heap to the OS (glibc), then reset the peak RSS to the
    current RSS (Linux only); True if the reset worked. Without the trim, memory
    freed after loading stays resident and new allocations reuse it unseen."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run_one(approach: str, name: str, args: argparse.Namespace) -> dict:
    """One approach on one scene; meant to run in a fresh process."""
    torch.set_num_threads(args.threads)
    features, index, source = load_features(name, args.components, args.seed)
    was_reset = reset_peak()
    baseline = peak_rss()

    t0 = time.perf_counter()
    if approach.startswith("sampler"):
        sampler = PatchSampler(features, args.patch)
        nchw = approach == "sampler_nchw"
        def batch(idx):  # flat pixel indices
            x = sampler.patches(idx)
            return x.contiguous() if nchw else x
    else:
        patches = naive_patches(features, index, args.patch)
        def batch(idx):  # positions in the patch array
            return patches.index_select(0, idx)
    setup = time.perf_counter() - t0

    pixels = torch.from_numpy(index)
    epochs = []
    for rep in range(args.repeats):
        order = torch.randperm(len(index), generator=torch.Generator().manual_seed(args.seed + rep))
        keys = order if approach == "naive" else pixels[order]
        t0 = time.perf_counter()
        for start in range(0, len(keys), args.batch):
            x = batch(keys[start:start + args.batch])
            assert x.dtype == torch.float32 and x.dim() == 4 and (
                x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
        epochs.append(time.perf_counter() - t0)
    peak = peak_rss()
    return dict(approach=approach, scene=name, n=len(index), shape=tuple(x.shape[1:]),
                setup=setup, epoch=statistics.median(epochs), peak=peak - baseline,
                baseline=baseline, absolute_peak=peak, was_reset=was_reset,
                threads=torch.get_num_threads(), source=source)


def check_same(name: str, args: argparse.Namespace) -> None:
    """Both approaches give the same patches (on a few hundred pixels)."""
    features, index, _ = load_features(name, args.components, args.seed)
    some = index[:: max(1, len(index) // 300)]
    a = PatchSampler(features, args.patch).patches(some)
    b = naive_patches(features, some, args.patch)
    if not torch.equal(a, b):
        raise AssertionError(f"{name}: sampler and naive patches differ")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", nargs="+", default=["indian_pines", "pavia_university"])
    p.add_argument("--patch", type=int, default=19, help="patch side s (odd)")
    p.add_argument("--components", type=int, default=40, help="PCA components C")
    p.add_argument("--batch", type=int, default=100, help="batch size")
    p.add_argument("--repeats", type=int, default=5, help="epochs timed; the median is reported")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in each child")
    p.add_argument("--seed", type=int, default=0, help="split and shuffle seed")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()} {platform.system()}, cpu_count={os.cpu_count()}, "
          f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"torch threads={args.threads}, load average {os.getloadavg()[0]:.2f}")
    print(f"data: load_scene(name, 'twin') -- synthetic twin cubes of the real shape over the "
          f"real ground truth; HSILIB_DATA_DIR={os.environ.get('HSILIB_DATA_DIR', '(unset)')}")
    print(f"setup: patch {args.patch}, {args.components} PCA components, batch {args.batch}, "
          f"all labelled pixels, shuffled; epoch = median of {args.repeats}; "
          f"each approach in a fresh spawned process\n")

    results = []
    for name in args.scenes:
        check_same(name, args)
        for approach in APPROACHES:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                results.append(pool.submit(run_one, approach, name, args).result())

    head = (f"{'scene':<18}{'approach':<13}{'pixels':>7} {'patch (C,s,s)':<14}{'setup s':>9}"
            f"{'epoch s':>9}{'total s':>9}{'peak +MiB':>11}{'abs peak MiB':>14}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['scene']:<18}{r['approach']:<13}{r['n']:>7} {str(r['shape']):<14}"
              f"{r['setup']:>9.3f}{r['epoch']:>9.3f}{r['setup'] + r['epoch']:>9.3f}"
              f"{r['peak'] / MiB:>11.1f}{r['absolute_peak'] / MiB:>14.1f}")
    print("\nratios naive / sampler (> 1: the sampler is faster or smaller):")
    for name in args.scenes:
        by = {r["approach"]: r for r in results if r["scene"] == name}
        n = by["naive"]
        for a in ("sampler", "sampler_nchw"):
            s = by[a]
            total = (n["setup"] + n["epoch"]) / (s["setup"] + s["epoch"])
            mem = f"x{n['peak'] / s['peak']:.0f}" if s["peak"] >= MiB else "n/a (sampler < 1 MiB)"
            print(f"  {name:<18} vs {a:<13} setup x{n['setup'] / s['setup']:.0f}, "
                  f"epoch x{n['epoch'] / s['epoch']:.2f}, total x{total:.2f}, peak memory {mem}")
    reset = all(r["was_reset"] for r in results)
    print(f"\npeak +MiB: child's peak RSS minus its RSS after imports and data loading "
          f"({'VmHWM, reset there via /proc/self/clear_refs' if reset else 'ru_maxrss, no reset: may underestimate'}); "
          f"threads in children: {sorted({r['threads'] for r in results})}")
    print(f"data source: {results[0]['source']}" if results else "no scene run")


if __name__ == "__main__":
    main()
