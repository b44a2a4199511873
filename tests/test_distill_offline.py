"""The five feature- and multi-teacher offline distillers (FitNets, Attention
Transfer, Correlation Congruence, SimKD, CA-MKD): each loss against the
spec's hand-computed values (§3.2-3.6 (h)) and, where it has a formula worth
re-deriving, against an independent numpy computation; each distiller
trained for two epochs by :func:`hsilib.train.fit` with its teachers left
untouched; SimKD end to end through the runner."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from hsilib import measure
from hsilib.compress.distill import attention, camkd, correlation, fitnets, simkd
from hsilib.compress.distill.base import TrainingPixels, get_distiller
from hsilib.data import PatchSampler
from hsilib.models import build_model
from hsilib.train import fit, validation_split

BANDS, CLASSES = 6, 4
STUDENT, TEACHER = (5, 10, 10), (8, 16, 16)


def close(value, expected, tol=1e-4):
    return abs(float(torch.as_tensor(value).detach()) - expected) < tol


# --------------------------------------------------------------------------
# The spec's hand-computed values
# --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fitnets", "attention", "correlation", "simkd", "camkd"])
def test_each_method_is_registered_under_its_row_of_tables_11_to_13(name):
    from hsilib.reference import paper_values

    cls = get_distiller(name)
    assert cls.family == "offline" and cls.teachers == (2 if name == "camkd" else 1)
    rows = paper_values(11, "top1", method=cls.title)
    assert len(rows) == 4 and set(rows["group"]) == {"Offline distillation"}


def test_fitnets_hint_loss_matches_the_spec_and_needs_the_relu():
    guided = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    regressor = fitnets.hint_regressor("conv2", 1, 2)
    with torch.no_grad():
        regressor[0].weight.copy_(torch.tensor([2.0, -1.0]).view(2, 1, 1, 1))
        regressor[0].bias.copy_(torch.tensor([0.0, 1.0]))
    hint = torch.tensor([[[[2.0, 4.0], [6.0, 9.0]], [[0.0, 0.0], [1.0, 0.0]]]])
    assert close(fitnets.hint_loss(regressor[0](guided), hint, 1.0)["hint"], 2.5)
    assert close(fitnets.hint_loss(regressor(guided), hint, 1.0)["hint"], 0.25)
    assert close(fitnets.hint_loss(regressor(guided), hint, 100.0)["hint"], 25.0)


def test_attention_maps_and_both_forms_match_the_spec():
    student = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]]])
    teacher = torch.tensor([[[[2.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    q_s, q_t = attention.attention_map(student, 2), attention.attention_map(teacher, 2)
    assert torch.allclose(q_s, torch.tensor([[0.8165, 0.4082, 0.0, 0.4082]]), atol=1e-4)
    assert torch.allclose(q_t, torch.tensor([[0.6934, 0.1387, 0.1387, 0.6934]]), atol=1e-4)
    assert close(attention.attention_loss([q_s], [q_t], 1.0)["at"], 0.0471)
    assert close(attention.attention_loss([q_s], [q_t], 1000.0)["at"], 47.0892, tol=1e-3)
    assert close(attention.attention_loss([q_s], [q_t], 2.0, form="paper")["at"], 0.4340)
    # the sum over channels gives the same maps as the mean
    assert torch.allclose(attention.attention_map(teacher * math.sqrt(3), 2), q_t)
    with pytest.raises(ValueError, match="unknown form 'l2'.*code, paper"):
        attention.attention_loss([q_s], [q_t], 1.0, form="l2")


CC_STUDENT = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
CC_TEACHER = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def test_correlation_kernel_and_forms_match_the_spec():
    kernel = correlation.taylor_rbf_kernel(nn.functional.normalize(CC_STUDENT, dim=1), 0.4, 2)
    assert torch.allclose(kernel.diagonal(), torch.full((3,), 0.9526), atol=1e-4)
    assert close(kernel[0, 1], 0.4493) and close(kernel[0, 2], 0.7754) and close(kernel[1, 2], 0.7754)
    loss = correlation.correlation_loss
    assert close(loss(CC_STUDENT, CC_TEACHER, 1.0)["cc"], 0.0473)
    assert close(loss(CC_STUDENT, CC_TEACHER, 1.0, form="unsquared")["cc"], 0.0725)
    assert close(loss(CC_STUDENT, CC_TEACHER, 1.0, form="unsquared", normalize=False)["cc"], 0.1672)
    assert close(loss(CC_STUDENT, CC_TEACHER, 10.0)["cc"], 0.4725)


class Features(nn.Module):
    """A trunk whose ``fc1`` tap is its input."""

    def forward_features(self, x, until=None):
        return {"fc1": x}


def test_simkd_loss_and_the_deployed_composite_match_the_spec():
    """Spec §3.5 (h) through :class:`SimKDNetwork`: f_s = [1, 2] projected to
    [1, 2, 3], MSE 0.6667 against f_t = [1, 1, 4], logits [1, 2]."""
    projector = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU())
    classifier = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        projector[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        classifier.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    network = simkd.SimKDNetwork(Features(), projector, classifier)
    f_s = torch.tensor([[1.0, 2.0]])
    assert torch.equal(network.project(f_s), torch.tensor([[1.0, 2.0, 3.0]]))
    assert close(simkd.simkd_loss(network.project(f_s), torch.tensor([[1.0, 1.0, 4.0]]))["mse"], 0.6667)
    assert torch.equal(network(f_s), torch.tensor([[1.0, 2.0]])) and network(f_s).argmax(1).item() == 1


def camkd_case():
    teachers = [torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])]
    projections = [torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0]])]
    features = [torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]])]
    return torch.tensor([[1.0, 0.0, 0.0]]), teachers, torch.tensor([0]), projections, features


def test_camkd_terms_match_the_spec():
    student, teachers, y, projections, features = camkd_case()
    ce = camkd.per_sample_ce(teachers, y)
    assert torch.allclose(ce, torch.tensor([[0.2395, 1.5514]]), atol=1e-4)
    assert torch.allclose(camkd.confidence_weights(ce), torch.tensor([[0.7878, 0.2122]]), atol=1e-4)
    weights = dict(temperature=4.0, a_ce=1.0, a_kd=1.0, beta=50.0)
    # identity teacher classifiers: the projections are their own logits
    terms = camkd.camkd_loss(student, teachers, y, **weights, projections=projections,
                             teacher_features=features, projection_logits=projections)
    assert close(terms["ce"], 0.5514) and close(terms["kd"], 0.0850)
    assert close(terms["inter"], 50 * 0.2115, tol=50e-4)
    assert close(sum(terms.values()), 11.2109)
    assert set(camkd.camkd_loss(student, teachers, y, **weights)) == {"ce", "kd"}  # epoch 1
    three = camkd.confidence_weights(torch.tensor([[0.1, 2.0, 1.0], [3.0, 0.0, 0.5]]))
    assert torch.allclose(three.sum(1), torch.ones(2)) and three.argmax(1).tolist() == [0, 1]


def test_camkd_needs_two_teachers_in_the_loss_too():
    student, teachers, y, *_ = camkd_case()
    with pytest.raises(ValueError, match="K >= 2 teachers, got 1"):
        camkd.camkd_loss(student, teachers[:1], y, 4.0, 1.0, 1.0, 50.0)


@pytest.mark.parametrize("detach", [True, False])
def test_camkd_inter_weights_are_detached_unless_asked(detach):
    student, teachers, y, projections, features = camkd_case()
    projections = [p.requires_grad_() for p in projections]
    heads = [p.detach().clone().requires_grad_() for p in projections]  # a classifier's logits, as leaves
    terms = camkd.camkd_loss(student, teachers, y, 4.0, 1.0, 1.0, 50.0, projections=projections,
                             teacher_features=features, projection_logits=heads, detach_weights=detach)
    terms["inter"].backward()
    assert all(p.grad is not None for p in projections)
    assert all((h.grad is None) == detach for h in heads)


# --------------------------------------------------------------------------
# Independent computations on random tensors
# --------------------------------------------------------------------------

def numpy_attention_map(a):
    """Per sample: sum over channels of squares, divided by its L2 norm."""
    n, c, h, w = a.shape
    maps = np.zeros((n, h * w))
    for i in range(n):
        for y in range(h):
            for x in range(w):
                maps[i, y * w + x] = sum(a[i, k, y, x] ** 2 for k in range(c))
        maps[i] /= math.sqrt(sum(v * v for v in maps[i]))
    return maps


def test_attention_loss_matches_a_numpy_computation():
    rng = np.random.default_rng(0)
    shapes = [((3, 4, 5, 5), (3, 7, 5, 5)), ((3, 2, 3, 3), (3, 6, 3, 3))]
    pairs = [(rng.normal(size=s), rng.normal(size=t)) for s, t in shapes]
    code = paper = 0.0
    for s, t in pairs:
        diff = numpy_attention_map(s) - numpy_attention_map(t)
        code += np.mean(diff ** 2)
        paper += np.mean([math.sqrt(sum(d * d for d in row)) for row in diff])
    q_s = [attention.attention_map(torch.tensor(s), 2) for s, _ in pairs]
    q_t = [attention.attention_map(torch.tensor(t), 2) for _, t in pairs]
    assert close(attention.attention_loss(q_s, q_t, 1000.0)["at"], 1000 * code, tol=1e-3)
    assert close(attention.attention_loss(q_s, q_t, 10.0, form="paper")["at"], 5 * paper)


def test_correlation_loss_matches_a_numpy_computation_and_the_exact_rbf():
    rng = np.random.default_rng(1)
    f_s, f_t = np.abs(rng.normal(size=(6, 4))), np.abs(rng.normal(size=(6, 7)))
    gamma, n = 0.4, 6

    def kernel(f, order):
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
        k = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                dot = float(f[i] @ f[j])
                k[i, j] = sum(math.exp(-2 * gamma) * (2 * gamma) ** p / math.factorial(p) * dot ** p
                              for p in range(order + 1))
        return k

    expected = np.sum((kernel(f_s, 2) - kernel(f_t, 2)) ** 2) / n ** 2
    ours = correlation.correlation_loss(torch.tensor(f_s), torch.tensor(f_t), 1.0)["cc"]
    assert close(ours, expected, tol=1e-6)
    # a long expansion is the Gaussian RBF itself on unit-norm features
    unit = torch.nn.functional.normalize(torch.tensor(f_s), dim=1)
    exact = torch.exp(-gamma * torch.cdist(unit, unit) ** 2)
    assert torch.allclose(correlation.taylor_rbf_kernel(unit, gamma, 20), exact, atol=1e-6)


def test_fitnets_hint_loss_matches_a_numpy_computation():
    rng = np.random.default_rng(2)
    guided, hint = rng.normal(size=(2, 3, 4, 4)), np.abs(rng.normal(size=(2, 5, 4, 4)))
    weight, bias = rng.normal(size=(5, 3)), rng.normal(size=5)
    squares = []
    for n in range(2):
        for o in range(5):
            for y in range(4):
                for x in range(4):
                    out = max(0.0, sum(weight[o, c] * guided[n, c, y, x] for c in range(3)) + bias[o])
                    squares.append((out - hint[n, o, y, x]) ** 2)
    regressor = fitnets.hint_regressor("conv2", 3, 5).double()
    with torch.no_grad():
        regressor[0].weight.copy_(torch.tensor(weight).view(5, 3, 1, 1))
        regressor[0].bias.copy_(torch.tensor(bias))
    ours = fitnets.hint_loss(regressor(torch.tensor(guided)), torch.tensor(hint), 100.0)["hint"]
    assert close(ours, 100 * np.mean(squares))  # float32 loss: 1e-4 of 175


# --------------------------------------------------------------------------
# The distillers, trained by fit
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy():
    """A 12x12 image of 4 classes in quadrants, 6 bands, patches of 11."""
    rng = np.random.default_rng(0)
    labels = np.zeros((12, 12), int)
    labels[:6, 6:], labels[6:, :6], labels[6:, 6:] = 1, 2, 3
    cube = (rng.normal(size=(CLASSES, BANDS))[labels] + rng.normal(size=(12, 12, BANDS))).astype(np.float32)
    sampler = PatchSampler(cube, patch_size=11)
    return sampler.patches, validation_split(np.arange(144), labels.ravel(), 0.25, seed=0)


def cnn2d(widths, seed):
    torch.manual_seed(seed)
    return build_model("cnn2d", BANDS, CLASSES, patch_size=11, widths=widths)


def make(name, toy, epochs=2, teachers=1, **settings):
    view, (fit_i, fit_y, _, _) = toy
    pixels = TrainingPixels(view, fit_i, fit_y, CLASSES, seed=0, epochs=epochs)
    nets = [cnn2d(TEACHER, 10 + k) for k in range(teachers)]
    for net in nets:  # batch-norm statistics that are not the initial ones
        with torch.no_grad():
            net(view(fit_i))
    return get_distiller(name)(cnn2d(STUDENT, 0), nets, pixels, lambda: cnn2d(STUDENT, 1), **settings)


def train(distiller, toy, epochs=2):
    view, (fit_i, fit_y, val_i, val_y) = toy
    return fit(distiller, view, fit_i, fit_y, val_i, val_y, epochs=epochs, lr=1e-3,
               objective=lambda m, x, y, i: m.step(x, y, i), frozen=distiller.frozen(),
               deployed=distiller.deployed(), callbacks=[distiller], progress=False)


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


CASES = [  # method, settings, teachers, loss terms, trainable extra modules
    ("fitnets", {}, 1, {"hint", "ce", "kd"}, "regressor"),  # E = 5: epoch 1 hints, epoch 2 KD
    ("fitnets", {"stages": 1}, 1, {"ce", "hint"}, "regressor"),
    ("fitnets", {"stages": 1, "hint": "fc1"}, 1, {"ce", "hint"}, "regressor"),
    ("attention", {}, 1, {"ce", "at"}, None),
    ("attention", {"with_kd": True, "form": "paper"}, 1, {"ce", "kd", "at"}, None),
    ("correlation", {"beta": 1.0}, 1, {"ce", "kd", "cc"}, None),
    ("correlation", {"beta": 1.0, "form": "unsquared", "normalize": False}, 1, {"ce", "kd", "cc"}, None),
    ("simkd", {}, 1, {"mse"}, "network.projector"),
    ("camkd", {}, 3, {"ce", "kd", "inter"}, "projectors"),  # the intermediate term from epoch 2
]


@pytest.mark.parametrize("name, settings, teachers, terms, extra", CASES)
def test_a_distiller_trains_its_student_and_extras_and_leaves_its_teachers_alone(
        toy, name, settings, teachers, terms, extra):
    distiller = make(name, toy, epochs=5 if name == "fitnets" else 2, teachers=teachers, **settings)
    teacher_states = [state(t) for t in distiller.teacher_nets]
    student, extras = state(distiller.student), extra and state(distiller.get_submodule(extra))
    history = train(distiller, toy)
    assert set(history.terms) == terms and all(np.isfinite(v).all() for v in history.terms.values())
    for teacher, before in zip(distiller.teacher_nets, teacher_states):
        assert not changed(before, teacher)  # weights and batch-norm running statistics
        assert not any(p.requires_grad for p in teacher.parameters())
    assert {k.split(".")[0] for k in changed(student, distiller.student)} >= {"conv1", "conv2", "fc1"}
    if extra:
        assert changed(extras, distiller.get_submodule(extra))


def test_fitnets_stage_one_trains_the_layers_up_to_the_hint_only(toy):
    distiller = make("fitnets", toy, epochs=5)  # round(0.2 * 5) = 1 hint epoch
    assert distiller.hint_epochs == 1
    student, regressor = state(distiller.student), state(distiller.regressor)
    history = train(distiller, toy, epochs=1)
    assert set(history.terms) == {"hint"}
    assert {k.split(".")[0] for k in changed(student, distiller.student)} == {"conv1", "bn1", "conv2", "bn2"}
    assert changed(regressor, distiller.regressor)
    assert distiller.export() is distiller.student


def test_fitnets_on_fc1_trains_fc1_in_stage_one_but_not_fc2(toy):
    distiller = make("fitnets", toy, epochs=5, hint="fc1")
    student = state(distiller.student)
    train(distiller, toy, epochs=1)
    assert "fc1.weight" in changed(student, distiller.student)
    assert not {k for k in changed(student, distiller.student) if k.startswith("fc2")}


def test_fitnets_rejects_unknown_hints_and_stages(toy):
    with pytest.raises(ValueError, match="unknown hint 'pool'; accepted: conv2, fc1"):
        make("fitnets", toy, hint="pool")
    with pytest.raises(ValueError, match="stages must be 1 .* or 2 .* got 3"):
        make("fitnets", toy, stages=3)


def test_simkd_deploys_the_student_trunk_a_projector_and_a_frozen_copy_of_the_teacher_classifier(toy):
    distiller = make("simkd", toy)
    teacher = distiller.teacher_nets[0]
    train(distiller, toy)
    network = distiller.export()
    assert network is distiller.deployed() and not hasattr(distiller.student, "fc2")
    assert network.classifier is not teacher.fc2
    assert torch.equal(network.classifier.weight, teacher.fc2.weight)
    assert torch.equal(network.classifier.bias, teacher.fc2.bias)
    assert not any(p.requires_grad for p in network.classifier.parameters())
    view, (_, _, val_i, _) = toy
    x = view(val_i)
    network.eval()
    with torch.no_grad():
        by_hand = teacher.fc2(network.projector(distiller.student.forward_features(x, until="fc1")["fc1"]))
        assert torch.equal(network(x), by_hand)
        assert torch.equal(torch.fx.symbolic_trace(copy.deepcopy(network))(x), by_hand)
    # the student's conv1, conv2 and fc1, the projector 10->8->16 and the teacher's fc2 16->4
    trunk = 6 * 25 * 5 + 5 + 5 * 25 * 10 + 10 + 10 * 10 + 10
    projector = 10 * 8 + 8 + 8 * 16 + 16
    assert sum(measure.parameters_per_layer(network).values()) == trunk + projector + 16 * 4 + 4


@pytest.mark.parametrize("name, settings, teachers, runs", [
    # stage 1: the student and the teacher up to conv2; stage 2: the student (logits cached)
    ("fitnets", {}, 1, [2, 1]),
    # epoch 1: the student (logits cached); then also each teacher up to conv2 and its
    # classifier on the student's projection
    ("camkd", {}, 2, [1, 5]),
    ("simkd", {}, 1, [1, 1]),  # the student's trunk; the teacher's fc1 is cached
])
def test_forward_passes_are_measured_each_epoch(toy, name, settings, teachers, runs):
    distiller = make(name, toy, epochs=5 if name == "fitnets" else 2, teachers=teachers, **settings)
    train(distiller, toy)
    assert distiller.forward_passes == runs


def test_a_grid_setting_is_for_the_runner_to_choose(toy):
    with pytest.raises(ValueError, match="beta is chosen on validation by DistillConfig"):
        make("correlation", toy)
    from hsilib.compress import DistillConfig
    from hsilib.experiments import Config

    base = Config(model="cnn2d", data_source="twin")
    grid = DistillConfig(base, "correlation")
    assert grid.candidates() == [{"beta": 0.1}, {"beta": 1.0}, {"beta": 10.0}]
    assert DistillConfig(base, "correlation", settings={"beta": 1.0}).candidates() == [{}]
    assert DistillConfig(base, "correlation", settings={"beta": [1.0, 3.0]}).candidates() == [
        {"beta": 1.0}, {"beta": 3.0}]
    with pytest.raises(ValueError, match="cannot choose temperature on validation; it can choose: beta"):
        DistillConfig(base, "correlation", settings={"temperature": (2.0, 4.0)})
    with pytest.raises(ValueError, match="cannot choose a_kd on validation; it can choose: none"):
        DistillConfig(base, "soft_targets", settings={"a_kd": (0.5, 0.9)})


def test_camkd_records_the_teachers_it_is_given(toy):
    from hsilib.compress import DistillConfig
    from hsilib.experiments import Config

    base = Config(model="cnn2d", data_source="twin")
    other = Config(model="cnn2d", data_source="twin", init_seed=5)
    given = DistillConfig(base, "camkd", teachers=(base, other))
    assert dict(given.settings)["teachers"] == 2 and len(given.teacher_configs()) == 2
    assert dict(DistillConfig(base, "camkd").settings).get("teachers", 3) == 3
    with pytest.raises(ValueError, match="teachers=3 contradicts the 2 teachers given"):
        DistillConfig(base, "camkd", teachers=(base, other), settings={"teachers": 3})


def test_camkd_has_no_intermediate_term_in_its_first_epoch(toy):
    distiller = make("camkd", toy, teachers=2)
    projectors = state(distiller.projectors)
    history = train(distiller, toy, epochs=1)
    assert set(history.terms) == {"ce", "kd"} and not changed(projectors, distiller.projectors)


def test_camkd_needs_at_least_two_teachers(toy):
    with pytest.raises(ValueError, match="CA-MKD .* needs at least 2, got 1"):
        make("camkd", toy, teachers=1)


# --------------------------------------------------------------------------
# End to end
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_simkd_runs_end_to_end_and_measures_the_composite(tmp_path):
    from hsilib.compress import DistillConfig
    from hsilib.experiments import Config, run

    base = Config(model="cnn2d", epochs=1, data_source="twin", patch_size=11)
    record = run(DistillConfig(base, "simkd", "98%"), tmp_path, device="cpu", progress=False)
    assert record["kind"] == "distill" and record["method"] == "simkd" and record["method_title"] == "SimKD"
    assert record["widths"] == [5, 10, 10] and set(record["history"]["terms"]) == {"mse"}
    # 40 PCA channels, 11x11 patches (fc1 sees 10x1x1), 16 classes: the student's conv1, conv2
    # and fc1, the projector 10->50->100 and the teacher's fc2 100->16; not the student's fc2
    composite = 5_005 + 1_260 + 110 + (550 + 5_100) + 1_616
    assert record["measure"]["params"] == composite
    assert composite != 5_005 + 1_260 + 110 + 176  # the plain student's count
