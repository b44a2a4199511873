"""Training engine: validation carve-out, best-epoch selection, determinism."""

import numpy as np
import pytest
import torch
from torch import nn

from hsilib.data import PatchSampler
from hsilib.train import (fit, fit_estimator, predict_scores, resolve_device,
                          validation_split)


@pytest.fixture(scope="module")
def toy():
    """A 40x40 image of 4 classes in quadrants with class-dependent spectra."""
    rng = np.random.default_rng(0)
    labels = np.zeros((40, 40), int)
    labels[:20, 20:], labels[20:, :20], labels[20:, 20:] = 1, 2, 3
    signatures = rng.normal(size=(4, 8))
    cube = (signatures[labels] + rng.normal(scale=1.0, size=(40, 40, 8))).astype(np.float32)
    index = np.arange(1600)
    return PatchSampler(cube, patch_size=1), index, labels.ravel()


def spectral_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_validation_split_is_a_stratified_partition():
    labels = np.repeat([0, 1, 2, 3], [50, 10, 2, 1])
    index = np.arange(100, 163)
    fit_i, fit_y, val_i, val_y = validation_split(index, labels, 0.2, seed=3)
    assert sorted(np.concatenate([fit_i, val_i])) == list(index)
    assert not set(fit_i) & set(val_i)
    assert np.bincount(val_y, minlength=4).tolist() == [10, 2, 1, 0]  # >=1 if a class has >=2
    again = validation_split(index, labels, 0.2, seed=3)
    assert np.array_equal(again[2], val_i)
    assert not np.array_equal(validation_split(index, labels, 0.2, seed=4)[2], val_i)
    with pytest.raises(ValueError, match="validation fraction"):
        validation_split(index, labels, 0.0, seed=0)


def test_fit_learns_and_keeps_the_best_validation_epoch(toy):
    sampler, index, labels = toy
    fit_i, fit_y, val_i, val_y = validation_split(index, labels, 0.25, seed=0)
    model = spectral_net()
    history = fit(model, sampler.spectra, fit_i, fit_y, val_i, val_y, epochs=6, lr=0.05,
                  batch_size=50, progress=False)
    assert len(history.train_loss) == len(history.val_oa) == 6
    assert history.train_loss[-1] < history.train_loss[0]
    kept = (predict_scores(model, sampler.spectra, val_i).argmax(1) == val_y).mean()
    assert kept == pytest.approx(max(history.val_oa))
    assert history.val_oa[history.best_epoch - 1] == max(history.val_oa)
    assert kept > 0.8


def test_same_seed_same_weights_and_different_seed_differs(toy):
    sampler, index, labels = toy
    parts = validation_split(index, labels, 0.25, seed=0)

    def trained(seed):
        model = spectral_net(seed)
        fit(model, sampler.spectra, *parts, epochs=2, lr=0.01, seed=seed, progress=False)
        return torch.cat([p.flatten() for p in model.state_dict().values()])

    assert torch.equal(trained(1), trained(1))
    assert not torch.equal(trained(1), trained(2))


def test_bf16_autocast_trains_too(toy):
    sampler, index, labels = toy
    parts = validation_split(index, labels, 0.25, seed=0)
    history = fit(spectral_net(), sampler.spectra, *parts, epochs=3, lr=0.05, precision="bf16",
                  progress=False)
    assert max(history.val_oa) > 0.7
    with pytest.raises(ValueError, match="unknown precision 'fp8'.*fp32, bf16"):
        fit(spectral_net(), sampler.spectra, *parts, epochs=1, lr=0.01, precision="fp8",
            progress=False)


def test_fit_rejects_empty_sets_and_zero_epochs(toy):
    sampler, index, labels = toy
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        fit(spectral_net(), sampler.spectra, index, labels, index, labels, epochs=0, lr=0.1)
    with pytest.raises(ValueError, match="non-empty"):
        fit(spectral_net(), sampler.spectra, index, labels, index[:0], labels[:0], epochs=1, lr=0.1)


def test_fit_estimator_selects_on_validation():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = (x[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    estimator, selection = fit_estimator(lambda: LogisticRegression(), {"C": [1e-6, 1.0]},
                                         x[:200], y[:200], x[200:], y[200:])
    assert selection["chosen"] == {"C": 1.0}  # C=1e-6 shrinks to the prior: chance level
    assert [t["params"]["C"] for t in selection["tried"]] == [1e-6, 1.0]
    assert selection["val_oa"] == max(t["val_oa"] for t in selection["tried"]) > 0.8
    assert estimator.C == 1.0


def test_unavailable_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
