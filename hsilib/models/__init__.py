"""Models of the paper, by name."""

from .cnn2d import CNN2D

__all__ = ["CNN2D"]
