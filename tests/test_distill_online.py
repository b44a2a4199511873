"""The online distillation methods (DML, ONE, CL-ILR, OKDDip): each loss
against the spec's hand-computed values (§3.7-3.10 (h)), the stop-gradients
and ILR rescaling, every peer or branch training with its own gradient, the
pairing of the deployed network with the Scratch student, what is exported
and ensembled, and that no teacher is used."""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hsilib import measure
from hsilib.compress.distill import clilr, dml, okddip, one
from hsilib.compress.distill.base import TrainingPixels
from hsilib.data import PatchSampler
from hsilib.models import build_model
from hsilib.train import Callback, eval_mode, fit, validation_split

METHODS = {"dml": dml.DML, "one": one.ONE, "clilr": clilr.CLILR, "okddip": okddip.OKDDip}
TITLES = {"dml": "DML", "one": "ONE", "clilr": "CL-ILR", "okddip": "OKDDip"}
EYE = torch.eye(3)
ONE_HOT = [EYE[i:i + 1] for i in range(3)]  # the spec's peers / branches / heads [1,0,0], [0,1,0], [0,0,1]
Y0 = torch.tensor([0])


def make_student():
    return build_model("cnn2d", 40, 16, patch_size=11, widths=(5, 10, 10))


@pytest.fixture(scope="module")
def toy():
    """A 12x12 image of 4 classes in quadrants, 40 bands, patches of 11."""
    rng = np.random.default_rng(0)
    labels = np.zeros((12, 12), int)
    labels[:6, 6:], labels[6:, :6], labels[6:, 6:] = 1, 2, 3
    cube = (rng.normal(size=(4, 40))[labels] + rng.normal(size=(12, 12, 40))).astype(np.float32)
    sampler = PatchSampler(cube, patch_size=11)
    return sampler, validation_split(np.arange(144), labels.ravel(), 0.25, seed=0)


def build(name, toy, epochs=1, **settings):
    """The method on a fresh student seeded as the Scratch student would be;
    also that student and its initial state."""
    sampler, (fit_i, fit_y, _, _) = toy
    torch.manual_seed(0)
    student = make_student()
    initial = copy.deepcopy(student.state_dict())
    pixels = TrainingPixels(sampler.patches, fit_i, fit_y, 16, 0, epochs)
    return METHODS[name](student, [], pixels, make_student, **settings), student, initial


def batch(toy, size=20):
    sampler, (fit_i, fit_y, _, _) = toy
    return sampler.patches(fit_i[:size]), torch.as_tensor(fit_y[:size]), fit_i[:size]


@pytest.fixture(scope="module")
def trained(toy):
    """``trained(name)``: the method trained one epoch by ``fit`` (once per
    module), and the parameters of each of its parts before training."""
    sampler, (fit_i, fit_y, val_i, val_y) = toy
    done = {}

    def get(name):
        if name not in done:
            distiller, _, _ = build(name, toy)
            before = {part: copy.deepcopy(list(module.parameters()))
                      for part, module in parts(name, distiller).items()}
            fit(distiller, sampler.patches, fit_i, fit_y, val_i, val_y, epochs=1, lr=1e-3,
                objective=lambda m, x, y, i: m.step(x, y, i), frozen=distiller.frozen(),
                deployed=distiller.deployed(), callbacks=[distiller], progress=False)
            done[name] = distiller, before
        return done[name]
    return get


def grads(loss, params):
    return [g if g is not None else torch.zeros_like(p)
            for g, p in zip(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True),
                            params)]


def same(a, b):
    return all(torch.allclose(x, y, rtol=1e-4, atol=1e-7) for x, y in zip(a, b))


def kl(target, logits, temperature=1.0):
    """``KL(target || softmax(logits / T))``, batchmean, written out."""
    log_q = F.log_softmax(logits / temperature, dim=1)
    return (target * (target.log() - log_q)).sum(1).mean()


def total(terms):
    return sum(terms.values())


# --- the spec's hand-computed values ---------------------------------------

def test_dml_loss_matches_spec():
    terms = dml.dml_loss(ONE_HOT[:2], Y0)
    assert terms["kl_0"].item() == pytest.approx(0.3642, abs=1e-4)
    assert (terms["ce_0"] + terms["kl_0"]).item() == pytest.approx(0.9156, abs=1e-4)
    assert (terms["ce_1"] + terms["kl_1"]).item() == pytest.approx(1.9156, abs=1e-4)


