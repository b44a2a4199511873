"""Experiments: a frozen config of some kind -> :func:`run` -> a stored record.

* :mod:`~hsilib.experiments.config`: the :class:`Experiment` base, the kind
  registry and :class:`Config` (a network trained from scratch);
* :mod:`~hsilib.experiments.store`: records and weights on disk, atomic and checked;
* :mod:`~hsilib.experiments.data`: an experiment's data and input views;
* :mod:`~hsilib.experiments.runner`: :func:`run`, :func:`run_grid`,
  :func:`trained_model`: caching, provenance, measurement, failures, for every kind.
"""

from .config import (KINDS, RESULTS_SCHEMA, Config, Experiment, config_grid, per_model_grid,
                     register_kind, resolve)
from .data import ExperimentData, config_view, experiment_data, model_view
from .runner import (GridError, Outcome, Reference, RunContext, local_pool, provenance, run,
                     run_grid, trained_model)
from .store import CorruptRecordError, ResultStore, as_store

__all__ = ["KINDS", "RESULTS_SCHEMA", "Config", "CorruptRecordError", "Experiment", "ExperimentData",
           "GridError", "Outcome", "Reference", "ResultStore", "RunContext", "as_store",
           "config_grid", "config_view", "experiment_data", "local_pool", "model_view",
           "per_model_grid", "provenance", "register_kind", "resolve", "run", "run_grid",
           "trained_model"]
