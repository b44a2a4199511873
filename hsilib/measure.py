"""Model measurements: parameters, multiply-accumulates, memory and speed.

The paper compares models by trainable parameters, memory in MB and inference
latency in ms/sample (Tables 3, 4 and 10). This module measures each of them
the same way for every model of the book, compressed or not:

* :func:`parameters_per_layer` and :func:`norm_parameters` count parameters
  as the paper does (batch norm apart);
* :func:`layer_summary` and :func:`macs_per_sample` give each layer's output
  shape, parameters and multiply-accumulates (MACs) from one forward pass;
* :func:`theoretical_memory_mb` (values times bytes per value) and
  :func:`serialized_memory_mb` (bytes of the saved state dict) give memory;
* :func:`latency_ms` and :func:`throughput` time any prediction callable;
* :func:`measure_model` gathers all of them into one JSON-ready dict, and
  :func:`measure_estimator` the ones that apply to a scikit-learn model.

Megabytes are decimal (1 MB = 10**6 bytes), as in the paper: CNN2D's 426,866
parameters at 4 bytes are the 1.71 MB of Table 4.
"""

from __future__ import annotations

import contextlib
import io
import math
import pickle
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .train import eval_mode

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# Timed calls: latency is the median of LATENCY_RUNS calls at batch 1 after
# LATENCY_WARMUP untimed ones; throughput the median of THROUGHPUT_RUNS calls
# of a large batch, with no untimed call: the median of three is immune to
# one slow first call, and a warm-up call of a 1,000-sample batch of the 3-D
# CNN costs seconds on one thread.
LATENCY_RUNS = 200
LATENCY_WARMUP = 20
THROUGHPUT_RUNS = 3
THROUGHPUT_WARMUP = 0

# Quantized layers do not subclass their float counterparts and keep their
# weights in packed objects rather than parameters, so MACs and memory need to
# know them by name. Guarded: eager-mode quantization is deprecated and a
# future torch may drop these modules.
try:
    import torch.ao.nn.quantized as _nnq
    import torch.ao.nn.quantized.dynamic as _nnqd

    _Q_CONV: tuple[type, ...] = (_nnq.Conv1d, _nnq.Conv2d, _nnq.Conv3d)
    _Q_LINEAR: tuple[type, ...] = (_nnq.Linear,)  # the dynamic Linear subclasses it
    _Q_RNN: tuple[type, ...] = (_nnqd.LSTM, _nnqd.GRU)
except (ImportError, AttributeError):  # pragma: no cover - depends on the torch build
    _Q_CONV = _Q_LINEAR = _Q_RNN = ()

# Layers whose weights and biases the paper counts as "trainable parameters"
# (and their quantized forms, whose count is the same).
COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.LSTM, *_Q_CONV, *_Q_LINEAR, *_Q_RNN)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, *_Q_CONV)
_CONV_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_LINEAR = (nn.Linear, *_Q_LINEAR)
_RNN = (nn.RNNBase, *_Q_RNN)
# Layers measured as a whole even when they have child modules (the quantized
# ones hold their packed weights in children); their children get no row.
_MEASURED = (*_CONV, *_CONV_TRANSPOSE, *_LINEAR, *_RNN)
# Gate blocks per recurrent cell: each multiplies the input and the hidden state.
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def parameters_per_layer(model: nn.Module) -> dict[str, int]:
    """Parameters (weights + biases) of each conv, linear and LSTM layer, by
    module name, as the paper counts them: batch norm is left out (see
    :func:`norm_parameters`)."""
    return {name: _own_params(module)
            for name, module in model.named_modules() if isinstance(module, COUNTED)}


def norm_parameters(model: nn.Module) -> int:
    """Learnable batch-norm parameters (scale and shift), reported separately."""
    return sum(p.numel() for m in model.modules() if isinstance(m, NORMS)
               for p in m.parameters(recurse=False))


def all_parameters(model: nn.Module) -> int:
    """Every learnable value, PyTorch's full count: the paper's convention
    plus batch norm's scale and shift (quantized layers' packed weights
    included; a folded batch norm is gone)."""
    return (sum(p.numel() for p in model.parameters())
            + sum(t.numel() for m in model.modules() for t in packed_tensors(m)))


