"""Compression methods: quantization (:mod:`hsilib.compress.quantize`)."""

from .quantize import (ENGINES, MODES, OBSERVER_NAMES, LabelledData, LayerDtype, Quantized,
                       check_engine, check_settings, get_mode, layer_dtypes, quantize,
                       select_engine)

__all__ = ["ENGINES", "MODES", "OBSERVER_NAMES", "LabelledData", "LayerDtype", "Quantized",
           "check_engine", "check_settings", "get_mode", "layer_dtypes", "quantize", "select_engine"]
