"""8-bit quantization: dynamic, static post-training and quantization-aware
training (the paper's Section 3.3, Tables 2 and 10).

One call, :func:`quantize`, for the three modes of the :data:`MODES` registry:

* ``dynamic``: the weights of linear and recurrent layers are stored in int8;
  their inputs are quantized on the fly at every call. Needs no data. PyTorch's
  dynamic mode has no quantized convolution, so a conv net keeps its
  convolutions in float32 (see :func:`layer_dtypes`).
* ``static``: conv + batch norm + ReLU (and linear + ReLU) are fused, observers
  record the range of every activation on unlabeled *calibration* inputs,
  then weights and activations are converted to int8.
* ``qat``: the same fused model with "fake" quantization (round and clamp in
  the forward pass, straight-through gradients) is fine-tuned on labelled
  data, then converted like ``static``.

Backend
-------
The work is done by ``torch.ao.quantization`` in FX graph mode, behind the
small :class:`FxBackend` interface (``dynamic``, ``prepare_static``,
``prepare_qat``, ``convert``). It traces the
models as written (no quant stubs to insert), fuses layers itself, and
converts to packed int8 modules that run on the CPU's quantized kernels (the
``x86`` engine: FBGEMM or oneDNN by shape; ``qnnpack`` for ARM). PyTorch has
deprecated this API in favour of torchao's PT2E flow, whose int8 CPU path runs
through ``torch.compile``; a second backend would implement the same four
methods. Only the three known deprecation warnings of this API are silenced.

The engine is process-wide in PyTorch: :func:`quantize` selects it, and it
stays selected so that the returned model runs on the kernels it was packed
for.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from ..experiments import Config, Experiment, Outcome, RunContext, register_kind
from ..models import get_model
from ..registry import Registry
from ..train import History, View, eval_mode, fit, model_device, predict_scores
from .methods import Method, register_method

# Engines torch.ao can pack for, and whether their activation observers drop
# one bit (x86/FBGEMM's int8 multiply-add can overflow with the full range).
ENGINE_REDUCE_RANGE = {"x86": True, "fbgemm": True, "qnnpack": False}
ENGINES = tuple(ENGINE_REDUCE_RANGE)

# QAT fine-tunes a trained model: 1% of the paper's training rate keeps its
# solution (CNN2D on the twin, 1 epoch: 1e-4 changed 7% of the test
# predictions, 1e-5 4%, with equal or better accuracy).
QAT_LR = 1e-5

# Activation observers of static quantization (calibration).
OBSERVER_NAMES = ("histogram", "minmax", "moving_average")

# The deprecation warnings this API raises on every use; anything else gets through.
_KNOWN_WARNINGS = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"Please use quant_min and quant_max to specify the range for observers"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor"),
)


@contextlib.contextmanager
def _known_warnings_silenced() -> Iterator[None]:
    with warnings.catch_warnings():
        for category, message in _KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def check_engine(engine: str) -> str:
    """``engine`` if this torch build can run it, else a clear error."""
    if engine not in ENGINES:
        raise ValueError(f"unknown quantization engine {engine!r}; accepted: {', '.join(ENGINES)}")
    available = torch.backends.quantized.supported_engines
    if engine not in available:
        raise RuntimeError(f"quantization engine {engine!r} is not available in this torch build "
                           f"({torch.__version__}); available here: {', '.join(available)}")
    return engine


def select_engine(engine: str) -> None:
    """Make ``engine`` the process's quantized engine (checked first)."""
    torch.backends.quantized.engine = check_engine(engine)


class FxBackend:
    """``torch.ao.quantization``, FX graph mode (dynamic mode is eager: it
    needs no graph). Imported on use, so ``hsilib`` imports on a torch
    that has dropped this API."""

    title = "torch.ao.quantization (FX graph mode)"

    def dynamic(self, model: nn.Module) -> nn.Module:
        """Int8 weights for linear and recurrent layers, the rest untouched."""
        from torch.ao.quantization import quantize_dynamic

        with _known_warnings_silenced():
            return quantize_dynamic(model, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)

    def prepare_static(self, model: nn.Module, example: torch.Tensor, engine: str,
                       observer: str) -> nn.Module:
        """Fused copy of ``model`` with ``observer`` on every activation, to calibrate."""
        from torch.ao import quantization as tq
        from torch.ao.quantization import quantize_fx

        observers = {"histogram": tq.HistogramObserver, "minmax": tq.MinMaxObserver,
                     "moving_average": tq.MovingAverageMinMaxObserver}
        with _known_warnings_silenced():
            activation = observers[observer].with_args(dtype=torch.quint8,
                                                       reduce_range=ENGINE_REDUCE_RANGE[engine])
            qconfig = tq.QConfig(activation=activation, weight=tq.get_default_qconfig(engine).weight)
            mapping = tq.get_default_qconfig_mapping(engine).set_global(qconfig)
            return quantize_fx.prepare_fx(model.eval(), mapping, (example,))

    def prepare_qat(self, model: nn.Module, example: torch.Tensor, engine: str) -> nn.Module:
        """Fused copy of ``model`` with fake quantization of weights and
        activations, to fine-tune."""
        from torch.ao import quantization as tq
        from torch.ao.quantization import quantize_fx

        with _known_warnings_silenced():
            return quantize_fx.prepare_qat_fx(model.train(), tq.get_default_qat_qconfig_mapping(engine),
                                              (example,))

    def convert(self, prepared: nn.Module) -> nn.Module:
        """The int8 model of a calibrated or fine-tuned prepared model."""
        from torch.ao.quantization import quantize_fx

        with _known_warnings_silenced():
            return quantize_fx.convert_fx(prepared.eval())