def test_dml_peer_target_is_detached():
    z0, z1 = (z.clone().requires_grad_() for z in ONE_HOT[:2])
    terms = dml.dml_loss([z0, z1], Y0)
    assert torch.autograd.grad(terms["ce_0"] + terms["kl_0"], z1, allow_unused=True)[0] is None


def test_one_loss_matches_spec():
    terms = one.one_loss(ONE_HOT, torch.tensor([[0.5, 0.3, 0.2]]), Y0, temperature=3.0, weight=1.0)
    assert terms["ce_branches"].item() == pytest.approx(3.6543, abs=1e-4)
    assert terms["ce_ensemble"].item() == pytest.approx(0.9398, abs=1e-4)
    assert terms["kd"].item() == pytest.approx(0.3681, abs=1e-4)
    assert total(terms).item() == pytest.approx(4.9623, abs=1e-4)
    assert torch.allclose(one.gated_logits(ONE_HOT, torch.tensor([[0.5, 0.3, 0.2]])),
                          torch.tensor([[0.5, 0.3, 0.2]]))


def test_one_ramp_matches_spec(toy):
    """The authors' w(e) at their 0-based epoch e is w at fit's epoch e + 1."""
    distiller, _, _ = build("one", toy, epochs=296)  # R = round(0.27 * 296) = 80
    for epoch, expected in [(1, 0.0067), (41, 0.2865), (80, 0.9992), (81, 1.0), (200, 1.0)]:
        distiller.epoch_start(epoch, distiller)
        assert distiller.ramp() == pytest.approx(expected, abs=1e-4)


class RampSpy(Callback):
    """Records the ramp weight a distiller uses in each epoch fit runs."""

    def __init__(self, distiller):
        self.distiller, self.weights = distiller, []

    def epoch_start(self, epoch, model):
        self.weights.append(self.distiller.ramp())


