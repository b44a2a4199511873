"""Models of the paper, by name (see :mod:`hsilib.models.registry`)."""

from .cnn2d import CNN2D
from .registry import MODELS, ModelSpec, UnknownModelError, build_model, get_model, register

__all__ = ["CNN2D", "MODELS", "ModelSpec", "UnknownModelError", "build_model", "get_model",
           "register"]