# --------------------------------------------------------------------------
# Layer summary and MACs
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerRow:
    """One layer of :func:`layer_summary`.

    Attributes
    ----------
    name : module name in ``model.named_modules()`` (the first one if the
        module is registered under several names).
    kind : class name of the module (``"Conv2d"``, ``"BatchNorm2d"``, ...).
    output_shape : shape of the module's output on its first call, without
        its first dimension, taken as the batch (for recurrent layers, the
        output sequence without the batch dimension their ``batch_first``
        says; a layer fed time-major ``(T, N, F)`` data loses T instead).
    params : weights and biases of the module itself (for quantized layers,
        the values of their packed weights).
    macs : multiply-accumulates per sample, summed over all calls of the
        module in one forward pass; 0 for layers other than conv, linear
        and recurrent ones.
    calls : how many times the module ran in the forward pass (more than one
        when ``forward`` reuses it).
    is_norm : True for batch norm, whose parameters the paper leaves out of
        its counts (:func:`parameters_per_layer` skips them too).
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    calls: int
    is_norm: bool


def layer_summary(model: nn.Module, example: torch.Tensor, *,
                  batch_dim: int = 0) -> list[LayerRow]:
    """Output shape, parameters and MACs per sample of each layer, from one
    forward pass of ``example``.

    Forward hooks record every leaf module (and every conv, linear or
    recurrent layer, whose quantized versions hold their packed weights in
    child modules) while the model runs once in eval mode under
    :func:`torch.no_grad`; the model's train/eval flags are restored after.

    MACs count the multiply-accumulates of conv, linear and recurrent layers
    only, the ones that dominate the cost of these networks:

    * convolution: output elements x (in_channels / groups x kernel volume)
      (transposed: input elements x out_channels / groups x kernel volume);
    * linear: in_features x out_features for each output row, so a linear
      layer applied to a ``(N, T, F)`` input counts T times per sample;
    * LSTM / GRU / RNN: per time step, layer and direction,
      gates x hidden x (layer input + hidden) (4 gates for an LSTM; an LSTM
      with ``proj_size`` adds hidden x proj_size), times the sequence length.

    Biases, batch norm, pooling, activations and element-wise gate
    arithmetic count 0. Functional operations called in ``forward`` (such as
    :func:`torch.relu`) are not modules, so they get no row; all of them are
    0-MAC operations in the models of the book, but a functional convolution
    or matmul would be missed.

    Parameters
    ----------
    model : the network.
    example : an input batch of at least one sample; the MACs of the whole
        batch are divided by its size, so they do not depend on it.
    batch_dim : dimension of ``example`` that holds the samples (1 for a
        time-major recurrent model).

    Returns
    -------
    list of LayerRow
        One row per module that ran, in the order of their first call. A
        module that runs several times has one row with the shape of its
        first call and the MACs of all its calls. Modules that did not run
        are left out, as are parameters held by non-leaf modules.
    """
    batch_size = example.shape[batch_dim]
    if batch_size < 1:
        raise ValueError("example must hold at least one sample")
    measured = _measured_modules(model)
    rows: dict[nn.Module, dict[str, Any]] = {}

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        macs = _macs(module, args[0] if args else kwargs.get("input"), output)
        if module in rows:
            rows[module]["macs"] += macs
            rows[module]["calls"] += 1
            return
        rows[module] = {"name": measured[module], "kind": type(module).__name__,
                        "output_shape": _output_shape(module, output),
                        "params": _own_params(module), "macs": macs, "calls": 1,
                        "is_norm": isinstance(module, NORMS)}

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in measured]
    try:
        with eval_mode(model), torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    # Whole-batch MACs divided by the batch size: exact for every layer but a
    # recurrent one fed a PackedSequence, where it is the mean over samples.
    return [LayerRow(**{**row, "macs": round(row["macs"] / batch_size)})
            for row in rows.values()]


def macs_per_sample(model: nn.Module, example: torch.Tensor, *, batch_dim: int = 0) -> int:
    """Multiply-accumulates per sample of conv, linear and recurrent layers
    (the sum of :func:`layer_summary`'s ``macs``)."""
    return sum(row.macs for row in layer_summary(model, example, batch_dim=batch_dim))


def _measured_modules(model: nn.Module) -> dict[nn.Module, str]:
    """Leaf modules and conv/linear/recurrent layers, by module, with their
    names; nothing inside a measured layer (its packed-weight holders)."""
    measured: dict[nn.Module, str] = {}

    def visit(module: nn.Module, name: str) -> None:
        if module in measured:  # registered twice: keep the first name
            return
        children = list(module.named_children())
        if isinstance(module, _MEASURED) or not children:
            measured[module] = name
            return
        for child_name, child in children:
            visit(child, f"{name}.{child_name}" if name else child_name)

    visit(model, "")
    return measured


def _macs(module: nn.Module, inp: Any, output: Any) -> int:
    """Multiply-accumulates of one call over the whole batch."""
    if isinstance(module, _CONV):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return _first_tensor(output).numel() * per_output
    if isinstance(module, _CONV_TRANSPOSE):
        # Each input element is scattered into out_channels / groups x kernel outputs.
        per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
        return _first_tensor(inp).numel() * per_input
    if isinstance(module, _LINEAR):
        rows = _first_tensor(output).numel() // module.out_features
        return rows * module.in_features * module.out_features
    if isinstance(module, _RNN):
        return _rnn_steps(module, inp) * _rnn_macs_per_step(module)
    return 0


def _rnn_steps(module: nn.Module, inp: Any) -> int:
    """Time steps summed over the batch: batch x sequence length."""
    if isinstance(inp, PackedSequence):
        return inp.data.shape[0]  # one row per (sample, step) actually run
    if inp.dim() == 2:  # an unbatched sequence (T, F)
        return inp.shape[0]
    return inp.shape[0] * inp.shape[1]


def _rnn_macs_per_step(module: nn.Module) -> int:
    """MACs of one time step of one sample, over all layers and directions."""
    gates = _GATES[module.mode]
    hidden = module.hidden_size
    proj = getattr(module, "proj_size", 0)  # the quantized LSTM has none
    out = proj or hidden  # size of the recurrent state and of each direction's output
    directions = 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        layer_input = module.input_size if layer == 0 else out * directions
        per_direction = gates * hidden * (layer_input + out) + hidden * proj
        total += directions * per_direction
    return total


def _output_shape(module: nn.Module, output: Any) -> tuple[int, ...]:
    """Shape of the (first) output tensor without its batch dimension."""
    tensor = output[0] if isinstance(module, _RNN) else output  # (sequence, state)
    if isinstance(tensor, PackedSequence):
        return tuple(tensor.data.shape[1:])  # steps of varying length: features only
    tensor = _first_tensor(tensor)
    if tensor is None:
        return ()
    # Recurrent layers are time-major unless batch_first; an unbatched (T, F)
    # sequence has no batch dimension at all.
    if isinstance(module, _RNN) and tensor.dim() == 3 and not module.batch_first:
        return (tensor.shape[0], *tensor.shape[2:])
    if isinstance(module, _RNN) and tensor.dim() == 2:
        return tuple(tensor.shape)
    return tuple(tensor.shape[1:])


def _first_tensor(value: Any) -> torch.Tensor | None:
    """The tensor itself, or the first tensor of a (nested) tuple or list."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _own_params(module: nn.Module) -> int:
    """Values of a layer's own parameters, or of its packed quantized weights."""
    return (sum(p.numel() for p in module.parameters(recurse=False))
            + sum(t.numel() for t in packed_tensors(module)))


def packed_tensors(module: nn.Module) -> list[torch.Tensor]:
    """Weights and biases that quantized layers keep in packed objects, out of
    ``parameters()`` and ``buffers()``; empty for any other module."""
    if isinstance(module, _Q_RNN):
        packed = module._weight_bias()  # {"weight": {name: tensor}, "bias": {...}}
        return [*packed["weight"].values(), *packed["bias"].values()]
    if isinstance(module, (*_Q_CONV, *_Q_LINEAR)):
        bias = module.bias()
        return [module.weight()] + ([bias] if bias is not None else [])
    return []


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------

def theoretical_memory_mb(model: nn.Module, bytes_per_value: int | None = None) -> float:
    """Memory of the model's values: count x bytes per value, in decimal MB.

    Counts every parameter and buffer (batch-norm scale, shift, running mean
    and variance and its ``num_batches_tracked`` counter included) and the
    packed weights of quantized layers, each shared tensor once.

    For CNN2D (40 channels, 16 classes) in float32 that is 1.709880 MB:
    426,866 counted parameters (1.707464 MB, the paper's 1.71 MB of Table 4)
    + 300 batch-norm parameters + 300 running statistics (4 bytes each) + two
    int64 counters. Batch norm changes the figure by 0.14%, below the
    paper's rounding.

    Parameters
    ----------
    model : the network.
    bytes_per_value : bytes of every value, whatever its dtype (1 for the
        paper's 8-bit accounting); ``None`` uses each tensor's own element
        size.

    Returns
    -------
    float
        Megabytes (10**6 bytes).
    """
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    for module in model.modules():
        tensors.update((id(t), t) for t in packed_tensors(module))
    size = sum(t.numel() * (t.element_size() if bytes_per_value is None else bytes_per_value)
               for t in tensors.values())
    return size / 1e6


def serialized_memory_mb(model: nn.Module) -> float:
    """Bytes of ``torch.save(model.state_dict())``, in decimal MB.

    What storing the model takes: the values in their dtype plus the small
    overhead of the zip container and tensor records. Works for any state
    dict ``torch.save`` accepts, quantized layers' packed weights included.
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes / 1e6


def checkpoint_memory_mb(model: nn.Module) -> float:
    """Bytes of a training checkpoint, in decimal MB: the state dict and the
    state of an Adam optimizer over the model's parameters (two moment
    buffers a parameter, after one step), saved together. About 12 bytes a
    parameter in float32: the size the paper's pruned rows of Table 4 fit."""
    import copy

    probe = copy.deepcopy(model)
    optimizer = torch.optim.Adam(probe.parameters())
    for parameter in probe.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    buffer = io.BytesIO()
    torch.save({"model": probe.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    return buffer.getbuffer().nbytes / 1e6


# --------------------------------------------------------------------------
# Latency and throughput
# --------------------------------------------------------------------------

def cpu_info() -> tuple[str, set[str]]:
    """CPU model name and flags from /proc/cpuinfo (Linux), else what platform
    says: timings mean little without them."""
    try:
        with open("/proc/cpuinfo") as f:
            pairs = (line.split(":", 1) for line in f if ":" in line)
            fields = {k.strip(): v.strip() for k, v in pairs}
    except OSError:
        return platform.processor() or platform.machine() or "?", set()
    return fields.get("model name", "?"), set(fields.get("flags", "").split())


@dataclass(frozen=True)
class LatencyStats:
    """Timings of :func:`latency_ms`, in milliseconds per call."""

    median_ms: float
    p95_ms: float
    mean_ms: float
    runs: int


def latency_ms(predict: Callable[[Any], Any], example: Any, runs: int = LATENCY_RUNS,
               warmup: int = LATENCY_WARMUP, threads: int | None = 1) -> LatencyStats:
    """Time single-sample predictions, as the paper's ms/sample.

    Latency at batch 1 includes a fixed per-call overhead (Python, operator
    dispatch, memory allocation; a fraction of a millisecond on a CPU) that
    makes up much of it for the smallest (pruned, compressed) models, so
    it shrinks less than their arithmetic does; :func:`throughput` at a
    large batch tells the compute cost per sample.

    Parameters
    ----------
    predict : any callable: a torch module, or e.g.
        ``lambda x: estimator.predict(x)`` for scikit-learn.
    example : the input of one call, a batch of one sample.
    runs : timed calls (each timed alone with :func:`time.perf_counter`).
    warmup : untimed calls first (lazy initialisation, caches, thread pools).
    threads : CPU threads for the measurement: torch's intra-op threads and,
        where ``threadpoolctl`` is installed (scikit-learn needs it), the
        BLAS threads of numpy and scikit-learn; both are restored afterwards,
        even if ``predict`` raises. ``None`` leaves them as they are.

    Returns
    -------
    LatencyStats
        Median, 95th percentile and mean in milliseconds, and ``runs``.
    """
    seconds = _time_calls(predict, example, runs, warmup, threads)
    ms = seconds * 1e3
    return LatencyStats(median_ms=float(np.median(ms)), p95_ms=float(np.percentile(ms, 95)),
                        mean_ms=float(ms.mean()), runs=runs)


def throughput(predict: Callable[[Any], Any], batch: Any, runs: int = THROUGHPUT_RUNS,
               warmup: int = THROUGHPUT_WARMUP, threads: int | None = None) -> float:
    """Samples per second when predicting a large batch at once.

    Per-call overhead is shared by the whole batch, so this is the compute
    cost that :func:`latency_ms` at batch 1 hides. ``len(batch)`` samples
    divided by the median time of ``runs`` calls; ``threads`` as in
    :func:`latency_ms` (``None`` by default: all the threads torch uses).
    """
    seconds = _time_calls(predict, batch, runs, warmup, threads)
    return len(batch) / float(np.median(seconds))


def _time_calls(predict: Callable[[Any], Any], x: Any, runs: int, warmup: int,
                threads: int | None) -> np.ndarray:
    """Seconds of each of ``runs`` timed calls, after ``warmup`` untimed ones."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"need runs >= 1 and warmup >= 0, got {runs} and {warmup}")
    # CUDA kernels run asynchronously: without waiting for the device, only
    # their launch would be timed.
    on_cuda = isinstance(x, torch.Tensor) and x.is_cuda
    sync: Callable[[], None] = torch.cuda.synchronize if on_cuda else (lambda: None)
    seconds = np.empty(runs)
    with thread_limit(threads), torch.inference_mode():
        for _ in range(warmup):
            predict(x)
        for i in range(runs):
            sync()
            start = time.perf_counter()
            predict(x)
            sync()
            seconds[i] = time.perf_counter() - start
    return seconds


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Torch (and BLAS) threads set to ``threads`` for the block, then restored."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    try:
        from threadpoolctl import threadpool_limits
        # Limit BLAS only: torch sets its own OpenMP pool below. (On exit
        # threadpoolctl resets every library it found, OpenMP included, to its
        # value at entry, the same value ours restores.)
        blas = threadpool_limits(limits=threads, user_api="blas")
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        blas = contextlib.nullcontext()
    previous = torch.get_num_threads()
    with blas:
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


# --------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------

def measure_model(model: nn.Module, example_batch1: torch.Tensor,
                  throughput_batch: torch.Tensor | None = None, runs: int = LATENCY_RUNS,
                  warmup: int = LATENCY_WARMUP, threads: int | None = 1) -> dict[str, Any]:
    """All the measurements of one torch model, as a JSON-ready dict.

    The model runs in eval mode; every module's train/eval flag is restored
    afterwards.

    Parameters
    ----------
    model : the network.
    example_batch1 : a batch of one sample, for MACs and latency.
    throughput_batch : a large batch for :func:`throughput` (e.g. 1,000
        samples); ``None`` skips it.
    runs, warmup : timed and untimed calls of :func:`latency_ms`.
    threads : CPU threads for latency and throughput (see :func:`latency_ms`).

    Returns
    -------
    dict
        ``params_per_layer`` (the paper's count per layer), ``params`` (their
        sum), ``norm_params``, ``params_all`` (:func:`all_parameters`),
        ``macs_per_sample``, ``memory_mb_theoretical``
        (:func:`theoretical_memory_mb`, every value at its dtype's size),
        ``memory_mb_serialized``, ``latency_ms_median``, ``latency_ms_p95``,
        ``throughput_per_s`` (``None`` without ``throughput_batch``) and
        ``threads``.
    """
    with eval_mode(model):
        per_layer = parameters_per_layer(model)
        stats = latency_ms(model, example_batch1, runs=runs, warmup=warmup, threads=threads)
        per_second = (None if throughput_batch is None
                      else throughput(model, throughput_batch, threads=threads))
        return {
            "params_per_layer": per_layer,
            "params": sum(per_layer.values()),
            "norm_params": norm_parameters(model),
            "params_all": all_parameters(model),
            "macs_per_sample": macs_per_sample(model, example_batch1),
            "memory_mb_theoretical": theoretical_memory_mb(model),
            "memory_mb_serialized": serialized_memory_mb(model),
            "latency_ms_median": stats.median_ms,
            "latency_ms_p95": stats.p95_ms,
            "throughput_per_s": per_second,
            "threads": threads,
        }


def measure_estimator(estimator: Any, example_batch1: Any, throughput_batch: Any = None,
                      runs: int = LATENCY_RUNS, warmup: int = LATENCY_WARMUP,
                      threads: int | None = 1) -> dict[str, Any]:
    """The measurements of :func:`measure_model` that apply to a fitted
    scikit-learn estimator, with the same keys.

    Layers, parameters and MACs are torch notions: they are ``None`` (so
    tables and plots of parameters leave the classical models out), as is the
    theoretical memory. ``memory_mb_serialized`` is the size of the pickled
    estimator, scikit-learn's way of storing a model; latency and throughput
    time ``estimator.predict``.

    Parameters
    ----------
    estimator : a fitted estimator with ``predict``.
    example_batch1 : one sample, shaped ``(1, n_features)``.
    throughput_batch : many samples for :func:`throughput`; ``None`` skips it.
    runs, warmup, threads : as in :func:`measure_model`.
    """
    stats = latency_ms(estimator.predict, example_batch1, runs=runs, warmup=warmup,
                       threads=threads)
    per_second = (None if throughput_batch is None
                  else throughput(estimator.predict, throughput_batch, threads=threads))
    pickled = pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "params_per_layer": None,
        "params": None,
        "norm_params": None,
        "params_all": None,
        "macs_per_sample": None,
        "memory_mb_theoretical": None,
        "memory_mb_serialized": len(pickled) / 1e6,
        "latency_ms_median": stats.median_ms,
        "latency_ms_p95": stats.p95_ms,
        "throughput_per_s": per_second,
        "threads": threads,
    }
