"""Structured pruning: Table 4's counts, exact surgery for every criterion and
network, each criterion's own rule checked where another reading would
choose differently, and clear errors for impossible requests."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from hsilib import measure
from hsilib.compress.prune import (CRITERIA, Selection, TrainingInputs, apply, mask, select,
                                   target_widths)
from hsilib.compress.prune.criteria.sfp import SoftPruning, zero_smallest
from hsilib.compress.prune.criteria.slimming import SparsityPenalty, global_widths
from hsilib.compress.prune.criteria.thinet import contributions, greedy_keep, rescale
from hsilib.compress.prune.gates import add_gates, fold_gates
from hsilib.compress.prune.graph import prunable_layers
from hsilib.compress.prune.strategies import PruneConfig, schedule
from hsilib.models import build_model, get_model

# Table 4, Indian Pines (16 classes): conv1, conv2, fc1, fc2 and total at each ratio.
TABLE4 = {"90%": (15_015, 11_280, 22_530, 496, 49_321),
          "95%": (10_010, 5_020, 10_020, 336, 25_386),
          "98%": (5_005, 1_260, 2_510, 176, 8_951)}
INPUTS = {"cnn2d": (40, 19, 19), "cnn1d": (200,), "cnn3d": (1, 40, 19, 19)}


def network(name: str, seed: int = 0) -> nn.Module:
    """A network with random weights and batch-norm statistics (PyTorch's
    initial scale of 1 everywhere would make scale-based choices all ties)."""
    torch.manual_seed(seed)
    spec = get_model(name)
    model = build_model(name, spec.components or 200, 16)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.2, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def batch(name: str, n: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn((n, *INPUTS[name]), generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------
# Table 4
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", sorted(TABLE4))
def test_table_4_is_reproduced_exactly_on_indian_pines(ratio):
    model = network("cnn2d")
    pruned = apply(model, select(model, "l1", ratio))
    counts = measure.parameters_per_layer(pruned)
    *layers, total = TABLE4[ratio]
    assert [counts[k] for k in ("conv1", "conv2", "fc1", "fc2")] == layers
    assert sum(counts.values()) == total
    assert measure.all_parameters(pruned) == total + 2 * sum(pruned.widths[:2])  # + batch norm


def test_widths_round_half_up_and_never_fall_below_one():
    model = network("cnn3d")
    assert target_widths(model, "90%") == {"conv1": 10, "conv2": 19, "fc1": 90}  # 9.6 -> 10
    assert target_widths(model, 0.99) == {"conv1": 1, "conv2": 1, "fc1": 3}
    assert target_widths(network("cnn2d"), 0.7) == {"conv1": 15, "conv2": 30, "fc1": 30}


# --------------------------------------------------------------------------
# Surgery is exact
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name, criterion", list(itertools.product(INPUTS, ["l1", "thinet", "slimming"])))
def test_the_pruned_network_equals_the_masked_full_network(name, criterion):
    model, x = network(name), batch(name)
    if criterion == "slimming":
        add_gates(model)  # layers without batch norm are scored by their gates
        with torch.no_grad():
            for module in model.modules():
                if hasattr(module, "gate"):
                    module.gate.uniform_(0.1, 2.0)
    options = {"samples": 32, "draws": 4} if criterion == "thinet" else {}
    selection = select(model, criterion, "90%", data=x, **options)
    pruned = apply(model, selection)
    assert pruned.widths == tuple(target_widths(model, "90%").values())
    with torch.no_grad():
        difference = (pruned(x) - mask(model, selection)(x)).abs().max().item()
    assert difference < 1e-5


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_soft_pruned_and_hard_pruned_networks_are_equal(name):
    """SFP's zeroed filters still emit a constant (bias through batch norm and
    ReLU); folded into the next layer's bias it is kept, without it it is lost."""
    model, x = network(name), batch(name)
    with torch.no_grad():
        for layer in prunable_layers(model):
            getattr(model, layer.name).bias.uniform_(0.2, 1.0)  # constants worth folding
    widths = target_widths(model, "90%")
    zero_smallest(model, widths)
    selection = select(model, "sfp", widths)
    hard = apply(model, selection, example=x)
    unfolded = apply(model, Selection(selection.kept))
    with torch.no_grad():
        assert (hard(x) - model(x)).abs().max().item() < 1e-5
        assert (unfolded(x) - model(x)).abs().max().item() > 1e-3


