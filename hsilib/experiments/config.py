"""Experiment configs: frozen, content-hashed, each of a registered ``kind``.

An experiment is a frozen dataclass deriving from :class:`Experiment`. It
says what it is (its fields), what it needs first (:meth:`~Experiment.dependencies`,
e.g. the trained network it compresses), which baseline :class:`Config` sets
its data (:meth:`~Experiment.network_config`), and how to produce its result
(:meth:`~Experiment.execute`, given a :class:`~hsilib.experiments.runner.RunContext`).
Everything else, caching, storage, provenance, measurement and grids, is the
runner's (:mod:`hsilib.experiments.runner`), the same for every kind.

:class:`Config` is the ``train`` kind: a network trained from scratch (the
baselines of Table 3, and the narrower networks of Table 5 through
``widths``). A compression config wraps the config of the network it starts
from (``base``) and never adds fields to :class:`Config`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..data import get_scene
from ..data.load import DATA_SOURCES, load_scene
from ..data.preprocess import FIT_ON
from ..data.splits import DEFECT_POLICIES, SPLIT_KINDS
from ..data.twin import TWIN_VERSION
from ..models import MODELS, get_model
from ..registry import Registry
from ..precision import AUTO as AUTO_PRECISION
from ..precision import CHOICES as PRECISION_CHOICES
from ..precision import resolve_precision

if TYPE_CHECKING:  # the runner imports this module
    from .runner import Outcome, RunContext

# Bump when a change to the code changes what a config produces or what a
# record holds: old records then no longer match any key.
# 2: records carry their kind, stored weights their sha256, measurements the
#    full parameter count; keys hash the kind.
# 3: training stops on a validation plateau (epochs are a maximum); records
#    say whether it converged; precision "auto" resolved by the machine.
# 4: ONE/OKDDip ramp from e^-5 in the first epoch; ThiNet's tie rule; Slimming's
#    gate decay in strategy II/III fine-tunes; CC's beta chosen on validation;
#    distillation records carry measured forward passes and every peer's metrics.
RESULTS_SCHEMA = 4
# The paper's learning rates (Section 4); other scenes use the first.
PAPER_LR = {"indian_pines": 1e-3, "pavia_university": 8e-4}
DEFAULT_LR = 1e-3
ALL_BANDS = "all"
MODEL_DEFAULT = "model"
# The paper's patches are 19 pixels; one of 63 x 63 x 40 channels is already
# 635 KB a sample (a batch of 100: 64 MB), and larger ones only run slowly.
MAX_PATCH = 63
# Config fields that do not change what a model family produces.
IGNORED_FIELDS = {"torch": (), "sklearn": ("epochs", "batch_size", "lr", "precision")}


class Experiment:
    """Base of every experiment config (subclasses are frozen dataclasses).

    Class attributes
    ----------------
    kind : the registered name (every record carries it).
    concurrent : may run on a grid's executor beside others; ``False`` runs
        it in the grid's own process, one at a time (kinds that time one
        network against another).
    """

    kind: ClassVar[str]
    concurrent: ClassVar[bool] = True

    def network_config(self) -> "Config":
        """The baseline config whose scene, split, seed and preprocessing this
        uses: by default its ``base``'s (a compression config names the
        network it starts from ``base``)."""
        return self.base.network_config()

    def dependencies(self) -> tuple["Experiment", ...]:
        """Experiments that must be stored before this one runs: by default its ``base``."""
        return (self.base,)

    def previous(self) -> "Experiment | None":
        """The stored network this one continues from, which its record is
        compared with (agreement, ``base_key``): by default its ``base``."""
        return self.base

    def resolved(self) -> "Experiment":
        """This experiment with every default made explicit (no data loaded):
        by default, every experiment it holds resolved."""
        return self._replace_experiments(lambda e: e.resolved())

    def map_configs(self, change) -> "Experiment":
        """This experiment with every :class:`Config` it holds, however
        deep, replaced by ``change(config)``."""
        return self._replace_experiments(lambda e: e.map_configs(change))

    def with_source(self, source: str) -> "Experiment":
        """This experiment on data source ``source`` (``"real"`` or ``"twin"``)."""
        return self.map_configs(lambda c: dataclasses.replace(c, data_source=source))

    def rebased(self, base: "Config") -> "Experiment":
        """The same recipe from another network trained from scratch: every
        config trained from scratch this holds replaced by ``base`` (the
        best pruning of one scene, run on another)."""
        return self.map_configs(lambda c: base)

    def _replace_experiments(self, change) -> "Experiment":
        """This experiment with ``change`` applied to every experiment it
        holds, alone or in a tuple (a distillation's teachers)."""
        changed = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Experiment):
                changed[field.name] = change(value)
            elif isinstance(value, tuple) and value and all(isinstance(v, Experiment) for v in value):
                changed[field.name] = tuple(change(v) for v in value)
        return dataclasses.replace(self, **changed)

    def key_material(self) -> dict[str, Any]:
        """What the key hashes besides the schema and kind (JSON-ready)."""
        raise NotImplementedError

    def label(self) -> str:
        """A short human description (progress bars, error reports)."""
        raise NotImplementedError

    def weights_missing(self) -> str | None:
        """Why the runner keeps no weights of what this experiment produces
        (``None``: it stores them, so later experiments can start from it,
        see :func:`~hsilib.experiments.trained_model`)."""
        return None

    def network(self, data) -> Any:
        """An untrained instance of the network this experiment produces, for
        loading its stored weights."""
        raise NotImplementedError

    def execute(self, context: "RunContext") -> "Outcome":
        """Produce the result; the runner measures, records and stores it."""
        raise NotImplementedError

    def key(self) -> str:
        """Content hash (16 hex digits) of the resolved experiment: its kind,
        :meth:`key_material` and the results schema."""
        resolved = resolve(self)
        material = {"schema": RESULTS_SCHEMA, "kind": resolved.kind, **resolved.key_material()}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


