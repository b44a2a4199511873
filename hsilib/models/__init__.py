"""Models of the paper, by name (see :mod:`hsilib.models.registry`)."""

# Importing a model's module registers it; this order is Table 3's row order.
from . import classical, mlp, lstm, cnn1d, cnn2d, cnn3d  # isort: skip  # noqa: F401
from .cnn1d import CNN1D
from .cnn2d import CNN2D
from .cnn3d import CNN3D
from .lstm import SpectralLSTM
from .mlp import MLP
from .registry import (MODELS, ModelSpec, UnknownModelError, build_model, example_input, get_model,
                       register)

__all__ = ["CNN1D", "CNN2D", "CNN3D", "MLP", "MODELS", "ModelSpec", "SpectralLSTM",
           "UnknownModelError", "build_model", "classical", "example_input", "get_model",
           "register"]