BACKEND = FxBackend()


@dataclass(frozen=True)
class LabelledData:
    """Labelled pixels for quantization-aware training: a view (pixel indices
    -> model input) and the fitting and validation pixels with their labels,
    as :func:`hsilib.train.fit` takes them."""

    view: View
    fit_idx: np.ndarray
    fit_y: np.ndarray | None
    val_idx: np.ndarray
    val_y: np.ndarray | None
    batch_size: int = 100


@dataclass(frozen=True)
class QuantMode:
    """A registered quantization mode.

    ``data`` is what it needs (the paper's Table 2): ``"none"``,
    ``"unlabeled"`` or ``"labeled"``; ``settings`` the :func:`quantize`
    arguments it uses (the others do not change its result); ``source``
    the work it follows.
    """

    name: str
    title: str
    data: str
    settings: tuple[str, ...]
    apply: Callable[..., tuple[nn.Module, History | None]]
    source: str


@dataclass(frozen=True)
class Quantized:
    """What :func:`quantize` made: the int8 ``model`` (run it with ``engine``
    selected), the ``calibration_used`` samples (``static``) and the
    fine-tuning ``history`` (``qat``)."""

    model: nn.Module
    mode: str
    engine: str
    calibration_used: int | None = None
    history: History | None = None


def _dynamic(model: nn.Module, **_) -> tuple[nn.Module, None]:
    return BACKEND.dynamic(model.eval()), None


def _static(model: nn.Module, *, example: torch.Tensor, engine: str, observer: str,
            calibration: torch.Tensor, calibration_samples: int, **_) -> tuple[nn.Module, None]:
    prepared = BACKEND.prepare_static(model, example, engine, observer)
    with torch.no_grad(), _known_warnings_silenced():
        for chunk in calibration[:calibration_samples].split(500):
            prepared(chunk)
    return BACKEND.convert(prepared), None


def _qat(model: nn.Module, *, example: torch.Tensor, engine: str, training: LabelledData,
         qat_epochs: int, qat_lr: float, seed: int, progress: bool, **_) -> tuple[nn.Module, History]:
    prepared = BACKEND.prepare_qat(model, example, engine)
    with _known_warnings_silenced():
        history = fit(prepared, training.view, training.fit_idx, training.fit_y, training.val_idx,
                      training.val_y, epochs=qat_epochs, lr=qat_lr, batch_size=training.batch_size,
                      seed=seed, progress=progress)
    return BACKEND.convert(prepared), history


MODES: Registry[QuantMode] = Registry("quantization mode", items=(
    QuantMode("dynamic", "Dynamic Quantization", "none", (), _dynamic,
              "the paper's ref. [83]; PyTorch dynamic quantization"),
    QuantMode("static", "Static Quantization", "unlabeled",
              ("observer", "calibration_samples"), _static,
              "the paper's ref. [18]; Jacob et al., CVPR 2018; PyTorch FX post-training"),
    QuantMode("qat", "Quantization Aware Training", "labeled", ("qat_epochs", "qat_lr"), _qat,
              "Jacob et al., CVPR 2018 (the paper's ref. [41]); PyTorch FX QAT"),
))
for _mode in MODES.values():
    register_method(Method(_mode.name, _mode.title, "quantization", "quantize", _mode.source))


get_mode = MODES.find


def check_settings(mode: str, engine: str, observer: str, calibration_samples: int,
                   qat_epochs: int, qat_lr: float) -> QuantMode:
    """The registered ``mode`` if every setting is valid, else a clear error
    (shared by :func:`quantize` and the experiment configs)."""
    spec = get_mode(mode)
    check_engine(engine)
    if observer not in OBSERVER_NAMES:
        raise ValueError(f"unknown observer {observer!r}; accepted: {', '.join(OBSERVER_NAMES)}")
    if calibration_samples < 1:
        raise ValueError(f"calibration_samples must be at least 1, got {calibration_samples}; "
                         "static quantization sets its activation ranges from them")
    if qat_epochs < 1 or not qat_lr > 0:
        raise ValueError(f"qat_epochs must be >= 1 and qat_lr > 0, got {qat_epochs}, {qat_lr}")
    return spec


