"""Compression methods, registered by name (:mod:`hsilib.compress.methods`):
quantization (:mod:`hsilib.compress.quantization`) and structured pruning
(:mod:`hsilib.compress.prune`) and knowledge distillation
(:mod:`hsilib.compress.distill`)."""

from .methods import METHODS, Method, get_method, register_method
from .quantization import (ENGINES, MODES, OBSERVER_NAMES, LabelledData, LayerDtype, QuantConfig,
                       Quantized, check_engine, check_settings, get_mode, layer_dtypes, quantize,
                       quantization_grid, select_engine)

from .distill import DistillConfig, distillation_grid
from .prune.strategies import PruneConfig, SparsityConfig, pruning_grid, scratch_config

__all__ = ["DistillConfig", "PruneConfig", "SparsityConfig", "distillation_grid", "pruning_grid",
           "scratch_config", "ENGINES", "METHODS", "MODES", "Method", "OBSERVER_NAMES", "LabelledData", "LayerDtype",
           "QuantConfig", "Quantized", "check_engine", "check_settings", "get_method", "get_mode",
           "layer_dtypes", "quantization_grid", "quantize", "register_method", "select_engine"]
