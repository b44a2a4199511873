"""The ``train`` kind's step: a network trained from scratch (torch) or a
scikit-learn model fitted with its validation grid."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..models import get_model
from ..train import estimator_scores, fit, fit_estimator, predict_scores
from .config import Config
from .runner import Outcome, RunContext


def train_torch(config: Config, context: RunContext) -> Outcome:
    """Adam and cross-entropy from the seed's initial weights; the best
    validation epoch is kept (:func:`hsilib.train.fit`)."""
    data = context.data
    view = context.view()
    torch.manual_seed(config.weight_seed)
    model = config.network(data)
    model = model.to(context.device, memory_format=model.memory_format)
    history = fit(model, view, data.fit_idx, data.fit_y, data.val_idx, data.val_y,
                  epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                  seed=config.weight_seed, precision=config.precision, progress=context.progress)
    scores = predict_scores(model, view, data.test_idx, precision=config.precision)
    return Outcome(scores, model, {"history": dataclasses.asdict(history)}, training=[history])


def train_sklearn(config: Config, context: RunContext) -> Outcome:
    """The model's hyperparameter grid, chosen on the validation pixels."""
    data = context.data
    spec = get_model(config.model)
    pixels = context.view()
    # These small dense problems run many times faster on one BLAS thread than
    # on several (measured: ~20x for the logistic regression on 2 cores).
    with threadpool_limits(limits=1):
        estimator, selection = fit_estimator(
            lambda: config.network(data), spec.grid, pixels(data.fit_idx), data.fit_y,
            pixels(data.val_idx), data.val_y, seed=config.seed)
        # Classes absent from the fitting pixels get no column: they score lowest.
        scores = np.full((len(data.test_idx), data.n_classes), -np.inf, np.float32)
        scores[:, estimator.classes_] = estimator_scores(estimator, pixels(data.test_idx))
    return Outcome(scores, estimator, {"selection": selection})


TRAINERS = {"torch": train_torch, "sklearn": train_sklearn}


def train(config: Config, context: RunContext) -> Outcome:
    """Train ``config``'s model by its family's trainer."""
    return TRAINERS[get_model(config.model).family](config, context)