def test_an_unlisted_layer_is_kept_whole_and_others_shrink():
    model, x = network("cnn2d"), batch("cnn2d")
    pruned = apply(model, {"conv2": np.arange(0, 100, 2)})
    assert pruned.widths == (50, 50, 100)
    assert pruned.fc1.in_features == 50 * 25
    with torch.no_grad():
        assert (pruned(x) - mask(model, {"conv2": np.arange(0, 100, 2)})(x)).abs().max() < 1e-5


def test_a_masked_channel_emits_zero_not_relu_of_its_shift():
    """The paper's words, "setting the BN scaling parameters to zero", leave
    each channel emitting ReLU(shift); the reference the surgery is checked
    against must zero the shift too, so its dropped channels emit exactly 0
    (the fixture's shifts are positive for some of them)."""
    model, x = network("cnn2d"), batch("cnn2d")
    selection = select(model, "l1", "90%")
    dropped = np.setdiff1d(np.arange(50), selection["conv1"])
    assert (model.bn1.bias[dropped] > 0).any()  # a scale-only mask would show here
    with torch.no_grad():
        taps = mask(model, selection).forward_features(x)
        assert (taps["conv1"][:, dropped] == 0).all()
        assert (apply(model, selection)(x) - taps["logits"]).abs().max() < 1e-5


# --------------------------------------------------------------------------
# Each criterion's rule
# --------------------------------------------------------------------------

def test_l1_keeps_the_largest_absolute_weight_sums_bias_excluded():
    """Constructed weights where L2, a bias-including score or Torch-Pruning's
    group score (which adds batch norm and the next layer) choose otherwise."""
    model = network("cnn2d")
    rng = np.random.default_rng(0)
    with torch.no_grad():
        signs = torch.as_tensor(rng.choice([-1.0, 1.0], size=model.conv1.weight.shape), dtype=torch.float32)
        model.conv1.weight.copy_(signs * torch.linspace(0.01, 0.5, 50).view(50, 1, 1, 1))
        model.conv1.weight[3, 0, 0, 0] = 60.0  # one huge weight: large L2, modest L1
        model.conv1.weight[3, 1:] = 0.0
        model.conv1.bias.zero_()
        model.conv1.bias[0] = 1e4  # a huge bias on the smallest filter
        model.bn1.weight[:5] = 100.0  # large scales on small filters
        model.fc1.weight[7] = 10.0 * torch.sign(model.fc1.weight[7])  # row 7: the largest L1
    kept = select(model, "l1", "90%")
    # the linspace order: not filter 3 (L2 keeps it), 0 (with its bias) or 0-4 (by batch norm)
    assert kept["conv1"].tolist() == list(range(35, 50))
    assert 7 in kept["fc1"]


def test_greedy_l1_scores_only_the_kept_inputs():
    model = network("cnn2d")
    with torch.no_grad():
        model.conv1.weight[:15] *= 100  # conv1 keeps filters 0-14 ...
        model.conv2.weight[99, :15] = 0.0  # ... and conv2's filter 99 is large only on the others
        model.conv2.weight[99, 15:] = 50.0
    independent = select(model, "l1", "90%")
    greedy = select(model, "l1", "90%", greedy=True)
    assert independent["conv1"].tolist() == greedy["conv1"].tolist() == list(range(15))
    assert 99 in independent["conv2"] and 99 not in greedy["conv2"]