KINDS: Registry[type[Experiment]] = Registry("experiment kind")


def register_kind(cls: type[Experiment]) -> type[Experiment]:
    """Class decorator: add an experiment kind to :data:`KINDS` (names are unique)."""
    return KINDS.add(cls, cls.kind)


def resolve(experiment: Experiment, device: str = "auto") -> Experiment:
    """``experiment`` resolved, with ``data_source="auto"`` replaced by the
    source really available (the scene's cube is loaded once per process)
    and each network's ``precision="auto"`` by the precision ``device``
    trains it fastest in (:mod:`hsilib.precision`)."""
    experiment = experiment.resolved()
    root = experiment.network_config()
    if root.data_source == "auto":
        # load_scene warns loudly when this falls back to the twin.
        experiment = experiment.with_source(load_scene(root.scene, "auto").source)
    return experiment.map_configs(lambda c: c.with_precision_for(device))


def _check_type(name: str, value: Any, types: tuple[type, ...]) -> None:
    # bool is an int to Python, never a count or a seed here.
    if isinstance(value, bool) or not isinstance(value, types):
        accepted = " or ".join(t.__name__ for t in types)
        raise TypeError(f"{name} must be {accepted}, got {value!r} ({type(value).__name__})")


@register_kind
@dataclass(frozen=True)
class Config(Experiment):
    """One network trained from scratch (kind ``train``).

    Parameters
    ----------
    scene, split : a registered scene and ``"random"`` or ``"disjoint"``.
    model : a registered model (``hsilib models`` lists them).
    seed : seeds the weights, the batch order, the validation carve-out and,
        for ``split="random"``, the split itself.
    epochs, batch_size : training length and batch (torch models).
    lr : Adam learning rate; ``None`` takes the paper's rate for the scene.
    components : input channels: a number of PCA components, ``"all"``
        (every standardized band) or ``"model"`` (the model's default).
    patch_size : odd patch side; ``None`` takes the model's default.
    pca_fit : ``"train"`` or ``"image"`` (see :class:`~hsilib.data.Preprocessor`).
    defects : handling of the disjoint masks' known defects.
    val_fraction : share of each class's training pixels held out for
        model selection.
    precision : ``"auto"`` (bf16 where the device runs it natively and
        faster, else fp32: :mod:`hsilib.precision`), ``"fp32"`` or
        ``"bf16"`` (autocast). Keys hash the resolved precision.
    data_source : ``"auto"``, ``"real"`` or ``"twin"``.
    widths : output widths of the model's prunable layers (for CNN2D conv1,
        conv2 and fc1: ``(15, 30, 30)`` is Table 5's 90% network); ``None``
        is the paper's architecture.
    train_fraction : for a random split, the share of each class's pixels
        that trains (needed on scenes without disjoint masks, whose training
        counts a random split otherwise copies); ``None``: those counts.
    init_seed : seeds the initial weights and the batch order instead of
        ``seed``, which then only draws the split and the validation pixels:
        several networks on one split (the teachers of a multi-teacher
        method). ``None``: ``seed``.
    """

    kind: ClassVar[str] = "train"

    scene: str = "indian_pines"
    split: str = "disjoint"
    model: str = "cnn2d"
    seed: int = 0
    epochs: int = 10
    batch_size: int = 100
    lr: float | None = None
    components: int | str = MODEL_DEFAULT
    patch_size: int | None = None
    pca_fit: str = "train"
    defects: str = "clean"
    val_fraction: float = 0.1
    precision: str = AUTO_PRECISION
    data_source: str = "auto"
    widths: tuple[int, ...] | None = None
    init_seed: int | None = None
    train_fraction: float | None = None

    def __post_init__(self) -> None:
        scene = get_scene(self.scene)  # clear errors for unknown names
        spec = get_model(self.model)
        for name, value, accepted in (("split", self.split, SPLIT_KINDS),
                                      ("pca_fit", self.pca_fit, FIT_ON),
                                      ("defects", self.defects, DEFECT_POLICIES),
                                      ("precision", self.precision, PRECISION_CHOICES),
                                      ("data_source", self.data_source, DATA_SOURCES)):
            if value not in accepted:
                raise ValueError(f"unknown {name} {value!r}; accepted: {', '.join(accepted)}")
        for name in ("seed", "epochs", "batch_size"):
            _check_type(name, getattr(self, name), (int,))
        if self.init_seed is not None:
            _check_type("init_seed", self.init_seed, (int,))
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(f"epochs must be >= 1 and batch_size >= 2, got {self.epochs}, {self.batch_size}")
        if self.lr is not None:
            _check_type("lr", self.lr, (int, float))
            if not self.lr > 0:
                raise ValueError(f"lr must be positive, got {self.lr}")
        if not (self.components in (ALL_BANDS, MODEL_DEFAULT)
                or (type(self.components) is int and 1 <= self.components <= scene.n_bands)):
            raise ValueError(f"components must be an integer from 1 to {scene.n_bands} (the bands of "
                             f"{self.scene}), {ALL_BANDS!r} or {MODEL_DEFAULT!r}, got {self.components!r}")
        if self.patch_size is not None and (type(self.patch_size) is not int
                                            or not 1 <= self.patch_size <= MAX_PATCH
                                            or self.patch_size % 2 == 0):
            raise ValueError(f"patch_size must be an odd integer from 1 to {MAX_PATCH}, "
                             f"got {self.patch_size!r}")
        _check_type("val_fraction", self.val_fraction, (float,))
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.train_fraction is not None:
            _check_type("train_fraction", self.train_fraction, (float,))
            if self.split != "random" or not 0.0 < self.train_fraction < 1.0:
                raise ValueError(f"train_fraction applies to random splits, in (0, 1); got "
                                 f"{self.train_fraction} for a {self.split} split")
        elif self.split == "disjoint" and scene.disjoint is None:
            raise ValueError(f"scene {self.scene!r} has no disjoint masks; use split='random' with "
                             "a train_fraction")
        elif self.split == "random" and scene.disjoint is None:
            raise ValueError(f"scene {self.scene!r} has no disjoint masks to copy training counts "
                             "from: a random split on it needs train_fraction")
        if self.widths is not None:  # a list (JSON, papermill) becomes a tuple
            object.__setattr__(self, "widths", spec.check_widths(self.widths))

    def network_config(self) -> "Config":
        return self

    def dependencies(self) -> tuple[Experiment, ...]:
        return ()

    def previous(self) -> None:
        return None

    def map_configs(self, change) -> "Config":
        return change(self)

    def with_precision_for(self, device: str = "auto") -> "Config":
        """This config with ``precision="auto"`` resolved for ``device``."""
        if self.precision != AUTO_PRECISION:
            return self
        return dataclasses.replace(self, precision=resolve_precision(self.precision, self.model, device))

    def resolved(self) -> "Config":
        spec = get_model(self.model)
        components = spec.components if self.components == MODEL_DEFAULT else self.components
        return dataclasses.replace(
            self, lr=PAPER_LR.get(self.scene, DEFAULT_LR) if self.lr is None else self.lr,
            components=ALL_BANDS if components is None else components,
            patch_size=spec.patch_size if self.patch_size is None else self.patch_size)

    def key_material(self) -> dict[str, Any]:
        """The resolved fields, less those the model's family ignores
        (training length and precision, for scikit-learn models), plus the
        twin's version when the data is synthetic."""
        ignored = IGNORED_FIELDS[get_model(self.model).family]
        material = {k: v for k, v in dataclasses.asdict(self).items() if k not in ignored}
        for name in ("init_seed", "train_fraction"):
            if material[name] is None:  # absent, as before the field existed: stored keys stay valid
                del material[name]
        if self.data_source == "twin":
            material["twin_version"] = TWIN_VERSION
        return material

    def weights_missing(self) -> str | None:
        if get_model(self.model).family == "torch":
            return None
        torch_models = ", ".join(n for n, s in MODELS.items() if s.family == "torch")
        return (f"model {self.model!r} is a scikit-learn model; only torch models ({torch_models}) "
                "have trained weights")

    @property
    def weight_seed(self) -> int:
        """The seed of the initial weights and the batch order."""
        return self.seed if self.init_seed is None else self.init_seed

    def label(self) -> str:
        widths = "" if self.widths is None else f" {'/'.join(map(str, self.widths))}"
        init = "" if self.init_seed is None else f" init {self.init_seed}"
        return f"{self.model}{widths}/{self.scene}/{self.split}/seed {self.seed}{init}"

    def network(self, data) -> Any:
        return get_model(self.model).make(data.features.shape[2], data.n_classes, self.patch_size,
                                          self.widths)

    def execute(self, context: "RunContext") -> "Outcome":
        from .training import train  # the trainers import the runner

        return train(self, context)


def config_grid(**axes) -> list[Config]:
    """Every combination of the given :class:`Config` fields: a list value is
    an axis to cross (in the order given, last varying fastest), anything
    else is fixed. ``config_grid(scene=["indian_pines"], model=["mlp", "cnn2d"],
    seed=[0, 1], epochs=5)`` gives four configs."""
    names = list(axes)
    values = [v if isinstance(v, list) else [v] for v in axes.values()]
    return [Config(**dict(zip(names, combo))) for combo in itertools.product(*values)]


def per_model_grid(models: list[str], epochs: int, epochs_by_model: dict[str, int] | None = None,
                   **axes) -> list[Config]:
    """:func:`config_grid` for each of ``models``, each trained for its entry in
    ``epochs_by_model`` or else ``epochs``: cheap spectral models can train
    longer than costly 3-D ones within one time budget."""
    epochs_by_model = epochs_by_model or {}
    for name in epochs_by_model:
        get_model(name)  # a misspelt model name is an error, not silently ignored
    return [config for name in models
            for config in config_grid(**axes, model=name, epochs=epochs_by_model.get(name, epochs))]
