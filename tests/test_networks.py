"""What compression methods read from a network: taps, widths, branches; and
the MAC counter checked against torch's own FLOP counter."""

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hsilib import measure
from hsilib.experiments import Config
from hsilib.models import MODELS, build_model, example_input, get_model
from hsilib.models.network import Branched

TORCH = [n for n, s in MODELS.items() if s.family == "torch"]
# Table 5's networks and Table 4's paper-convention counts on Indian Pines.
TABLE5 = {(15, 30, 30): (15_015, 11_280, 22_530, 496, 49_321),
          (10, 20, 20): (10_010, 5_020, 10_020, 336, 25_386),
          (5, 10, 10): (5_005, 1_260, 2_510, 176, 8_951)}


def ip_network(name, widths=None, seed=0):
    torch.manual_seed(seed)
    spec = get_model(name)
    return build_model(name, spec.components or 200, 16, widths=widths)


def random_input(name, batch=4):
    spec = get_model(name)
    shape = example_input(name, spec.components or 200, batch=batch).shape
    return torch.randn(shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", TORCH)
def test_forward_features_logits_equal_forward_in_both_modes(name):
    model, x = ip_network(name), random_input(name)
    for train in (False, True):
        model.train(train)
        torch.manual_seed(0)
        taps = model.forward_features(x)
        torch.manual_seed(0)
        assert torch.equal(taps["logits"], model(x)), (name, train)
        assert list(taps) == list(model.taps) and model.taps[-1] == "logits"


def test_cnn2d_taps_are_the_specs_tensors():
    model = ip_network("cnn2d").eval()
    x = random_input("cnn2d")
    taps = model.forward_features(x)
    assert {k: tuple(v.shape[1:]) for k, v in taps.items()} == {
        "conv1": (50, 15, 15), "conv2": (100, 11, 11), "pool": (100, 5, 5), "fc1": (100,),
        "logits": (16,)}
    # conv2 is after batch norm and ReLU, before pooling; pool is its 2x2 max.
    assert (taps["conv2"] >= 0).all()
    assert torch.equal(taps["pool"], torch.nn.functional.max_pool2d(taps["conv2"], 2))
    # Resuming after a tap gives the same logits as the whole pass.
    assert torch.equal(model.forward_features(taps["conv1"], after="conv1")["logits"], taps["logits"])
    with pytest.raises(ValueError, match="no tap 'conv3'.*conv1, conv2, pool, fc1, logits"):
        model.forward_features(x, until="conv3")


@pytest.mark.parametrize("widths", sorted(TABLE5))
def test_a_config_builds_the_table_5_networks_with_table_4_counts(widths):
    from hsilib.experiments.data import experiment_data

    config = Config(model="cnn2d", widths=list(widths), data_source="twin").resolved()
    model = config.network(experiment_data(config))
    counts = measure.parameters_per_layer(model)
    *layers, total = TABLE5[widths]
    assert [counts[k] for k in ("conv1", "conv2", "fc1", "fc2")] == layers
    assert sum(counts.values()) == total
    assert model.widths == widths
    assert config.widths == widths  # a JSON list becomes a tuple


def test_widths_are_validated_against_the_prunable_layers():
    for bad in ((15, 30), (15, 0, 30), (15.0, 30, 30), (True, 30, 30)):
        with pytest.raises(ValueError, match=r"cnn2d widths must be 3 positive integers \(conv1, conv2, fc1\)"):
            Config(model="cnn2d", widths=bad)
    with pytest.raises(ValueError, match="'lstm' has no prunable layers"):
        Config(model="lstm", widths=(10,))
    with pytest.raises(ValueError, match="'svm' has no prunable layers"):
        Config(model="svm", widths=(10,))
    narrow = Config(model="cnn2d", widths=(15, 30, 30), data_source="twin")
    assert narrow.key() != Config(model="cnn2d", data_source="twin").key()


@pytest.mark.parametrize("name", ["mlp", "cnn1d", "cnn3d"])
def test_every_cnn_and_the_mlp_take_widths(name):
    default = ip_network(name)
    narrow = tuple(max(1, w // 3) for w in default.widths)
    model = ip_network(name, widths=narrow)
    assert model.widths == narrow
    assert model(random_input(name)).shape == (4, 16)
    assert sum(measure.parameters_per_layer(model).values()) < \
        sum(measure.parameters_per_layer(default).values())


def test_branched_network_shares_the_trunk_and_deploys_one_branch():
    torch.manual_seed(0)
    branched = Branched(lambda: build_model("cnn2d", 40, 16, widths=(15, 30, 30)), branches=3,
                        shared="conv1").eval()
    student = ip_network("cnn2d", widths=(15, 30, 30))
    x = random_input("cnn2d")
    outs = branched.forward_branches(x)
    assert len(outs) == 3
    assert all(torch.equal(o["conv1"], outs[0]["conv1"]) for o in outs)  # one trunk
    assert not torch.allclose(outs[0]["logits"], outs[1]["logits"])  # own heads
    assert torch.allclose(branched(x), torch.stack([o["logits"] for o in outs]).mean(0))
    deployed = branched.branch(1).eval()
    assert torch.allclose(deployed(x), outs[1]["logits"], atol=1e-6)
    assert measure.parameters_per_layer(deployed) == measure.parameters_per_layer(student)
    # The trunk's layers exist once: two extra heads' worth of conv2, fc1, fc2 and BN.
    head = sum(p.numel() for n, p in student.named_parameters() if not n.startswith(("conv1", "bn1")))
    assert sum(p.numel() for p in branched.parameters()) == \
        sum(p.numel() for p in student.parameters()) + 2 * head
    with pytest.raises(ValueError, match="at least 2 heads"):
        Branched(lambda: ip_network("cnn2d"), 1, "conv1")
    with pytest.raises(ValueError, match="shared must be a tap before the logits"):
        Branched(lambda: ip_network("cnn2d"), 2, "logits")


@pytest.mark.parametrize("name", TORCH)
def test_mac_counter_agrees_with_torch_flop_counter(name):
    """Torch counts 2 FLOPs a multiply-accumulate for convolutions and matrix
    products (its counter does not cover the LSTM cell)."""
    model, x = ip_network(name).eval(), random_input(name, batch=2)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    flops = counter.get_total_flops()
    ours = measure.macs_per_sample(model, x)
    if name == "lstm":
        linear = 2 * model.fc.in_features * model.fc.out_features
        assert flops / len(x) == linear  # only the final layer is seen by torch
        assert ours > linear
    else:
        assert flops / len(x) == 2 * ours


def test_all_parameters_is_the_paper_count_plus_batch_norm():
    model = ip_network("cnn2d", widths=(15, 30, 30))
    assert measure.all_parameters(model) == 49_321 + 2 * (15 + 30) == 49_411
    assert measure.all_parameters(ip_network("mlp")) == 31_047
    assert np.isclose(measure.all_parameters(ip_network("cnn1d")), 72_416)