def thinet_case(seed: int, scale_zero: float = 50.0):
    """The spec's constructed case: 6 channels, L1 norms 0.5 ... 5, keep 3;
    channel 5 (the largest) dead after ReLU, channel 0 (the smallest) with
    consumer weights x50. Returns (x, y, l1 norms)."""
    rng = np.random.default_rng(seed)
    norms = np.array([0.5, 1.0, 1.5, 2.0, 2.5, 5.0])
    inputs = rng.normal(size=(2000, 4))
    filters = rng.normal(size=(6, 4))
    filters *= (norms / np.abs(filters).sum(1))[:, None]
    bias = np.zeros(6)
    bias[5] = -100.0
    activations = np.maximum(inputs @ filters.T + bias, 0)
    consumer = rng.normal(size=6)
    consumer[0] *= scale_zero
    x = activations * consumer
    return x, x.sum(1), norms


def relative_error(x, y, kept, weights=None):
    weights = np.ones(len(kept)) if weights is None else weights
    return np.square(y - x[:, kept] @ weights).sum() / np.square(y).sum()


def test_thinet_rebuilds_the_next_layer_better_than_l1_and_random():
    x, y, norms = thinet_case(0)
    thinet = greedy_keep(x, 3)
    l1 = np.sort(np.argsort(-norms)[:3])
    assert 5 not in thinet and 0 in thinet and thinet.tolist() != l1.tolist()
    assert relative_error(x, y, thinet) < relative_error(x, y, l1)
    subsets = [np.array(s) for s in itertools.combinations(range(6), 3)]
    assert relative_error(x, y, thinet) < np.mean([relative_error(x, y, s) for s in subsets])


def test_thinet_rescales_by_the_normal_equations_solution():
    """``w = (X_K^T X_K)^-1 X_K^T y``, solved here independently; channel 0's
    consumer weight is 50 times the others', so all-ones factors are far off."""
    x, y, _ = thinet_case(0)
    kept = greedy_keep(x, 3)
    factors = rescale(x, y, kept)
    xk = x[:, kept]
    np.testing.assert_allclose(factors, np.linalg.solve(xk.T @ xk, xk.T @ y), rtol=1e-8)
    assert relative_error(x, y, kept, factors) < 0.5 * relative_error(x, y, kept)


def test_thinet_follows_the_data_and_its_scales_rebuild_the_next_layer():
    """Other band energies, other channels; on its data, the rescaled network
    rebuilds the consumer's output better than the same channels unscaled,
    and the errors it records say so (all-ones factors would tie)."""
    model = network("cnn2d")
    x = batch("cnn2d", 64)
    shifted = x * torch.linspace(0.0, 3.0, 40).view(1, 40, 1, 1) + 1.0  # other band energies
    one = select(model, "thinet", {"conv1": 15}, data=x, samples=64, draws=4)
    two = select(model, "thinet", {"conv1": 15}, data=shifted, samples=64, draws=4)
    assert one["conv1"].tolist() != two["conv1"].tolist()
    assert one.errors["conv1"]["rescaled"] < one.errors["conv1"]["removed"]
    with torch.no_grad():
        full = model.conv2(model.forward_features(x, until="conv1")["conv1"])
        errors = [(p.conv2(p.forward_features(x, until="conv1")["conv1"]) - full).square().sum()
                  for p in (apply(model, one), apply(model, Selection(one.kept)))]
    assert errors[0] < errors[1]