def quantize(model: nn.Module, mode: str, example: torch.Tensor | None = None, *,
             engine: str = "x86", calibration: torch.Tensor | None = None,
             calibration_samples: int = 1000, observer: str = "histogram",
             training: LabelledData | None = None, qat_epochs: int = 3, qat_lr: float = QAT_LR,
             seed: int = 0, progress: bool = False) -> Quantized:
    """An int8 copy of a trained float ``model`` (``model`` itself is untouched).

    Parameters
    ----------
    model : a trained float32 network on the CPU, traceable by ``torch.fx``
        for ``static`` and ``qat`` (every ``hsilib`` network is).
    mode : ``"dynamic"``, ``"static"`` or ``"qat"`` (:data:`MODES`).
    example : one input batch (``static`` and ``qat`` trace the model with it).
    engine : ``"x86"`` (default), ``"fbgemm"`` or ``"qnnpack"``; selected for
        the process (see the module notes).
    calibration, calibration_samples : unlabeled inputs for ``static``; the
        first ``calibration_samples`` of them are run through the observers.
    observer : activation observer of ``static``: ``"histogram"`` (torch's
        default: the range that minimizes quantization error),
        ``"minmax"`` or ``"moving_average"``.
    training, qat_epochs, qat_lr, seed : the labelled data, epochs, Adam
        learning rate and shuffling seed of ``qat``'s fine-tuning (the epoch
        with the best validation accuracy is kept).
    progress : a progress bar for ``qat``'s fine-tuning.

    Returns
    -------
    Quantized
        The int8 model and what went into it.
    """
    spec = check_settings(mode, engine, observer, calibration_samples, qat_epochs, qat_lr)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a trained torch.nn.Module, got {type(model).__name__} "
                        "(for a stored network use hsilib.experiments.trained_model)")
    if spec.data != "none" and example is None:
        raise ValueError(f"{mode} quantization needs an example input batch to trace the model")
    if example is not None:
        example = _inputs("example", example)
        _check_fits(model, example, "example")
    if spec.data == "unlabeled":
        if calibration is None or len(calibration) == 0:
            raise ValueError("static quantization needs unlabeled calibration inputs "
                             "(calibration=...); 'dynamic' needs no data")
        calibration = _inputs("calibration", calibration)
        _check_fits(model, calibration[:2], "calibration")
    if spec.data == "labeled" and (training is None or training.fit_y is None or training.val_y is None):
        raise ValueError("quantization-aware training needs labelled data "
                         "(training=LabelledData(...) with labels); with unlabeled data use "
                         "'static', with none 'dynamic'")
    select_engine(engine)  # only now: a rejected call leaves the process's engine alone
    quantized, history = spec.apply(
        copy.deepcopy(model).cpu(), example=example, engine=engine, observer=observer,
        calibration=calibration, calibration_samples=calibration_samples, training=training,
        qat_epochs=qat_epochs, qat_lr=qat_lr, seed=seed, progress=progress)
    used = min(calibration_samples, len(calibration)) if spec.data == "unlabeled" else None
    return Quantized(quantized, mode, engine, used, history)


