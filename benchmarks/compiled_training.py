"""Benchmark: ``torch.compile`` of the training step, against eager, fp32.

A lever of the quick-book budget on CPUs without native bf16: the patch
networks' training is compute-bound (CNN2D at about one core's AVX2 peak), so
a compiled step can only win what lies outside the convolutions (batch norm,
ReLU, pooling, the optimizer's elementwise work, Python overhead).

For each network (at the paper's widths and at the 98% pruned widths, which
have far less convolution work per step): the same training step as
:func:`hsilib.precision.step_seconds` (batch 100, Adam, cross-entropy, the
model's memory format) eager and through ``torch.compile`` (inductor), from
the same weights. Compilation (first step) is timed apart; then the two take
turns step by step for ``--steps`` steps and the median of each is reported,
with their ratio, and the number of steps after which compiling has paid for
itself. Threads are fixed by ``--threads``.

Run::

    python benchmarks/compiled_training.py --threads 1
    HSILIB_NATIVE_BF16=0 python benchmarks/compiled_training.py --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from torch.nn import functional as F

from hsilib.measure import cpu_info
from hsilib.precision import bench_batch
from hsilib.plan import concrete_widths

NETWORKS = ("cnn2d", "cnn3d")


def training_step(model, optimizer, x, y) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def bench(name: str, widths, steps: int) -> dict:
    eager, x, y = bench_batch(name, torch.device("cpu"), widths)
    compiled_model = copy.deepcopy(eager)
    torch._dynamo.reset()  # each network compiled afresh, for its own static shapes
    arms = {"eager": (eager, torch.optim.Adam(eager.parameters(), lr=1e-3)),
            "compiled": (torch.compile(compiled_model, dynamic=False),
                         torch.optim.Adam(compiled_model.parameters(), lr=1e-3))}
    first = {arm: training_step(*arms[arm], x, y) for arm in arms}  # warm-up / compilation
    times = {arm: [] for arm in arms}
    for _ in range(steps):
        for arm in arms:
            times[arm].append(training_step(*arms[arm], x, y))
    eager_s, compiled_s = (statistics.median(times[a]) for a in arms)
    saving = eager_s - compiled_s
    return {"network": name, "widths": list(widths) if widths else "paper",
            "eager_step_s": eager_s, "compiled_step_s": compiled_s,
            "speedup": eager_s / compiled_s, "compile_s": first["compiled"] - first["eager"],
            "steps_to_pay_back": (first["compiled"] - first["eager"]) / saving if saving > 0 else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_info()}; torch {torch.__version__}; {args.threads} thread(s); fp32")
    rows = []
    for name in NETWORKS:
        for widths in (None, concrete_widths(name, "98%")):
            row = bench(name, widths, args.steps)
            rows.append(row)
            print(f"{name:6} {str(row['widths']):>14}: eager {row['eager_step_s']:.3f} s, "
                  f"compiled {row['compiled_step_s']:.3f} s a step (x{row['speedup']:.2f}); "
                  f"compiling {row['compile_s']:.0f} s, paid back after "
                  f"{row['steps_to_pay_back'] or float('inf'):.0f} steps")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