def test_thinet_terms_add_up_to_the_next_layers_output():
    """Each draw's terms sum to the consumer's own output minus its bias
    (a wrong flatten or window would not)."""
    model, x = network("cnn2d"), batch("cnn2d", 16)
    taps = model.forward_features(x)
    for layer in prunable_layers(model):
        rng = np.random.default_rng(0)
        terms = contributions(model, layer, TrainingInputs.of(x), np.arange(16), 5, rng)
        assert terms.shape == (16 * 5, {"conv1": 50, "conv2": 100, "fc1": 100}[layer.name])
        consumer = getattr(model, layer.consumer)
        with torch.no_grad():
            out = consumer(taps[layer.consumer_input].flatten(1) if isinstance(consumer, nn.Linear)
                           else taps[layer.consumer_input]) - consumer.bias.view(1, -1, *([1] * (
                               taps[layer.consumer_input].dim() - 2 if not isinstance(consumer, nn.Linear) else 0)))
        # Replay the draws: same generator, same order of draws.
        rng = np.random.default_rng(0)
        units = rng.integers(0, consumer.weight.shape[0], size=(16, 5))
        if isinstance(consumer, nn.Linear):
            expected = out.numpy()[np.arange(16)[:, None], units]
        else:
            positions = [rng.integers(0, size, size=(16, 5)) for size in out.shape[2:]]
            expected = out.numpy()[(np.arange(16)[:, None], units, *positions)]
        np.testing.assert_allclose(terms.sum(1), expected.reshape(-1), rtol=1e-4, atol=1e-4)


def test_thinet_greedy_removal_matches_the_direct_rule():
    """The Gram-matrix form chooses exactly what the direct rule chooses."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 12)) * rng.uniform(0.1, 2.0, size=12)
    kept = greedy_keep(x, 4)
    available, removed = list(range(12)), np.zeros(400)
    for _ in range(8):
        errors = [np.square(removed + x[:, j]).sum() for j in available]
        j = available[int(np.argmin(errors))]
        available.remove(j)
        removed += x[:, j]
    assert kept.tolist() == sorted(available)


def test_thinet_keeps_the_lower_index_on_ties_as_every_criterion():
    """Channels 0 and 1 are the same: the first to go is one of them, and
    the lower index stays, as with top() (the package's rule)."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=100), 5 * rng.normal(size=100)
    assert greedy_keep(np.stack([a, a, b], axis=1), 2).tolist() == [0, 2]


def test_slimming_penalty_drives_batch_norm_scales_toward_zero():
    from hsilib.data import PatchSampler
    from hsilib.train import fit, validation_split

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(30, 30))
    cube = (rng.normal(size=(4, 40))[labels] + rng.normal(size=(30, 30, 40))).astype(np.float32)
    sampler = PatchSampler(cube, 11)
    parts = validation_split(np.arange(900), labels.ravel(), 0.2, seed=0)
    scales = {}
    for penalty in (0.0, 1e-2):  # Adam moves a scale by about lr a step: many small steps
        torch.manual_seed(0)
        model = build_model("cnn2d", 40, 4, patch_size=11)
        add_gates(model)
        fit(model, sampler.patches, *parts, epochs=5, lr=1e-2, batch_size=20, progress=False,
            callbacks=[SparsityPenalty(penalty)])
        scales[penalty] = torch.cat([model.bn1.weight, model.bn2.weight, model.fc1.gate]).detach().abs()
    assert scales[1e-2].median() < 0.5 * scales[0.0].median()
    assert (scales[1e-2] < 1e-2).sum() > (scales[0.0] < 1e-2).sum()


def test_slimming_subgradient_is_exactly_lambda_sign_gamma():
    model, x = network("cnn2d"), batch("cnn2d", 8)
    model.train()
    model.bn1.weight.data[0] = 0.0
    loss = model(x).sum()
    loss.backward()
    before = model.bn1.weight.grad.clone()
    SparsityPenalty(1e-2).before_step(model)
    expected = before + 1e-2 * torch.sign(model.bn1.weight.detach())
    assert torch.equal(model.bn1.weight.grad, expected) and model.bn1.weight.grad[0] == before[0]


