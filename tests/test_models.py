"""Models of Table 3: sizes against the paper's parameter counts (Tables 3-5), outputs on
the sampler views, the registry."""

import itertools

import numpy as np
import pytest
import torch
from sklearn.base import is_classifier
from torch import nn

from hsilib.data.patches import PatchSampler
from hsilib.measure import norm_parameters, parameters_per_layer
from hsilib.models import (CNN1D, CNN2D, CNN3D, MLP, MODELS, SpectralLSTM, UnknownModelError,
                           build_model, get_model)


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


# --- Table 3's other baselines -------------------------------------------------------------

DATASETS = {"IP": (200, 16), "UP": (103, 9)}  # bands after band removal, classes
TORCH = sorted(n for n, s in MODELS.items() if s.family == "torch")
SKLEARN = sorted(n for n, s in MODELS.items() if s.family == "sklearn")


def total(model) -> int:
    return sum(parameters_per_layer(model).values())


def ip_model(name):
    spec = get_model(name)
    return build_model(name, spec.components or 200, 16)


def test_table_3_rows_are_all_registered_with_their_inputs():
    expected = {  # name: (title, family, input, components, patch_size)
        "rf": ("RF", "sklearn", "spectrum", 40, 1),
        "mlr": ("MLR", "sklearn", "spectrum", 40, 1),
        "svm": ("SVM", "sklearn", "spectrum", 40, 1),
        "mlp": ("MLP", "torch", "spectrum", None, 1),
        "lstm": ("LSTM", "torch", "spectrum", None, 1),
        "cnn1d": ("CNN1D", "torch", "spectrum", None, 1),
        "cnn2d_c1": ("CNN2D (c=1)", "torch", "patch", 1, 19),
        "cnn2d": ("CNN2D (c=40)", "torch", "patch", 40, 19),
        "cnn3d": ("CNN3D", "torch", "cube", 40, 19),
    }
    got = {n: (s.title, s.family, s.input, s.components, s.patch_size) for n, s in MODELS.items()}
    assert got == expected
    assert list(MODELS) == list(expected)  # registered in Table 3's row order


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("name", TORCH)
def test_torch_models_classify_their_sampler_view(name, dataset):
    bands, classes = DATASETS[dataset]
    spec = get_model(name)
    channels = spec.components or bands
    cube = np.random.default_rng(0).normal(size=(30, 30, channels)).astype(np.float32)
    sampler = PatchSampler(cube, patch_size=spec.patch_size)
    view = {"spectrum": sampler.spectra, "patch": sampler.patches, "cube": sampler.cubes}
    x = view[spec.input]([0, 45, 899])
    model = build_model(name, channels, classes).eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, classes)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # the output depends on the pixel


def test_mlp_matches_table_3_and_follows_the_hidden_width_rule():
    model = ip_model("mlp")
    assert isinstance(model, MLP)
    assert parameters_per_layer(model) == {"fc1": 200 * 143 + 143, "fc2": 143 * 16 + 16}
    assert total(model) == 31_047  # Table 3 and Table 4
    # Pavia University: int(2 * 103 / 3) + 10 = 78 hidden units.
    assert total(build_model("mlp", 103, 9)) == 103 * 78 + 78 + 78 * 9 + 9 == 8_823


def test_lstm_matches_table_3_exactly():
    model = ip_model("lstm")
    assert isinstance(model, SpectralLSTM) and model.steps == 1
    assert parameters_per_layer(model) == {
        "lstm": 4 * (200 * 64 + 64 * 64 + 2 * 64) + 4 * (64 * 64 + 64 * 64 + 2 * 64),
        "fc": 64 * 16 + 16}
    assert total(model) == 102_416
    # The docstring's other exact solution: 50 steps of 4 bands, outputs flattened.
    assert total(SpectralLSTM(200, 16, steps=50)) == 102_416
    assert total(build_model("lstm", 103, 9)) == 77_129


def test_lstm_sequence_steps_must_divide_the_bands():
    with pytest.raises(ValueError, match="steps must divide"):
        SpectralLSTM(103, 9, steps=4)
    model = SpectralLSTM(200, 16, steps=50).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 200)).shape == (2, 16)