def _inputs(name: str, value) -> torch.Tensor:
    """``value`` as a float tensor (a numpy array is converted), else a clear error."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a float tensor (or numpy array) of model inputs, "
                        f"got {type(value).__name__}")
    return value.float()


def _check_fits(model: nn.Module, inputs: torch.Tensor, name: str) -> None:
    """A clear error when ``model`` cannot run on ``inputs`` (shape, channels)."""
    try:
        with torch.no_grad(), eval_mode(model):
            model(inputs.to(model_device(model)))
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"{name} inputs of shape {tuple(inputs.shape)} do not fit the model "
                         f"({' '.join(str(err).split())[:200]})") from None


@dataclass(frozen=True)
class LayerDtype:
    """Dtypes one weighted layer ends in: its type (a fused type such as
    ``ConvReLU2d`` shows the fusion), its weight's dtype and the dtypes of the
    tensors that flowed in and out on an example call."""

    layer: str
    type: str
    weight: str
    input: str
    output: str


def layer_dtypes(model: nn.Module, example: torch.Tensor) -> list[LayerDtype]:
    """One :class:`LayerDtype` per layer that has a weight, in call order.

    Seen on a real forward pass: a dynamically quantized linear layer shows an
    int8 weight between float32 input and output (its inputs are quantized
    inside the call), a statically quantized one quint8 activations.
    """
    seen: dict[str, LayerDtype] = {}

    def dtype_name(value) -> str:
        tensor = value[0] if isinstance(value, (tuple, list)) else value
        return str(tensor.dtype).removeprefix("torch.") if isinstance(tensor, torch.Tensor) else "-"

    def hook(name: str):
        def record(module: nn.Module, args: tuple, output) -> None:
            weight = module.weight() if callable(module.weight) else module.weight
            seen.setdefault(name, LayerDtype(name, type(module).__name__, dtype_name(weight),
                                             dtype_name(args), dtype_name(output)))
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules()
               if name and hasattr(module, "weight") and not isinstance(module, torch.fx.GraphModule)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return list(seen.values())


# --------------------------------------------------------------------------
# The experiment kind
# --------------------------------------------------------------------------

@register_kind
@dataclass(frozen=True)
class QuantConfig(Experiment):
    """One quantization experiment (kind ``quantize``): a trained network
    (``base``) turned int8 in one mode.

    The key hashes the base's key, the mode, the engine and only the settings
    the mode uses, so a changed calibration size recomputes static
    quantization but not dynamic. The float32 network and its int8 copy are
    measured in the same run, one after the other, so their latencies
    compare (``base_measure`` and ``measure`` in the record); quantization
    runs therefore never run beside others.

    Parameters
    ----------
    base : the network to quantize: any stored torch network (trained from
        scratch, pruned, distilled), trained now or loaded from the store.
    mode : ``"dynamic"``, ``"static"`` or ``"qat"``.
    engine : ``"x86"``, ``"fbgemm"`` or ``"qnnpack"``.
    calibration_samples, observer : static quantization's calibration: that
        many training pixels (drawn with the base's seed; no labels used)
        and the activation observer.
    qat_epochs, qat_lr : quantization-aware fine-tuning on the base's
        training pixels, the epoch with the best validation accuracy kept.
    """

    kind = "quantize"
    concurrent = False

    base: Experiment
    mode: str = "static"
    engine: str = "x86"
    calibration_samples: int = 1000
    observer: str = "histogram"
    qat_epochs: int = 3
    qat_lr: float = QAT_LR

    def __post_init__(self) -> None:
        check_settings(self.mode, self.engine, self.observer, self.calibration_samples,
                       self.qat_epochs, self.qat_lr)
        if get_model(self.base.network_config().model).family != "torch":
            raise ValueError(f"model {self.base.network_config().model!r} is not a torch network; "
                             "only those quantize")

    def weights_missing(self) -> str | None:
        return "an int8 network's packed weights are not stored; quantizing again rebuilds them"

    def key_material(self) -> dict:
        return {"base": self.base.key(), "mode": self.mode, "engine": self.engine,
                **{name: getattr(self, name) for name in get_mode(self.mode).settings}}

    def label(self) -> str:
        return f"{self.base.label()} {self.mode}"

    def execute(self, context: RunContext) -> Outcome:
        data, config = context.data, self.network_config()
        seed = config.seed
        mode = get_mode(self.mode)
        reference = context.reference(self.base)
        view = context.view("cpu")
        calibration_idx = np.random.default_rng(seed).permutation(data.fit_idx)[:self.calibration_samples]
        torch.manual_seed(seed)
        start = time.perf_counter()
        quantized = quantize(
            reference.model, self.mode, view(data.test_idx[:1]), engine=self.engine,
            calibration=view(calibration_idx) if mode.data == "unlabeled" else None,
            calibration_samples=self.calibration_samples, observer=self.observer,
            training=LabelledData(view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                                  config.batch_size),
            qat_epochs=self.qat_epochs, qat_lr=self.qat_lr, seed=seed, progress=context.progress)
        quantize_s = time.perf_counter() - start
        return Outcome(
            predict_scores(quantized.model, view, data.test_idx), quantized.model,
            {"method": self.mode, "method_title": mode.title, "data_needed": mode.data,
             "backend": BACKEND.title,
             "layer_dtypes": [dataclasses.asdict(row)
                              for row in layer_dtypes(quantized.model, view(data.test_idx[:1]))],
             "calibration_used": quantized.calibration_used, "compress_s": quantize_s,
             "qat_history": None if quantized.history is None else dataclasses.asdict(quantized.history)},
            reference=reference, training=[] if quantized.history is None else [quantized.history])


def quantization_grid(bases: list[Config], modes: list[str], **settings) -> list[QuantConfig]:
    """Every base network in every mode, with the same ``settings`` (fields of
    :class:`QuantConfig`)."""
    return [QuantConfig(base, mode, **settings) for base in bases for mode in modes]