def test_slimming_keeps_the_largest_scales_and_its_global_rule_reports_widths():
    model = network("cnn2d")
    add_gates(model)
    with torch.no_grad():
        model.bn1.weight.copy_(torch.linspace(0.01, 1.0, 50))
        model.bn2.weight.copy_(torch.linspace(1.0, 0.01, 100))
        model.fc1.gate.copy_(torch.linspace(0.0, 2.0, 100))
    kept = select(model, "slimming", "90%")
    assert kept["conv1"].tolist() == list(range(35, 50))
    assert kept["conv2"].tolist() == list(range(30))
    assert kept["fc1"].tolist() == list(range(70, 100))
    everything = np.sort(np.concatenate([np.linspace(0.01, 1, 50), np.linspace(1, 0.01, 100),
                                         np.linspace(0, 2, 100)]))
    threshold = everything[int(250 * 0.7)]
    assert global_widths(model, 0.7) == {
        "conv1": int((np.linspace(0.01, 1, 50) > threshold).sum()),
        "conv2": int((np.linspace(1, 0.01, 100) > threshold).sum()),
        "fc1": int((np.linspace(0, 2, 100) > threshold).sum())}
    with pytest.raises(ValueError, match="fc1 has no batch norm and no gate"):
        select(network("cnn2d"), "slimming", "90%")


def test_folding_a_gate_leaves_the_function_unchanged():
    model, x = network("cnn2d"), batch("cnn2d")
    add_gates(model)
    with torch.no_grad():
        model.fc1.gate.uniform_(-1.0, 2.0)
        gated_out = model(x)
        fold_gates(model)
        assert not hasattr(model.fc1, "gate") and not model.fc1._forward_hooks
        assert (model(x) - gated_out).abs().max() < 1e-5


def test_soft_pruning_lets_zeroed_filters_grow_back():
    """Zeroed filters keep their gradients: one step makes them non-zero (the
    batch norm is never zeroed, else their gradient would vanish), and
    exactly the pruned count is zero after each epoch. (A channel whose
    batch-norm shift is negative emits ReLU(shift) = 0 and gets no gradient,
    so the shifts are positive here.)"""
    model, x = network("cnn2d"), batch("cnn2d", 16)
    with torch.no_grad():
        model.bn1.bias.uniform_(0.1, 0.5)
    model.train()
    widths = target_widths(model, "90%")
    soft = SoftPruning(widths)
    soft.epoch_start(1, model)
    zeroed = np.setdiff1d(np.arange(50), soft.kept["conv1"])
    assert model.conv1.weight[zeroed].abs().sum() == 0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    nn.functional.cross_entropy(model(x), torch.arange(16) % 16).backward()
    optimizer.step()
    assert (model.conv1.weight[zeroed].flatten(1).abs().sum(1) > 0).all()  # regrown
    soft.epoch_end(1, model)
    for name, k in widths.items():
        weight = getattr(model, name).weight
        assert int((weight.flatten(1).abs().sum(1) == 0).sum()) == weight.shape[0] - k


def test_soft_pruning_validates_the_zeroed_network_on_its_own_batch_norm_statistics():
    """After an epoch in which the zeroed filters grew back, the running
    statistics describe the regrown network. SFP re-estimates them on the
    training inputs after zeroing: in eval mode the soft network then
    normalises each layer with the zeroed network's own statistics (without
    it, conv2's running mean is the regrown network's, and this fails)."""
    model, x = network("cnn2d"), batch("cnn2d", 64)
    inputs = TrainingInputs.of(x)
    widths = target_widths(model, "95%")
    soft = SoftPruning(widths, inputs)
    model.train()
    soft.epoch_start(1, model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):  # the zeroed filters grow back; running statistics follow them
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), torch.arange(64) % 16).backward()
        optimizer.step()
    soft.epoch_end(1, model)
    model.eval()
    with torch.no_grad():
        conv1 = nn.functional.relu(model.bn1(model.conv1(x)))  # eval mode: the zeroed network's statistics
        conv2 = model.conv2(conv1)
    mean = conv2.transpose(0, 1).flatten(1).mean(1)
    variance = conv2.transpose(0, 1).flatten(1).var(1)  # unbiased, as batch norm keeps it
    np.testing.assert_allclose(model.bn2.running_mean, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.bn2.running_var, variance, rtol=1e-3, atol=1e-5)
    assert model.bn2.momentum == 0.1 and not model.training


