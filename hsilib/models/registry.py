"""Registry of the paper's models (Section 3.1, Table 3), by name.

A :class:`ModelSpec` says how to build a model and what it eats: which
``PatchSampler`` view (``spectrum``, ``patch`` or ``cube``), how many input
channels by default (PCA components, or ``None`` for every standardized band)
and which patch size. The training engine and the experiment runner only ever
go through this registry, so a new model is one ``register`` call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..registry import Registry

FAMILIES = ("torch", "sklearn")
INPUTS = ("spectrum", "patch", "cube")


class UnknownModelError(KeyError):
    """A model name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model.

    Parameters
    ----------
    name : registry key (``"cnn2d"``).
    title : the paper's row label in Table 3 (``"CNN2D (c=40)"``).
    family : ``"torch"`` (trained by :func:`hsilib.train.fit`) or ``"sklearn"``.
    input : the ``PatchSampler`` view fed to the model: ``"spectrum"`` (N, C),
        ``"patch"`` (N, C, s, s) or ``"cube"`` (N, 1, C, s, s).
    components : default input channels: PCA components, or ``None`` for all
        standardized bands.
    patch_size : default odd patch side (1 for spectral models).
    build : ``build(channels, n_classes, patch_size)`` -> a ``torch.nn.Module``
        or an unfitted scikit-learn estimator; a network with prunable layers
        also takes ``widths=`` (their output widths, in forward order).
    grid : for scikit-learn models, hyperparameter values tried on the
        validation split (``{"C": [1, 10, 100]}``); empty for torch models.
    network : the torch class built (a :class:`~hsilib.models.network.Network`);
        ``None`` for scikit-learn models.
    """

    name: str
    title: str
    family: str
    input: str
    components: int | None
    patch_size: int
    build: Callable[[int, int, int], Any]
    grid: dict[str, list] = field(default_factory=dict)
    network: type | None = None

    @property
    def prunable(self) -> tuple[str, ...]:
        """Layers whose output width a config can set (none for scikit-learn models)."""
        return self.network.prunable if self.network is not None else ()

    def check_widths(self, widths) -> tuple[int, ...]:
        """``widths`` as a tuple if it gives one positive integer per prunable
        layer, else a clear error."""
        if not self.prunable:
            raise ValueError(f"model {self.name!r} has no prunable layers: it takes no widths")
        widths = tuple(widths) if isinstance(widths, (list, tuple)) else (widths,)
        if len(widths) != len(self.prunable) or not all(
                type(w) is int and w >= 1 for w in widths):
            raise ValueError(f"{self.name} widths must be {len(self.prunable)} positive integers "
                             f"({', '.join(self.prunable)}), got {widths}")
        return widths

    def make(self, channels: int, n_classes: int, patch_size: int | None = None,
             widths: tuple[int, ...] | None = None):
        """Build the model (``patch_size`` ``None``: the default; ``widths``
        ``None``: the paper's widths)."""
        patch = self.patch_size if patch_size is None else patch_size
        if widths is None:
            return self.build(channels, n_classes, patch)
        return self.build(channels, n_classes, patch, widths=self.check_widths(widths))

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: unknown family {self.family!r}; accepted: {', '.join(FAMILIES)}")
        if self.input not in INPUTS:
            raise ValueError(f"{self.name}: unknown input {self.input!r}; accepted: {', '.join(INPUTS)}")
        if self.patch_size < 1 or self.patch_size % 2 == 0:
            raise ValueError(f"{self.name}: patch_size must be a positive odd integer, got {self.patch_size}")


MODELS: Registry[ModelSpec] = Registry("model", UnknownModelError)
register = MODELS.add
get_model = MODELS.find


def build_model(name: str, channels: int, n_classes: int, patch_size: int | None = None,
                widths: tuple[int, ...] | None = None):
    """Build model ``name`` for ``channels`` inputs and ``n_classes`` outputs
    (``widths``: its prunable layers' widths, e.g. ``(15, 30, 30)`` for
    Table 5's 90% CNN2D)."""
    return get_model(name).make(channels, n_classes, patch_size, widths)


def example_input(name: str, channels: int, patch_size: int | None = None, batch: int = 1):
    """A zero batch shaped as model ``name``'s sampler view delivers it."""
    import torch  # the registry itself does not need torch

    spec = get_model(name)
    s = spec.patch_size if patch_size is None else patch_size
    shape = {"spectrum": (batch, channels), "patch": (batch, channels, s, s),
             "cube": (batch, 1, channels, s, s)}[spec.input]
    return torch.zeros(shape)
