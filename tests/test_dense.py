"""Scoring over the image at once (hsilib.dense) equals scoring patch by patch."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from hsilib import dense
from hsilib.compress.lowrank import decompose, full_ranks
from hsilib.compress.prune.gates import add_gates
from hsilib.data import PatchSampler
from hsilib.models import CNN2D, build_model
from hsilib.models.cnn3d import CNN3D
from hsilib.train import eval_mode, predict_scores

H, W, C = 61, 47, 12


@pytest.fixture(scope="module")
def sampler():
    cube = np.random.default_rng(0).normal(size=(H, W, C)).astype(np.float32)
    return PatchSampler(cube, 19)


def randomised(model: nn.Module) -> nn.Module:
    """Eval mode with batch-norm statistics far from the identity, so a wrong
    window or pool phase cannot hide behind them."""
    torch.manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.normal_()
    return model.eval()


def patch_by_patch(model: nn.Module, view, index: np.ndarray) -> np.ndarray:
    with torch.inference_mode(), eval_mode(model):
        return torch.cat([model(view(index[i:i + 64])) for i in range(0, len(index), 64)]).numpy()


def counting(view):
    """``view`` (a sampler's bound method, kept as such) and how many pixels it cut patches for."""
    cut = []
    original = view.__func__

    @functools.wraps(original)
    def wrapped(self, index):
        cut.append(len(index))
        return original(self, index)
    return wrapped.__get__(view.__self__), cut


def every_pixel() -> np.ndarray:
    return np.arange(H * W)


NETWORKS = {
    "cnn2d": lambda: CNN2D(C, 7),
    "cnn2d pruned widths": lambda: CNN2D(C, 7, filters=(5, 10), hidden=10),
    "cnn2d low-rank": lambda: decompose(CNN2D(C, 7), {name: tuple(max(1, r // 3) for r in ranks)
                                                      for name, ranks in full_ranks(CNN2D(C, 7)).items()}),
    "cnn3d": lambda: CNN3D(C, 7, depths=(5, 4), filters=(4, 6), hidden=20),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_image_at_once_equals_patch_by_patch(sampler, name):
    model = randomised(NETWORKS[name]())
    view = sampler.cubes if isinstance(model, CNN3D) else sampler.patches
    counted, cut = counting(view)
    index = every_pixel()
    got = predict_scores(model, counted, index)
    expected = patch_by_patch(model, view, index)
    assert sum(cut) == 0, "every pixel should have been scored over the image"
    np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)


def test_gated_network_is_scored_over_the_image(sampler):
    model = CNN2D(C, 7)
    add_gates(model)
    model = randomised(model)
    counted, cut = counting(sampler.patches)
    got = predict_scores(model, counted, every_pixel())
    assert sum(cut) == 0
    np.testing.assert_allclose(got, patch_by_patch(model, sampler.patches, every_pixel()), atol=2e-5, rtol=1e-4)


def test_sparse_pixels_are_cut_as_patches_and_the_order_is_kept(sampler):
    model = randomised(CNN2D(C, 7))
    # A dense block of rows (scored over the image) and a few scattered pixels
    # (cheaper as patches), shuffled: the scores come back in the given order.
    rng = np.random.default_rng(3)
    block = np.arange(0, 20 * W)
    scattered = np.array([40 * W + 3, 52 * W + 30, 60 * W + 46])
    index = rng.permutation(np.concatenate([block, scattered]))
    counted, cut = counting(sampler.patches)
    got = predict_scores(model, counted, index)
    assert sum(cut) == len(scattered)
    np.testing.assert_allclose(got, patch_by_patch(model, sampler.patches, index), atol=2e-5, rtol=1e-4)


def test_networks_of_another_form_are_scored_patch_by_patch(sampler):
    class Strided(CNN2D):
        """A first convolution with stride 2: not the same at every position."""

        def __init__(self):
            super().__init__(C, 7, patch_size=19)
            self.conv1 = nn.Conv2d(C, 50, 5, stride=2)
            self.fc1 = nn.Linear(400, 100)

    model = randomised(Strided())
    counted, cut = counting(sampler.patches)
    got = predict_scores(model, counted, every_pixel())
    assert sum(cut) == H * W
    np.testing.assert_allclose(got, patch_by_patch(model, sampler.patches, every_pixel()), atol=1e-6)
    spectral = build_model("mlp", C, 7).eval()
    assert predict_scores(spectral, sampler.spectra, every_pixel()).shape == (H * W, 7)


def test_batch_norm_in_training_mode_is_not_taken_as_spatial():
    norm = nn.BatchNorm2d(3).train()
    assert not dense._spatial(norm)
    assert dense._spatial(norm.eval())