def test_soft_pruning_reselects_when_a_zeroed_filter_outgrows_a_kept_one():
    model = network("cnn2d")
    soft = SoftPruning({"conv1": 15})
    soft.epoch_start(1, model)
    first = set(soft.kept["conv1"].tolist())
    revived = min(set(range(50)) - first)
    with torch.no_grad():
        model.conv1.weight[revived] = 10.0  # as a large gradient step would
    soft.epoch_end(1, model)
    assert revived in soft.kept["conv1"] and soft.changes == [1]


# --------------------------------------------------------------------------
# Impossible requests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("widths, message", [
    (0.0, r"pruning ratio must be in \(0, 1\)"),
    (1.0, r"pruning ratio must be in \(0, 1\)"),
    ("80%", "unknown pruning ratio '80%'"),
    ({"conv1": 0}, "conv1 width must be an integer from 1 to 50, got 0"),
    ({"conv1": 51}, "conv1 width must be an integer from 1 to 50, got 51"),
    ({"conv3": 5}, "'conv3' is not a prunable layer of CNN2D"),
    ((15, 30), "CNN2D has 3 prunable layers"),
])
def test_impossible_widths_are_clear_errors(widths, message):
    with pytest.raises(ValueError, match=message):
        select(network("cnn2d"), "l1", widths)


def test_unknown_criterion_and_missing_data_are_clear_errors():
    with pytest.raises(ValueError, match="unknown pruning criterion 'magnitude'.*l1, thinet, slimming, sfp"):
        select(network("cnn2d"), "magnitude", "90%")
    with pytest.raises(ValueError, match="ThiNet chooses channels on training inputs: pass data="):
        select(network("cnn2d"), "thinet", "90%")
    with pytest.raises(ValueError, match="kept indices must be distinct"):
        apply(network("cnn2d"), {"conv1": [1, 1, 2]})
    with pytest.raises(ValueError, match="needs an example input batch"):
        apply(network("cnn2d"), Selection({"conv1": np.arange(15)}, fold=True))


def test_a_prune_config_checks_its_settings_before_any_work():
    from hsilib.experiments import Config

    base = Config(model="cnn2d", data_source="twin")
    for change, message in [({"criterion": "magnitude"}, "unknown pruning criterion"),
                            ({"ratio": "50%"}, "unknown pruning ratio '50%'"),
                            ({"strategy": "IV"}, "unknown strategy 'IV'"),
                            ({"finetune_epochs": 0}, "finetune_epochs must be a positive integer"),
                            ({"penalties": (1e-4, -1.0)}, "penalties must be floats >= 0")]:
        with pytest.raises(ValueError, match=message):
            PruneConfig(base, **change)
    with pytest.raises(ValueError, match="'lstm' has no prunable layers"):
        PruneConfig(Config(model="lstm", data_source="twin"))
    assert set(CRITERIA) == {"l1", "thinet", "slimming", "sfp"}


def test_strategies_schedule_one_step_one_layer_at_a_time_or_geometric_passes():
    original = {"conv1": 50, "conv2": 100, "fc1": 100}
    target = {"conv1": 15, "conv2": 30, "fc1": 30}
    assert schedule("I", original, target, 3) == [target]
    assert schedule("II", original, target, 3) == [{"conv1": 15}, {"conv2": 30}, {"fc1": 30}]
    assert schedule("III", original, target, 3) == [{"conv1": 33, "conv2": 67, "fc1": 67},
                                                     {"conv1": 22, "conv2": 45, "fc1": 45}, target]


# --------------------------------------------------------------------------
# Pruning runs through the runner
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pruning_store(trained_cnn2d, tmp_path_factory):
    """A copy of the session's store with its trained CNN2D."""
    import shutil

    from hsilib.experiments import ResultStore

    root = tmp_path_factory.mktemp("prune-store") / "store"
    shutil.copytree(trained_cnn2d["store"].root, root)
    return ResultStore(root), trained_cnn2d["config"]


