"""Model sizes against the paper's parameter counts (Tables 3-5)."""

import pytest
import torch

from hsilib.measure import norm_parameters, parameters_per_layer
from hsilib.models import CNN2D


def test_cnn2d_c40_matches_table_4_on_indian_pines():
    counts = parameters_per_layer(CNN2D(in_channels=40, n_classes=16))
    assert counts == {"conv1": 50_050, "conv2": 125_100, "fc1": 250_100, "fc2": 1_616}
    assert sum(counts.values()) == 426_866  # Table 3, CNN2D (c=40)


def test_cnn2d_c1_total_matches_table_3():
    assert sum(parameters_per_layer(CNN2D(in_channels=1, n_classes=16)).values()) == 378_116


def test_cnn2d_fc2_on_pavia_matches_table_4():
    assert parameters_per_layer(CNN2D(40, n_classes=9))["fc2"] == 909


def test_pruned_widths_of_table_5_give_table_4_conv_counts():
    # Table 5 at 90%: 15 and 30 filters, 30 hidden units; Table 4: conv2 11,280.
    counts = parameters_per_layer(CNN2D(40, 16, filters=(15, 30), hidden=30))
    assert counts["conv2"] == 30 * (15 * 25 + 1) == 11_280


def test_batch_norm_is_counted_separately():
    model = CNN2D(40, 16)
    assert norm_parameters(model) == 2 * (50 + 100)
    assert sum(p.numel() for p in model.parameters()) == 426_866 + 300


def test_cnn2d_output_shape_and_patch_validation():
    out = CNN2D(40, 16)(torch.zeros(3, 40, 19, 19))
    assert out.shape == (3, 16)
    with pytest.raises(ValueError, match="patch_size must be odd"):
        CNN2D(40, 16, patch_size=18)
