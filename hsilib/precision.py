"""``precision="auto"``: the training precision this machine runs fastest.

bfloat16 autocast pays only where the hardware computes bf16 natively: a
CUDA device that supports it, or a CPU with AVX-512 BF16 or AMX. Elsewhere
autocast emulates it, and a CNN2D training step on a Zen 3 CPU (AVX2, no
bf16) was measured 11 times slower than in fp32. So ``"auto"`` resolves to
``"bf16"`` only where the device supports it natively *and* a short
micro-benchmark of the model's training steps measures it faster; to
``"fp32"`` otherwise. The benchmark runs once per machine, device and model,
and is cached in ``<results dir>/machine/precision.json`` (see
:func:`hsilib.experiments.store.default_root`).

The resolved precision is what configs hash and records hold, so runs on
machines that choose differently are different results.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from .measure import cpu_info
from .models import example_input, get_model
from .train import PRECISIONS, autocast, resolve_device

AUTO = "auto"
ENV_NATIVE_BF16 = "HSILIB_NATIVE_BF16"
CHOICES = (AUTO, *PRECISIONS)
# bf16 must be at least this much faster than fp32 to be chosen: steps of
# one precision vary by a few percent between calls.
MIN_SPEEDUP = 1.15
# The benchmark: a batch of the paper's size at the model's default input,
# timed after one warm-up step, alternating precisions: at least
# BENCH_STEPS steps and BENCH_MIN_SECONDS of them (a small network's step
# takes a millisecond), at most BENCH_MAX_STEPS.
BENCH_BATCH = 100
BENCH_STEPS = 3
BENCH_MIN_SECONDS = 0.2
BENCH_MAX_STEPS = 50
BENCH_BANDS = 200  # Indian Pines' bands, for models that take every band
BENCH_CLASSES = 16


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (not by emulation);
    ``HSILIB_NATIVE_BF16=0`` (or ``1``) overrides the detection, e.g. to see
    what a machine without it gets."""
    override = os.environ.get(ENV_NATIVE_BF16)
    if override in ("0", "1"):
        return override == "1"
    if override is not None:
        raise ValueError(f"{ENV_NATIVE_BF16}={override!r}; accepted: 0, 1 or unset")
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def bench_batch(model_name: str, device: torch.device, widths: tuple[int, ...] | None = None):
    """``(model, x, y)``: ``model_name`` at ``widths`` (seeded, on ``device`` in
    the memory format the runner trains it in) and one random batch of
    :data:`BENCH_BATCH` inputs and labels for it."""
    spec = get_model(model_name)
    channels = spec.components or BENCH_BANDS
    torch.manual_seed(0)
    model = spec.make(channels, BENCH_CLASSES, None, widths)
    model = model.to(device, memory_format=model.memory_format)
    x = example_input(model_name, channels, batch=BENCH_BATCH).normal_().to(device)
    if x.dim() in (4, 5):
        x = x.contiguous(memory_format=model.memory_format)
    y = torch.randint(0, BENCH_CLASSES, (BENCH_BATCH,), device=device)
    return model, x, y


def step_seconds(model_name: str, precision: str, device: torch.device,
                 widths: tuple[int, ...] | None = None) -> list[float]:
    """Seconds of training steps (forward, backward, Adam) of ``model_name``
    (at ``widths``; ``None``: the paper's) in ``precision`` on ``device``,
    after a warm-up step: :data:`BENCH_STEPS` of them or as many as take
    :data:`BENCH_MIN_SECONDS`, whichever is more (at most
    :data:`BENCH_MAX_STEPS`)."""
    model, x, y = bench_batch(model_name, device, widths)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def one_step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    one_step()  # warm-up
    seconds: list[float] = []
    while len(seconds) < BENCH_MAX_STEPS and (len(seconds) < BENCH_STEPS or sum(seconds) < BENCH_MIN_SECONDS):
        seconds.append(one_step())
    return seconds


def fastest(seconds: list[float]) -> float:
    """The step time a benchmark reports: its fastest step, since other work
    on the machine only ever adds time (medians cached while other work
    ran were 8-90 times the steps of an idle machine, small networks worst)."""
    return min(seconds)


def benchmark(model_name: str, device: torch.device) -> dict:
    """Step seconds (:func:`fastest`) of ``model_name`` in fp32 and bf16 on
    ``device``, measured alternately, so both see the same machine load."""
    times: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    for _ in range(2):
        for precision in PRECISIONS:
            times[precision] += step_seconds(model_name, precision, device)
    return {p: fastest(t) for p, t in times.items()}


def cache_path() -> Path:
    """Where the benchmarks of this machine are cached."""
    from .experiments.store import default_root  # the store imports the models, as this does

    return default_root() / "machine" / "precision.json"


def machine_id(device: torch.device) -> str:
    """What a cached benchmark is valid for: the processor (or GPU), the
    device type and torch's version."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_info()[0]
    return hashlib.sha256(f"{name}|{device.type}|{torch.__version__}".encode()).hexdigest()[:16]


def read_cache(path: Path) -> dict:
    """A machine cache (JSON object) as a dict; empty where missing or damaged."""
    try:
        cache = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # a damaged cache is measured again
        return {}
    return cache if isinstance(cache, dict) else {}


def write_cache(path: Path, cache: dict) -> None:
    """Write a machine cache atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(cache, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# What this process already read or measured: keys are resolved for every
# config of a grid, and the file need not be read each time.
_known: dict[tuple[Path, str], dict] = {}


def choose(model_name: str, device: str | torch.device = "auto") -> dict:
    """The precision ``"auto"`` gives ``model_name`` on ``device``, and why:
    ``{"precision", "native_bf16", "seconds"}`` (``seconds``: the cached
    benchmark's step seconds per precision; ``None`` where no
    benchmark was needed)."""
    device = resolve_device(device)
    if get_model(model_name).family != "torch":
        return {"precision": "fp32", "native_bf16": False, "seconds": None}
    if not native_bf16(device):
        return {"precision": "fp32", "native_bf16": False, "seconds": None}
    path, entry = cache_path(), f"{machine_id(device)}/{model_name}"
    seconds = _known.get((path, entry)) or read_cache(path).get(entry)
    if not (isinstance(seconds, dict) and set(seconds) == set(PRECISIONS)):
        seconds = benchmark(model_name, device)
        write_cache(path, {**read_cache(path), entry: seconds})
    _known[(path, entry)] = seconds
    faster = seconds["fp32"] >= MIN_SPEEDUP * seconds["bf16"]
    return {"precision": "bf16" if faster else "fp32", "native_bf16": True, "seconds": seconds}


def resolve_precision(precision: str, model_name: str, device: str | torch.device = "auto") -> str:
    """``precision`` as given, or for ``"auto"`` what :func:`choose` picks."""
    if precision not in CHOICES:
        raise ValueError(f"unknown precision {precision!r}; accepted: {', '.join(CHOICES)}")
    return choose(model_name, device)["precision"] if precision == AUTO else precision
