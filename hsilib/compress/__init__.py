"""Compression methods, registered by name (:mod:`hsilib.compress.methods`),
in the paper's order: structured pruning (:mod:`hsilib.compress.prune`),
quantization (:mod:`hsilib.compress.quantization`), knowledge distillation
(:mod:`hsilib.compress.distill`), and low-rank approximation
(:mod:`hsilib.compress.lowrank`), which the paper names as a limitation."""

from .methods import METHODS, Method, get_method, register_method
from .prune.strategies import PruneConfig, SparsityConfig, pruning_grid, scratch_config  # isort: skip
from .quantization import (ENGINES, MODES, OBSERVER_NAMES, LabelledData, LayerDtype,  # isort: skip
                           QuantConfig, Quantized, check_engine, check_settings, get_mode,
                           layer_dtypes, quantization_grid, quantize, select_engine)
from .distill import DistillConfig, distillation_grid  # isort: skip
from .lowrank import LowRankConfig  # isort: skip

__all__ = ["DistillConfig", "ENGINES", "LabelledData", "LayerDtype", "LowRankConfig", "METHODS", "MODES",
           "Method", "OBSERVER_NAMES", "PruneConfig", "QuantConfig", "Quantized", "SparsityConfig",
           "check_engine", "check_settings", "distillation_grid", "get_method", "get_mode",
           "layer_dtypes", "pruning_grid", "quantization_grid", "quantize", "register_method",
           "scratch_config", "select_engine"]
