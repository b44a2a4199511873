"""Low-rank approximation: exact at full rank, on the parameter budgets of
Table 5's pruned networks, smaller as the rank falls."""

from __future__ import annotations

import pytest
import torch

from hsilib import measure
from hsilib.compress.lowrank import (BUDGET_TOLERANCE, decompose, decomposed_parameters, full_ranks,
                                     ranks_for_budget, svd_linear, tucker_conv)
from hsilib.compress.prune import target_widths
from hsilib.models import build_model, get_model

INPUTS = {"cnn2d": (4, 40, 19, 19), "cnn1d": (4, 200), "cnn3d": (2, 1, 40, 19, 19), "mlp": (4, 200)}


def network(name: str):
    torch.manual_seed(0)
    spec = get_model(name)
    return build_model(name, spec.components or 200, 16).eval()


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_full_rank_decomposition_is_exact(name):
    model, x = network(name), torch.randn(INPUTS[name], generator=torch.Generator().manual_seed(1))
    full = decompose(model, full_ranks(model)).eval()
    with torch.no_grad():
        assert (full(x) - model(x)).abs().max() < 1e-5
    assert decomposed_parameters(model, full_ranks(model)) == \
        sum(measure.parameters_per_layer(full).values())


def test_truncation_keeps_the_leading_singular_directions():
    layer = torch.nn.Linear(30, 20)
    x = torch.randn(50, 30)
    errors = []
    for rank in (2, 5, 10, 20):
        with torch.no_grad():
            errors.append((svd_linear(layer, rank)(x) - layer(x)).norm().item())
    assert errors == sorted(errors, reverse=True) and errors[-1] < 1e-4
    conv = torch.nn.Conv2d(8, 12, 3)
    y = torch.randn(2, 8, 7, 7)
    with torch.no_grad():
        small = (tucker_conv(conv, (3, 2))(y) - conv(y)).norm()
        large = (tucker_conv(conv, (10, 7))(y) - conv(y)).norm()
    assert large < small


@pytest.mark.parametrize("classes", [16, 9])  # Indian Pines, Pavia University
@pytest.mark.parametrize("ratio", ["90%", "95%", "98%"])
def test_ranks_hit_table_5_parameter_budgets(ratio, classes):
    spec = get_model("cnn2d")
    model = spec.make(40, classes, 19)
    pruned = spec.make(40, classes, 19, tuple(target_widths(model, ratio).values()))
    budget = sum(measure.parameters_per_layer(pruned).values())
    if classes == 16:  # Table 4's counts
        assert budget == {"90%": 49_321, "95%": 25_386, "98%": 8_951}[ratio]
    decomposed = decompose(model, ranks_for_budget(model, budget))
    count = sum(measure.parameters_per_layer(decomposed).values())
    assert abs(count - budget) <= BUDGET_TOLERANCE * budget
    with torch.no_grad():
        assert decomposed(torch.randn(2, 40, 19, 19)).shape == (2, classes)


def test_an_impossible_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="no ranks give 100 parameters within 2%"):
        ranks_for_budget(network("cnn2d"), 100)