def test_cnn1d_matches_table_3_once_batch_norm_is_counted():
    model = ip_model("cnn1d")
    assert isinstance(model, CNN1D)
    counts = parameters_per_layer(model)
    assert counts == {"conv1": 500, "fc1": 20 * 35 * 100 + 100, "fc2": 1_616}
    assert sum(counts.values()) == 72_216  # weights and biases only
    assert norm_parameters(model) == 200  # scale and shift of the fc1 batch norm
    assert sum(counts.values()) + norm_parameters(model) == 72_416  # Table 3's figure
    assert total(build_model("cnn1d", 103, 9)) == 33_509
    with pytest.raises(ValueError, match="too few"):
        CNN1D(20, 16)


def test_cnn3d_rounds_to_table_3():
    model = ip_model("cnn3d")
    assert isinstance(model, CNN3D)
    counts = parameters_per_layer(model)
    assert counts == {"conv1": 19_232, "conv2": 819_264, "fc1": 960_300, "fc2": 4_816}
    assert sum(counts.values()) == 1_803_612
    assert abs(sum(counts.values()) - 1.8e6) < 0.05e6  # "1.8M"
    assert norm_parameters(model) == 2 * (32 + 64 + 300)
    assert total(build_model("cnn3d", 40, 9)) == 1_801_505
    with pytest.raises(ValueError, match="too few"):
        CNN3D(30, 16)
    with pytest.raises(ValueError, match="patch_size must be odd"):
        CNN3D(40, 16, patch_size=18)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_spec_builds_what_its_family_says(name):
    spec = get_model(name)
    built = build_model(name, spec.components or 200, 16)
    if spec.family == "torch":
        assert isinstance(built, nn.Module)
        assert spec.grid == {}
    else:
        assert not isinstance(built, nn.Module)
        assert is_classifier(built) and callable(built.fit) and callable(built.predict)
        assert spec.input == "spectrum" and spec.patch_size == 1
        assert spec.grid and all(values for values in spec.grid.values())
        assert not hasattr(built, "classes_")  # unfitted
        assert "random_state" not in built.get_params() or built.get_params()["random_state"] is None
        built.set_params(**{k: v[0] for k, v in spec.grid.items()})  # grid names are parameters


def blobs(seed: int = 0, per_class: int = 40, dims: int = 40):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(3, dims))
    y = np.repeat(np.arange(3), per_class)
    x = centres[y] + rng.normal(size=(y.size, dims))
    return (x - x.mean(0)) / x.std(0), y


@pytest.mark.parametrize("name", SKLEARN)
def test_sklearn_models_fit_separable_blobs_for_every_grid_point(name):
    spec = get_model(name)
    x, y = blobs()
    names = sorted(spec.grid)
    for values in itertools.product(*(spec.grid[n] for n in names)):
        estimator = build_model(name, 40, 3)
        if "random_state" in estimator.get_params():
            estimator.set_params(random_state=0)
        estimator.set_params(**dict(zip(names, values))).fit(x, y)
        assert (estimator.predict(x) == y).mean() > 0.9
        scores = (estimator.predict_proba(x) if hasattr(estimator, "predict_proba")
                  else estimator.decision_function(x))
        assert scores.shape == (len(y), 3)  # per-class scores for top-5 accuracy
        assert (estimator.classes_[scores.argmax(1)] == estimator.predict(x)).all()


def test_svm_scores_are_one_vs_rest_decision_values():
    svm = build_model("svm", 40, 3)
    params = svm.get_params()
    assert params["kernel"] == "rbf" and params["decision_function_shape"] == "ovr"
    assert params["break_ties"]  # predict == argmax of the decision values
    x, y = blobs()
    svm.fit(x, y)
    assert not hasattr(svm, "predict_proba")  # scores come from decision_function
    assert svm.decision_function(x).shape == (len(y), 3)


def test_unknown_model_error_names_it_and_lists_the_registered_ones():
    with pytest.raises(UnknownModelError) as info:
        get_model("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in MODELS:
        assert name in message
    assert isinstance(info.value, KeyError)
