"""Benchmark: inference speed of a trained fp32 model vs its int8 copies (dynamic, static, QAT).

What is measured, for each model of ``--models`` (CNN2D by default), all in one
process:

* the base: :func:`hsilib.experiments.trained_model` of ``Config(model,
  --scene, split="disjoint", epochs=--epochs, precision="bf16",
  data_source=--data-source)`` from the result store ``--store``;
* its three int8 copies from :func:`hsilib.compress.quantization.quantize`
  (engine ``--engine``): ``dynamic`` (int8 linear layers, convolutions stay
  fp32), ``static`` (calibrated on 1,000 training pixels) and ``qat`` (one
  epoch of quantization-aware fine-tuning on the training pixels);
* for every variant: latency at batch 1 (:func:`hsilib.measure.latency_ms`,
  one thread, 200 timed calls after 20 warm-up calls: the median), throughput
  at batch 1,000 test pixels (:func:`hsilib.measure.throughput`, median of 5
  calls, for each thread count of ``--threads``) and the size of the saved
  state dict (:func:`hsilib.measure.serialized_memory_mb`).

Protocol: to keep drift (thermal, load from elsewhere on the machine) and
ordering effects out of the comparison, the measurements are interleaved:
``--rounds`` rounds, each timing fp32, dynamic, static, qat in turn. The
table gives each variant's median over rounds, and its ratios to fp32 as the
median of the per-round ratios (fp32 and the variant timed in the same round)
with their min-max over rounds, so the spread is visible: latency speed-up =
fp32 ms / variant ms, throughput ratio = variant samples/s / fp32 samples/s
(above 1: the int8 copy is faster), size ratio = fp32 MB / variant MB.
``agree``: share of the 1,000 throughput pixels whose predicted class matches
fp32's (a sanity check that the int8 copy still computes the same thing).

The store defaults to a fresh temporary directory, so the base models are
trained here first (a few epochs, bf16 autocast). Pass ``--store`` the book's
result store (``$HSILIB_RESULTS_DIR``, or ``results/`` in the per-user cache
directory) to reuse its stored weights, which it does when a stored base has
the same config (same epochs, precision bf16, data source, ...).

Run (the real cubes are not needed; the twin has the real shape)::

    HSILIB_DATA_DIR=/path/to/data HSILIB_OFFLINE=1 python benchmarks/quantization_speed.py --data-source twin
    python benchmarks/quantization_speed.py --models cnn2d mlp cnn1d --threads 1 2 --json quant.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import numpy as np
import torch

from hsilib import measure
from hsilib.compress.quantization import ENGINES, LabelledData, quantize, select_engine
from hsilib.data.load import DATA_SOURCES
from hsilib.experiments import Config, model_view, trained_model
from hsilib.models import get_model

VARIANTS = ("fp32", "dynamic", "static", "qat")  # timed in this order in every round
CALIBRATION, LARGE_BATCH, LATENCY_RUNS = 1000, 1000, 200


def build_variants(model_name: str, args, store: str):
    """The trained fp32 base and its int8 copies, with the batches to time them on."""
    config = Config(model=model_name, scene=args.scene, split="disjoint", epochs=args.epochs,
                    precision="bf16", data_source=args.data_source).resolved()
    model, _, data = trained_model(config, store, device="cpu", progress=False)
    view = model_view(get_model(model_name), data.features, config.patch_size)
    calibration = view(np.random.default_rng(config.seed).permutation(data.fit_idx)[:CALIBRATION])
    training = LabelledData(view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                            config.batch_size)
    batch1 = view(data.test_idx[:1])
    variants = {"fp32": model}
    for mode in VARIANTS[1:]:
        torch.manual_seed(config.seed)
        variants[mode] = quantize(model, mode, batch1, engine=args.engine,
                                  calibration=calibration, training=training,
                                  qat_epochs=1, seed=config.seed).model.eval()
    return variants, batch1, view(data.test_idx[:LARGE_BATCH]), data.source


def bench_model(model_name: str, args, store: str) -> dict:
    """Every variant of one model, timed in interleaved rounds."""
    variants, batch1, large, source = build_variants(model_name, args, store)
    with torch.inference_mode():
        reference = variants["fp32"](large).argmax(1)
        agree = {v: float((m(large).argmax(1) == reference).float().mean()) for v, m in variants.items()}
    rounds = {v: {"latency_ms": [], **{f"per_s_{t}t": [] for t in args.threads}} for v in VARIANTS}
    for _ in range(args.rounds):
        for v in VARIANTS:
            m = variants[v]
            rounds[v]["latency_ms"].append(measure.latency_ms(
                m, batch1, runs=LATENCY_RUNS, threads=1).median_ms)
            for t in args.threads:
                rounds[v][f"per_s_{t}t"].append(measure.throughput(m, large, threads=t))
    rows = []
    base, base_mb = rounds["fp32"], measure.serialized_memory_mb(variants["fp32"])
    for v in VARIANTS:
        mb = measure.serialized_memory_mb(variants[v])
        row = dict(variant=v, size_mb=mb, size_ratio=base_mb / mb, agree=agree[v], rounds=rounds[v])
        for key, values in rounds[v].items():
            # latency: fp32 / variant (speed-up); samples/s: variant / fp32
            ratios = (np.array(base[key]) / values if key == "latency_ms"
                      else np.array(values) / base[key])
            row[key] = float(np.median(values))
            row[f"{key}_ratio"] = [float(np.median(ratios)), float(ratios.min()), float(ratios.max())]
        rows.append(row)
    return dict(model=model_name, title=get_model(model_name).title, data_source=source, rows=rows)


def print_table(result: dict, args) -> None:
    keys = ["latency_ms"] + [f"per_s_{t}t" for t in args.threads]
    heads = ["latency ms (1 thr)"] + [f"samples/s ({t} thr)" for t in args.threads]
    head = f"{'variant':<9}{'MB':>7}{'size x':>8}{'agree':>7}" + "".join(
        f"{h:>20}{'x (min-max)':>19}" for h in heads)
    print(f"\n{result['model']}: {result['title']}, {result['data_source']} data, "
          f"median of {args.rounds} interleaved round(s)\n{head}\n{'-' * len(head)}")
    for r in result["rows"]:
        cells = "".join(f"{r[k]:>20{'.4f' if k == 'latency_ms' else ',.0f'}}{r[k + '_ratio'][0]:>8.2f} "
                        f"({r[k + '_ratio'][1]:.2f}-{r[k + '_ratio'][2]:.2f})" for k in keys)
        print(f"{r['variant']:<9}{r['size_mb']:>7.3f}{r['size_ratio']:>8.2f}{r['agree']:>7.3f}{cells}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["cnn2d"], help="torch models of hsilib.models")
    p.add_argument("--scene", default="indian_pines")
    p.add_argument("--data-source", default="auto", choices=DATA_SOURCES)
    p.add_argument("--epochs", type=int, default=5, help="training epochs of the fp32 base")
    p.add_argument("--engine", default="x86", choices=ENGINES, help="quantized engine")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="torch threads for the throughput (latency always uses 1)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of measurements")
    p.add_argument("--store", help="result store holding or receiving the trained bases "
                                   "(default: a temporary directory, so they train here)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    select_engine(args.engine)  # quantize() selects it too; here so the header shows it

    header = dict(cpu=measure.cpu_info()[0], cpu_count=os.cpu_count(), torch=torch.__version__,
                  quantized_engine=torch.backends.quantized.engine,
                  supported_engines=torch.backends.quantized.supported_engines,
                  default_threads=torch.get_num_threads(), load_average=os.getloadavg()[0],
                  args=vars(args))
    print(f"CPU {header['cpu']} ({header['cpu_count']} cores), torch {header['torch']}, "
          f"quantized engine {header['quantized_engine']} (supported: "
          f"{', '.join(header['supported_engines'])}), load average {header['load_average']:.2f}")
    print(f"threads: latency 1, throughput {', '.join(map(str, args.threads))}; torch default "
          f"{header['default_threads']} (training, calibration and QAT)")
    print(f"scene {args.scene}, disjoint split; bases: {args.epochs} epoch(s), bf16; latency: "
          f"batch 1, median of {LATENCY_RUNS} calls; throughput: batch {LARGE_BATCH}, median of 5 "
          f"calls; x: ratio to fp32 (above 1: better), median (min-max) over rounds")

    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for name in args.models:
            results.append(bench_model(name, args, args.store or tmp))
            print_table(results[-1], args)
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(header=header, results=results), f, indent=2)


if __name__ == "__main__":
    main()