@pytest.mark.parametrize("name", ["one", "okddip"])
def test_the_ramp_starts_at_e_minus_5_in_fits_first_epoch(name, toy):
    """With E = 5 the ramp is R = round(1.35) = 1 epoch long: e^-5, then 1
    (a ramp read at fit's 1-based epoch would be 1 throughout)."""
    sampler, (fit_i, fit_y, val_i, val_y) = toy
    distiller, _, _ = build(name, toy, epochs=5)
    spy = RampSpy(distiller)
    fit(distiller, sampler.patches, fit_i, fit_y, val_i, val_y, epochs=5, lr=1e-3, stop=None,
        objective=lambda m, x, y, i: m.step(x, y, i), deployed=distiller.deployed(),
        callbacks=[distiller, spy], progress=False)
    assert spy.weights == pytest.approx([math.exp(-5), 1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("detach", [True, False])
def test_one_ensemble_target_is_detached_by_default(detach):
    gate = torch.tensor([[0.5, 0.3, 0.2]], requires_grad=True)
    branches = [z.clone().requires_grad_() for z in ONE_HOT]
    kd = one.one_loss(branches, gate, Y0, 3.0, 1.0, detach_target=detach)["kd"]
    grad = torch.autograd.grad(kd, gate, allow_unused=True)[0]
    assert (grad is None) == detach


def test_clilr_loss_matches_spec():
    q0 = clilr.peer_targets(ONE_HOT, temperature=2.0)[0]
    assert torch.allclose(q0, torch.tensor([[0.2803, 0.3599, 0.3599]]), atol=1e-4)
    terms = clilr.clilr_loss(ONE_HOT, Y0, temperature=2.0, beta=0.5)
    assert total(terms).item() == pytest.approx(3.5585, abs=1e-4)


def test_ilr_divides_the_shared_gradient_by_the_heads():
    torch.manual_seed(0)
    shared = torch.randn(2, 3, requires_grad=True)
    head_grads = torch.randn(4, 2, 3)
    entering = clilr.ilr(shared, 4)
    assert torch.equal(entering, shared)
    sum((g * entering).sum() for g in head_grads).backward()
    assert torch.allclose(shared.grad, head_grads.sum(0) / 4)


def test_okddip_loss_matches_spec():
    features = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # W_q = W_k = I
    attention = okddip.peer_attention(features, features)
    assert torch.allclose(attention[0], torch.tensor([[0.4223, 0.1554, 0.4223],
                                                      [0.1554, 0.4223, 0.4223],
                                                      [0.2119, 0.2119, 0.5761]]), atol=1e-4)
    leader = torch.tensor([[0.5, 0.5, 0.0]])
    terms = okddip.okddip_loss(ONE_HOT, leader, attention, Y0, temperature=3.0, weight=1.0)
    expected = {"ce_peers": 3.6543, "ce_leader": 0.9580, "kd_peers": 0.2343, "kd_leader": 0.0272}
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, abs=1e-4)
    assert total(terms).item() == pytest.approx(4.8739, abs=1e-4)
    # t_i = sum_j A_ij z_j; the transposed attention is a silent bug that changes the loss
    wrong = okddip.okddip_loss(ONE_HOT, leader, attention.transpose(1, 2), Y0, 3.0, 1.0)
    assert abs(total(wrong).item() - 4.8739) > 1e-2


# --- training: every peer or branch, each with its own gradient ------------

def parts(name, distiller):
    """Each separately trained piece: peers, or trunk, heads and extra modules."""
    if name == "dml":
        return dict(enumerate(distiller.peers))
    pieces = {"trunk": distiller.network.trunk, **dict(enumerate(distiller.network.heads))}
    if name == "one":
        pieces["gate"] = distiller.gate
    if name == "okddip":
        pieces.update(query=distiller.query, key=distiller.key)
    return pieces


@pytest.mark.parametrize("name", METHODS)
def test_training_updates_every_peer_and_branch(name, trained):
    distiller, before = trained(name)
    for part, module in parts(name, distiller).items():
        for old, new in zip(before[part], module.parameters()):
            assert not torch.equal(old, new), f"{name}: {part} did not train"


def test_dml_each_peer_has_its_own_gradient(toy):
    distiller, _, _ = build("dml", toy)
    x, y, index = batch(toy)
    loss = total(distiller.objective(x, y, index)[1])
    z0, z1 = distiller.student(x), distiller.others[0](x)
    p0, p1 = F.softmax(z0, 1), F.softmax(z1, 1)
    for peer, own in [(distiller.student, F.cross_entropy(z0, y) + kl(p1.detach(), z0)),
                      (distiller.others[0], F.cross_entropy(z1, y) + kl(p0.detach(), z1))]:
        params = list(peer.parameters())
        assert same(grads(loss, params), grads(own, params))
    # without the stop-gradient, peer 1's KL would reach peer 0
    undetached = F.cross_entropy(z0, y) + kl(p1, z0) + F.cross_entropy(z1, y) + kl(p0, z1)
    params = list(distiller.student.parameters())
    assert not same(grads(loss, params), grads(undetached, params))


def one_pieces(distiller, x):
    branches = distiller.network.forward_branches(x)
    logits = [taps["logits"] for taps in branches]
    gate = distiller.gate(branches[0]["conv1"])
    return logits, sum(gate[:, i:i + 1] * z for i, z in enumerate(logits))


@pytest.mark.parametrize("detach", [True, False])
def test_one_gradients(toy, detach):
    distiller, _, _ = build("one", toy, detach_target=detach)
    distiller.epoch = 2  # past the ramp (R = 1): w = 1
    x, y, index = batch(toy)
    loss = total(distiller.objective(x, y, index)[1])
    logits, teacher = one_pieces(distiller, x)
    gate = list(distiller.gate.parameters())
    # the detached teacher learns from the labels only
    assert same(grads(loss, gate), grads(F.cross_entropy(teacher, y), gate)) == detach
    # branch 1: its own CE and KL, and the teacher's CE; no other branch's KL
    target = F.softmax(teacher.detach() / 3, 1)
    own = F.cross_entropy(logits[1], y) + F.cross_entropy(teacher, y) + 9 * kl(target, logits[1], 3)
    head = list(distiller.network.heads[1].parameters())
    assert same(grads(loss, head), grads(own, head)) == detach


@pytest.mark.parametrize("detach", [True, False])
def test_clilr_each_head_has_its_own_gradient(toy, detach):
    distiller, _, _ = build("clilr", toy, detach_target=detach)
    x, y, index = batch(toy)
    loss = total(distiller.objective(x, y, index)[1])
    logits = [taps["logits"] for taps in distiller.network.forward_branches(x)]
    for h in (0, 2):
        others = (sum(logits) - logits[h]) / 3
        q = F.softmax(others.detach() / 2, 1)
        own = 0.5 * F.cross_entropy(logits[h], y) + 0.5 * F.cross_entropy(logits[h] / 2, q)
        head = list(distiller.network.heads[h].parameters())
        assert same(grads(loss, head), grads(own, head)) == detach


def test_clilr_trunk_gradient_is_rescaled_by_the_heads(toy):
    distiller, _, _ = build("clilr", toy)
    x, y, index = batch(toy)
    with_ilr = total(distiller.objective(x, y, index)[1])
    logits = [taps["logits"] for taps in distiller.network.forward_branches(x)]
    without = total(clilr.clilr_loss(logits, y, 2.0, 0.5))
    assert with_ilr.item() == pytest.approx(without.item(), rel=1e-6)  # identity forward
    trunk = list(distiller.network.trunk.parameters())
    assert same(grads(with_ilr, trunk), [g / 4 for g in grads(without, trunk)])


def okddip_pieces(distiller, x):
    *peers, leader = distiller.network.forward_branches(x)
    features = torch.stack([taps["fc1"] for taps in peers], dim=1)
    attention = torch.softmax(distiller.query(features) @ distiller.key(features).transpose(1, 2), -1)
    return [taps["logits"] for taps in peers], leader["logits"], attention


@pytest.mark.parametrize("detach", [False, True])
def test_okddip_gradients(toy, detach):
    distiller, _, _ = build("okddip", toy, detach_peers=detach)
    distiller.epoch = 2  # past the ramp (R = 1): w = 1
    x, y, index = batch(toy)
    loss = total(distiller.objective(x, y, index)[1])
    peers, leader, attention = okddip_pieces(distiller, x)
    stacked = torch.stack(peers, dim=1)
    # the attention learns through the targets, detached peers or not
    for projection in (distiller.query, distiller.key):
        assert all(g.abs().sum() > 0 for g in grads(loss, list(projection.parameters())))
    # the leader: its CE and its KL to the peers' mean
    mean = F.softmax(stacked.detach().mean(1) / 3, 1)
    own = F.cross_entropy(leader, y) + 9 * kl(mean, leader, 3)
    head = list(distiller.network.heads[3].parameters())
    assert same(grads(loss, head), grads(own, head))
    # a peer's classifier: its own terms only when the peers' logits are detached
    target = F.softmax((attention @ stacked.detach())[:, 1] / 3, 1)
    own = F.cross_entropy(peers[1], y) + 9 * kl(target, peers[1], 3)
    classifier = list(distiller.network.heads[1].fc2.parameters())
    assert same(grads(loss, classifier), grads(own, classifier)) == detach


# --- deployed, exported and ensembled networks ------------------------------

@pytest.mark.parametrize("name", METHODS)
def test_deployed_network_starts_from_the_scratch_student(name, toy):
    distiller, student, initial = build(name, toy)
    exported = distiller.export()
    assert exported.state_dict().keys() == initial.keys()
    assert all(torch.equal(exported.state_dict()[k], v) for k, v in initial.items())
    x, _, _ = batch(toy)
    with torch.no_grad(), eval_mode(distiller), eval_mode(student):
        assert torch.allclose(distiller.deployed()(x), student(x), atol=1e-6)
    # the deployed network trains with the method (a view, not a copy)
    trained = {id(p) for p in distiller.parameters()}
    assert {id(p) for p in distiller.deployed().parameters()} <= trained


@pytest.mark.parametrize("name", METHODS)
def test_export_is_the_trained_deployed_network_at_the_students_size(name, toy, trained):
    distiller, _ = trained(name)
    exported = distiller.export()
    x, _, _ = batch(toy)
    with torch.no_grad(), eval_mode(distiller), eval_mode(exported):
        assert torch.allclose(exported(x), distiller.deployed()(x), atol=1e-5)
    assert type(exported) is type(make_student())
    assert measure.all_parameters(exported) == measure.all_parameters(make_student())
    assert (sum(measure.parameters_per_layer(exported).values())
            == sum(measure.parameters_per_layer(make_student()).values()))


MEMBERS = {"dml": ["peer 1"], "one": ["branch 1", "branch 2"], "clilr": ["head 1", "head 2", "head 3"],
           "okddip": ["peer 0", "peer 1", "peer 2"]}  # the deployed peer, branch, head or leader left out


@pytest.mark.parametrize("name", METHODS)
def test_every_other_peer_or_branch_is_scored_on_its_own(name, toy, trained):
    """Spec §3.7-3.10 (e): the other peers (or heads) are logged too."""
    distiller, _ = trained(name)
    x, _, _ = batch(toy)
    with torch.no_grad(), eval_mode(distiller):
        logits = ([peer(x) for peer in distiller.peers] if name == "dml"
                  else [taps["logits"] for taps in distiller.network.forward_branches(x)])
        members = distiller.members()
        assert list(members) == MEMBERS[name]
        for label, member in members.items():
            assert torch.allclose(member(x), logits[int(label.split()[-1])], atol=1e-6)


@pytest.mark.parametrize("name, runs", [("dml", 2), ("one", 4), ("clilr", 5), ("okddip", 5)])
def test_forward_passes_are_counted_in_each_step(name, runs, trained):
    """Every network run of a step, a shared trunk and each head included."""
    distiller, _ = trained(name)
    assert distiller.forward_passes == [runs]


def defined_ensemble(name, distiller, x):
    """Each method's ensemble, computed from its parts."""
    if name == "dml":
        return (distiller.student(x) + distiller.others[0](x)) / 2
    if name == "one":
        return one_pieces(distiller, x)[1]
    logits = [taps["logits"] for taps in distiller.network.forward_branches(x)]
    return sum(logits[:3]) / 3 if name == "okddip" else sum(logits) / 4  # OKDDip: peers, no leader


@pytest.mark.parametrize("name", METHODS)
def test_ensemble_is_the_defined_one_and_larger(name, toy, trained):
    distiller, _ = trained(name)
    x, _, _ = batch(toy)
    with torch.no_grad(), eval_mode(distiller):
        assert torch.allclose(distiller.ensemble()(x), defined_ensemble(name, distiller, x), atol=1e-5)
    size = sum(measure.parameters_per_layer(distiller.ensemble()).values())
    assert size > sum(measure.parameters_per_layer(distiller.export()).values())


@pytest.mark.parametrize("size, widths", list(enumerate([(15, 30, 30), (10, 20, 20), (5, 10, 10)])))
def test_parameter_counts_on_indian_pines_match_the_spec(size, widths):
    """Training-time conv and linear parameters (the paper's convention, no
    batch norm) of the three students on Indian Pines: spec §3.8-3.10 (d);
    DML's two peers are two students (§1.3)."""
    expected = {"one": (117_981, 56_171, 16_861), "clilr": (152_239, 71_514, 20_789),
                "okddip": (152_419, 71_594, 20_809), "dml": (2 * 49_321, 2 * 25_386, 2 * 8_951)}
    make = functools.partial(build_model, "cnn2d", 40, 16, patch_size=19, widths=widths)
    pixels = TrainingPixels(None, np.arange(2), np.zeros(2, int), 16, 0, 1)
    for name, counts in expected.items():
        distiller = METHODS[name](make(), [], pixels, make)
        assert sum(measure.parameters_per_layer(distiller).values()) == counts[size], name


# --- registry, settings and teachers ------------------------------------------

@pytest.mark.parametrize("name", METHODS)
def test_online_methods_use_no_teacher(name, toy):
    from hsilib.compress import DistillConfig
    from hsilib.experiments import Config

    cls = METHODS[name]
    assert (cls.name, cls.title, cls.family, cls.teachers) == (name, TITLES[name], "online", 0)
    base = Config(model="cnn2d", epochs=1, data_source="twin", patch_size=11)
    assert DistillConfig(base, name).teacher_configs() == ()
    with pytest.raises(ValueError, match="needs no teacher"):
        DistillConfig(base, name, teachers=(base,))
    distiller, _, _ = build(name, toy)
    assert len(distiller.teacher_nets) == 0 and distiller.frozen() == []


@pytest.mark.parametrize("name, settings, message", [
    ("dml", {"peers": 1}, "at least 2 peers"),
    ("one", {"branches": 1}, "at least 2 branches"),
    ("clilr", {"heads": 1}, "at least 2 branches"),
    ("okddip", {"peers": 1}, "at least 2 peers"),
    ("okddip", {"factor": 0}, "positive integer"),
    ("one", {"gate": "none"}, "no setting 'gate'"),
])
def test_bad_settings_are_clear_errors(name, settings, message, toy):
    with pytest.raises(ValueError, match=message):
        build(name, toy, **settings)


@pytest.mark.slow
def test_one_runs_end_to_end(tmp_path):
    from hsilib.compress import DistillConfig
    from hsilib.experiments import Config, run

    base = Config(model="cnn2d", epochs=1, data_source="twin", patch_size=11)
    record = run(DistillConfig(base, "one", "98%"), tmp_path, device="cpu", progress=False)
    assert (record["kind"], record["method"], record["family"]) == ("distill", "one", "online")
    student = build_model("cnn2d", 40, 16, patch_size=11, widths=tuple(record["widths"]))
    assert record["measure"]["params"] == sum(measure.parameters_per_layer(student).values())
    assert record["ensemble"]["params"] > record["measure"]["params"]
    assert record["teachers"] == [] and record["forward_passes"] == [4.0]
    assert list(record["members"]) == ["branch 1", "branch 2"]
    assert all(0 <= m["top1"] <= 1 for m in record["members"].values())
    assert record["settings"] == one.ONE.defaults and record["selection"] is None
    assert math.isfinite(record["history"]["train_loss"][0])
