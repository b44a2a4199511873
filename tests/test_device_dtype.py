"""Compression follows the network's device and dtype: the whole path (select,
apply, soft pruning, fine-tune, distill, low-rank) on a float64 network on
the CPU, where any layer or tensor built with defaults (float32) breaks it,
and on CUDA where one is present (skipped, and reported as skipped, where not)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hsilib.compress.distill.base import DISTILLERS, TrainingPixels
from hsilib.compress.lowrank import decompose, full_ranks
from hsilib.compress.prune import CRITERIA, TrainingInputs, apply, select, target_widths
from hsilib.compress.prune.criteria.sfp import SoftPruning
from hsilib.compress.prune.gates import add_gates, fold_gates
from hsilib.data import PatchSampler
from hsilib.models import CNN2D
from hsilib.train import fit

C, K = 6, 4
PLACES = [pytest.param("cpu", torch.float64, id="cpu-float64"),
          pytest.param("cuda", torch.float32, id="cuda-float32",
                       marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]


@pytest.fixture(scope="module")
def sampler():
    cube = np.random.default_rng(0).normal(size=(30, 30, C)).astype(np.float32)
    return PatchSampler(cube, 19)


def setup(sampler, device, dtype, n=48):
    torch.manual_seed(0)
    model = CNN2D(C, K).to(device=device, dtype=dtype)
    index = np.arange(n) * 7 % (30 * 30)
    labels = np.arange(n) % K

    def view(idx):
        return sampler.patches(idx).to(device=device, dtype=dtype)
    return model, view, index, labels


def follows(module: torch.nn.Module, device: str, dtype: torch.dtype) -> None:
    """Every weight and persistent buffer (a loss-side buffer, like PS-KD's
    float32 prediction bank, is the method's own)."""
    for name, tensor in module.state_dict().items():
        assert tensor.device.type == device, f"{name} on {tensor.device}"
        if tensor.is_floating_point():
            assert tensor.dtype == dtype, f"{name} is {tensor.dtype}"


@pytest.mark.parametrize("device, dtype", PLACES)
@pytest.mark.parametrize("criterion", list(CRITERIA))
def test_pruning_follows_the_network(sampler, device, dtype, criterion):
    model, view, index, labels = setup(sampler, device, dtype)
    if criterion == "slimming":
        add_gates(model)
    widths = target_widths(model, "95%")
    if criterion == "sfp":
        soft = SoftPruning(widths, TrainingInputs(view, index))
        fit(model, view, index, labels, index[:8], labels[:8], epochs=1, lr=1e-3, batch_size=16,
            progress=False, callbacks=[soft])
    selection = select(model, criterion, widths, data=TrainingInputs(view, index))
    pruned = apply(model, selection, example=view(index[:16]))
    fold_gates(pruned)
    follows(pruned, device, dtype)
    fit(pruned, view, index, labels, index[:8], labels[:8], epochs=1, lr=1e-3, batch_size=16, progress=False)
    assert pruned(view(index[:4])).dtype == dtype


@pytest.mark.parametrize("device, dtype", PLACES)
def test_low_rank_follows_the_network(sampler, device, dtype):
    model, view, index, labels = setup(sampler, device, dtype)
    smaller = decompose(model, {name: tuple(max(1, r // 2) for r in ranks)
                                for name, ranks in full_ranks(model).items()})
    follows(smaller, device, dtype)
    assert smaller(view(index[:4])).dtype == dtype


@pytest.mark.parametrize("device, dtype", PLACES)
@pytest.mark.parametrize("method", list(DISTILLERS))
def test_distillation_follows_the_student(sampler, device, dtype, method):
    teacher, view, index, labels = setup(sampler, device, dtype)
    teacher.eval()
    cls = DISTILLERS[method]

    def make_student():
        return CNN2D(C, K, filters=(5, 10), hidden=10)  # built on the CPU in float32, as a user's might be
    student = make_student().to(device=device, dtype=dtype)
    pixels = TrainingPixels(view, index, labels, K, 0, 1)
    teachers = [teacher] * cls.teachers
    # A tunable setting is a grid DistillConfig searches on validation: give one value.
    settings = {name: cls.defaults[name][0] for name in cls.tunable}
    distiller = cls(student, teachers, pixels, make_student, **settings)
    follows(distiller, device, dtype)
    x, y = view(index[:16]), torch.as_tensor(labels[:16], device=device)
    distiller.train()
    distiller.epoch_start(1, distiller)
    _, terms = distiller.objective(x, y, index[:16])
    sum(terms.values()).backward()
    assert distiller.deployed()(x).dtype == dtype
