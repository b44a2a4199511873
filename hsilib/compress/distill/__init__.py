"""Knowledge distillation: fourteen methods, offline (a trained teacher
guides a student), online (peers or branches teach each other) and self
(a network teaches itself), one module each behind one registry
(:data:`~.base.DISTILLERS`), run as the ``distill`` experiment kind
(:class:`~.runs.DistillConfig`)."""

# Each method module registers itself; this order is the rows of Tables 11-13.
from . import (soft_targets, fitnets, attention, correlation, simkd, camkd,  # noqa: F401  # isort: skip
               dml, one, clilr, okddip, tfkd, cskd, pskd, ddgsd)
from .base import DISTILLERS, FAMILIES, Distiller, TrainingPixels, get_distiller, kl_batchmean, soft_kl
from .runs import DistillConfig, distillation_grid, register_methods

register_methods()

__all__ = ["DISTILLERS", "DistillConfig", "Distiller", "FAMILIES", "TrainingPixels",
           "distillation_grid", "get_distiller", "kl_batchmean", "soft_kl"]