def test_a_one_shot_l1_run_is_measured_cached_and_starts_from_the_stored_network(pruning_store):
    from hsilib.experiments import run

    store, base = pruning_store
    config = PruneConfig(base, "l1", "90%", "I", finetune_epochs=1)
    record = run(config, store, device="cpu", progress=False)
    assert record["kind"] == "prune" and record["base_key"] == base.key()
    assert record["widths"] == {"conv1": 15, "conv2": 30, "fc1": 30}
    assert record["measure"]["params"] == 49_321 and record["total_epochs"] == 1
    assert len(record["steps"]) == 1 and len(record["steps"][0]["history"]["val_oa"]) == 1
    assert record["kept"] == {k: sorted(v) for k, v in record["kept"].items()}
    assert record["metrics"]["top1"] > 0.5  # fine-tuned from a trained network, not from chance
    assert run(config, store, device="cpu", progress=False) == record


@pytest.mark.slow
def test_every_criterion_and_strategy_reaches_the_target_widths(pruning_store):
    from hsilib.experiments import run_grid

    store, base = pruning_store
    configs = [PruneConfig(base, "thinet", "95%", "II", finetune_epochs=1, samples=500),
               PruneConfig(base, "slimming", "98%", "I", finetune_epochs=1, penalties=(1e-4, 1e-3)),
               PruneConfig(base, "sfp", "90%", "III", finetune_epochs=1)]
    records = run_grid(configs, store=store, device="cpu", progress=False)
    widths = {"95%": (10, 20, 20), "98%": (5, 10, 10), "90%": (15, 30, 30)}
    for config, record in zip(configs, records):
        assert tuple(record["widths"].values()) == widths[config.ratio]
        assert record["total_epochs"] == {"I": 1, "II": 3, "III": 3}[config.strategy]
    thinet, slimming, sfp = records
    assert [list(s["widths"]) for s in thinet["steps"]] == [["conv1"], ["conv2"], ["fc1"]]
    assert all(s["errors"][name]["rescaled"] < s["errors"][name]["removed"]
               for s in thinet["steps"] for name in s["errors"])
    assert set(slimming["slimming"]["val_oa_by_penalty"]) == {"0.0001", "0.001"}
    assert slimming["slimming"]["penalty"] in (1e-4, 1e-3)
    assert "fc1.gate" not in store.load_weights(slimming["key"], slimming["weights_sha256"])
    assert [s["widths"]["conv1"] for s in sfp["steps"]] == [33, 22, 15]
    assert all(len(s["regrowth"]) == len(s["changes"]) == 1 for s in sfp["steps"])


@pytest.mark.slow
def test_slimming_fine_tunes_between_steps_under_its_sparsity_recipe(pruning_store, monkeypatch):
    """Strategy II: the fine-tunes before the last step keep the penalty and
    the weight decay on gated layers (a gate could otherwise shrink for free
    while its layer's weights grow); the last one, before folding, neither."""
    from hsilib.compress.prune import strategies
    from hsilib.compress.prune.strategies import GATE_WEIGHT_DECAY, SparsityConfig
    from hsilib.experiments import run

    store, base = pruning_store
    run(SparsityConfig(base, 1e-4), store, device="cpu", progress=False)
    calls = []

    def recording(model, *args, **kwargs):
        calls.append((model, kwargs))
        return fit(model, *args, **kwargs)

    fit = strategies.fit
    monkeypatch.setattr(strategies, "fit", recording)
    run(PruneConfig(base, "slimming", "98%", "II", finetune_epochs=1, penalties=(1e-4,)), store,
        device="cpu", progress=False)
    assert len(calls) == 3
    for model, kwargs in calls[:2]:
        decayed = {id(p) for group in kwargs["optimizer"](model).param_groups
                   if group["weight_decay"] == GATE_WEIGHT_DECAY for p in group["params"]}
        assert decayed == {id(model.fc1.weight)}
        assert [c.penalty for c in kwargs["callbacks"] if isinstance(c, SparsityPenalty)] == [1e-4]
    assert "optimizer" not in calls[2][1] and not calls[2][1].get("callbacks")
