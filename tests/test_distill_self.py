"""Self distillation (TF-KD, CS-KD, PS-KD, DDGSD): each loss against the
spec's hand-computed values (section 3, (h)), no teacher anywhere, and what
each method does to a tiny CNN2D trained by fit: CS-KD's partners, PS-KD's
prediction bank, DDGSD's views and its augmentation-only control."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hsilib.augment import random_dihedral
from hsilib.compress import DistillConfig
from hsilib.compress.distill import cskd, ddgsd, pskd, tfkd
from hsilib.compress.distill.base import DISTILLERS, TrainingPixels
from hsilib.data import PatchSampler
from hsilib.experiments import Config
from hsilib.measure import parameters_per_layer
from hsilib.models import build_model
from hsilib.train import Callback, fit, shuffled_batches, validation_split

SELF = ("tfkd", "cskd", "pskd", "ddgsd")
T = torch.tensor


def total(terms):
    return sum(terms.values()).item()


# --------------------------------------------------------------------------
# The losses against the spec's values
# --------------------------------------------------------------------------

def test_tfkd_code_form_distils_softmax_of_the_virtual_teacher_with_an_element_mean():
    z, y = T([[2.0, 0.0, 0.0]]), T([0])
    target = tfkd.tfkd_target(y, 3, 0.9, 20.0, "code")
    assert torch.allclose(target, T([[0.3428, 0.3286, 0.3286]]), atol=1e-4)
    terms = tfkd.tfkd_loss(z, y, correct_prob=0.9, temperature=20.0, alpha=0.1, multiplier=100.0,
                           teacher_form="code")
    assert total(terms) == pytest.approx(1.7337, abs=1e-4)
    # For C = 16 and tau = 20 the code's target is nearly uniform (0.0625).
    sixteen = tfkd.tfkd_target(T([3]), 16, 0.99, 20.0, "code")
    assert float(sixteen[0, 3]) == pytest.approx(0.0655, abs=1e-4)


def test_tfkd_paper_form_distils_the_softened_virtual_teacher_batchmean():
    z, y = T([[2.0, 0.0, 0.0]]), T([0])
    assert torch.allclose(tfkd.tfkd_target(y, 3, 0.9, 1.0, "paper"), T([[0.9, 0.05, 0.05]]))
    terms = tfkd.tfkd_loss(z, y, correct_prob=0.9, temperature=1.0, alpha=0.1, multiplier=100.0,
                           teacher_form="paper")
    assert total(terms) == pytest.approx(0.2201, abs=1e-4)
    # At tau = 20 both sides are softened: p_d^(1/tau) renormalised against softmax(z / tau).
    softened = np.array([0.9, 0.05, 0.05]) ** (1 / 20)
    softened /= softened.sum()
    assert torch.allclose(tfkd.tfkd_target(y, 3, 0.9, 20.0, "paper").double(),
                          torch.from_numpy(softened)[None], atol=1e-6)
    student = np.exp(np.array([2.0, 0.0, 0.0]) / 20)
    student /= student.sum()
    expected = 0.9 * np.log(1 + 2 * np.exp(-2)) + 0.1 * np.sum(softened * np.log(softened / student))
    terms = tfkd.tfkd_loss(z, y, correct_prob=0.9, temperature=20.0, alpha=0.1, multiplier=100.0,
                           teacher_form="paper")
    assert total(terms) == pytest.approx(expected, abs=1e-6)


def test_tfkd_rejects_an_unknown_form_and_an_impossible_teacher():
    with pytest.raises(ValueError, match="teacher_form"):
        tfkd.tfkd_target(T([0]), 3, 0.9, 20.0, "book")
    with pytest.raises(ValueError, match="correct_prob"):
        tfkd.virtual_teacher(T([0]), 3, 1.5)


def test_cskd_loss_and_its_partner_is_a_constant():
    z, partner = T([[2.0, 1.0, 0.0]], requires_grad=True), T([[1.0, 0.0, 0.0]], requires_grad=True)
    terms = cskd.cskd_loss(z, partner, T([0]), temperature=4.0, lam=1.0)
    assert terms["ce"].item() == pytest.approx(0.4076, abs=1e-4)
    assert terms["kd"].item() / 16 == pytest.approx(0.006394, abs=1e-6)  # KL times T^2
    assert total(terms) == pytest.approx(0.5099, abs=1e-4)
    sum(terms.values()).backward()
    assert partner.grad is None and z.grad.abs().sum() > 0


def test_pskd_targets_and_loss_at_half_way():
    alpha_t = pskd.progressive_alpha(0.8, 150, 300)  # the code's 0-based epoch 149
    assert alpha_t == pytest.approx(0.4)
    assert pskd.progressive_alpha(0.8, 300, 300) == pytest.approx(0.8)  # the last epoch reaches alpha_T
    previous = T([[0.6, 0.3, 0.1]], requires_grad=True)
    target = pskd.progressive_targets(T([0]), previous, alpha_t)
    assert torch.allclose(target, T([[0.84, 0.12, 0.04]]), atol=1e-6)
    z = T([[2.0, 1.0, 0.0]], requires_grad=True)
    terms = pskd.pskd_loss(z, T([0]), previous, alpha_t)
    assert total(terms) == pytest.approx(0.6076, abs=1e-4)
    terms["ce"].backward()
    assert previous.grad is None and z.grad.abs().sum() > 0
    for epoch in (0, 301):
        with pytest.raises(ValueError, match="epoch"):
            pskd.progressive_alpha(0.8, epoch, 300)


DDGSD_CASE = dict(logits_a=T([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), logits_b=T([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]),
                  features_a=T([[1.0, 0.0], [0.0, 1.0]]), features_b=T([[2.0, 0.0], [0.0, 0.0]]),
                  labels=T([0, 1]), temperature=3.0)


def test_ddgsd_loss_without_and_with_t_squared():
    terms = ddgsd.ddgsd_loss(**DDGSD_CASE, lam=1.0, mu=5e-4, t_squared=False)
    assert terms["ce"].item() == pytest.approx(0.7910, abs=1e-4)
    assert float(terms["kl"]) == pytest.approx(0.02746, abs=1e-5)
    assert float(terms["mmd"]) == pytest.approx(5e-4 * 0.5, abs=1e-7)
    assert total(terms) == pytest.approx(0.8187, abs=1e-4)
    assert total(ddgsd.ddgsd_loss(**DDGSD_CASE, lam=1.0, mu=5e-4, t_squared=True)) == pytest.approx(
        1.0384, abs=1e-4)
    control = ddgsd.ddgsd_loss(**DDGSD_CASE, lam=0.0, mu=0.0, t_squared=False)
    assert total(control) == pytest.approx(0.7910, abs=1e-4)


def test_ddgsd_kl_is_symmetric_and_undetached_and_mmd_is_batch_level():
    a = DDGSD_CASE["logits_a"].clone().requires_grad_()
    b = DDGSD_CASE["logits_b"].clone().requires_grad_()
    kl = ddgsd.symmetric_kl(a, b, 3.0)
    assert kl.item() == pytest.approx(ddgsd.symmetric_kl(b, a, 3.0).item(), abs=1e-7)
    # Gradients through both sides of both directions: those of the written-out formula.
    log_a, log_b = F.log_softmax(a / 3, 1), F.log_softmax(b / 3, 1)
    written = ((log_b.exp() - log_a.exp()) * (log_b - log_a)).sum(1).mean()
    assert torch.allclose(kl, written)
    for ours, theirs in zip(torch.autograd.grad(kl, (a, b)), torch.autograd.grad(written, (a, b))):
        assert torch.allclose(ours, theirs, atol=1e-6) and ours.abs().sum() > 0
    # Different pairs, same batch means: no discrepancy.
    assert float(ddgsd.linear_mmd2(T([[1.0, 0.0], [0.0, 1.0]]), T([[0.0, 1.0], [1.0, 0.0]]))) == 0.0


# --------------------------------------------------------------------------
# No teacher
# --------------------------------------------------------------------------

@pytest.mark.parametrize("method", SELF)
def test_self_methods_use_no_teacher(method, toy):
    base = Config(model="cnn2d", epochs=1, data_source="twin", patch_size=11)
    cls = DISTILLERS[method]
    assert cls.family == "self" and cls.teachers == 0
    assert cls.title == {"tfkd": "TF-KD", "cskd": "CS-KD", "pskd": "PS-KD", "ddgsd": "DDGSD"}[method]
    assert DistillConfig(base, method).teacher_configs() == ()
    with pytest.raises(ValueError, match="needs no teacher"):
        DistillConfig(base, method, teachers=(base,))
    distiller = make(method, toy)
    assert len(distiller.teacher_nets) == 0 and distiller.frozen() == []


def test_defaults_are_the_recommended_settings():
    assert DISTILLERS["tfkd"].defaults == {"correct_prob": 0.99, "temperature": 20.0, "alpha": 0.1,
                                           "multiplier": 100.0, "teacher_form": "code"}
    assert DISTILLERS["cskd"].defaults == {"temperature": 4.0, "lam": 1.0}
    assert DISTILLERS["pskd"].defaults == {"alpha_T": 0.8}
    assert DISTILLERS["ddgsd"].defaults == {"temperature": 3.0, "lam": 1.0, "mu": 5e-4,
                                            "t_squared": False}


# --------------------------------------------------------------------------
# On a tiny CNN2D trained by fit
# --------------------------------------------------------------------------

CLASSES = 4


@pytest.fixture(scope="module")
def toy():
    """A 16x16 image of 4 classes in quadrants, 40 bands, patches of 11;
    a quarter of the pixels carved out for validation."""
    rng = np.random.default_rng(0)
    labels = np.zeros((16, 16), int)
    labels[:8, 8:], labels[8:, :8], labels[8:, 8:] = 1, 2, 3
    cube = (rng.normal(size=(CLASSES, 40))[labels] + rng.normal(size=(16, 16, 40))).astype(np.float32)
    sampler = PatchSampler(cube, patch_size=11)
    return sampler, labels.ravel(), validation_split(np.arange(256), labels.ravel(), 0.25, seed=0)


def make(method, toy, view=None, epochs=2, **settings):
    sampler, _, (fit_i, fit_y, _, _) = toy

    def student():
        return build_model("cnn2d", 40, CLASSES, patch_size=11, widths=(5, 10, 10))

    torch.manual_seed(0)
    pixels = TrainingPixels(view or sampler.patches, fit_i, fit_y, CLASSES, seed=0, epochs=epochs)
    return DISTILLERS[method](student(), [], pixels, student, **settings)


def train(distiller, toy, epochs=2, objective=None, callbacks=()):
    sampler, _, parts = toy
    return fit(distiller, sampler.patches, *parts, epochs=epochs, lr=1e-3,
               objective=objective or (lambda m, x, y, i: m.step(x, y, i)),
               frozen=distiller.frozen(), deployed=distiller.deployed(),
               callbacks=[distiller, *callbacks], sampler=distiller.sampler or shuffled_batches,
               transform=distiller.transform, progress=False)


def test_tfkd_objective_is_its_loss_on_the_students_logits(toy):
    sampler, _, (fit_i, fit_y, _, _) = toy
    distiller = make("tfkd", toy)
    x, y = sampler.patches(fit_i[:20]), torch.as_tensor(fit_y[:20])
    logits, terms = distiller.objective(x, y, fit_i[:20])
    # The defaults' code form written out: a = 0.99, tau = 20, alpha = 0.1, multiplier 100,
    # softmax(p_d / tau) as the target, the student at tau = 1, KLDivLoss's element mean.
    z, labels = logits.detach().double().numpy(), y.numpy()
    p_d = np.full((20, CLASSES), 0.01 / (CLASSES - 1))
    p_d[np.arange(20), labels] = 0.99
    target = np.exp(p_d / 20) / np.exp(p_d / 20).sum(1, keepdims=True)
    log_q = z - np.log(np.exp(z).sum(1, keepdims=True))
    ce = -log_q[np.arange(20), labels].mean()
    kd = np.mean(target * (np.log(target) - log_q))  # over the N x C elements
    assert set(terms) == {"ce", "kd"}
    assert terms["ce"].item() == pytest.approx(0.9 * ce, rel=1e-5)
    assert terms["kd"].item() == pytest.approx(0.1 * 100 * kd, rel=1e-4)
    with pytest.raises(ValueError, match="teacher_form"):
        make("tfkd", toy, teacher_form="eq5")


def test_cskd_partners_share_the_class_and_are_fitting_pixels_forwarded_without_gradient(toy):
    sampler, labels, (fit_i, _, val_i, _) = toy
    forwarded = []

    def partner_view(index):
        forwarded.append(np.asarray(index).copy())
        return sampler.patches(index)

    distiller = make("cskd", toy, view=partner_view)
    drawn, passes = [], []
    draw = distiller.partners

    def recording(anchor_labels):
        partners = draw(anchor_labels)
        drawn.append((np.asarray(anchor_labels).copy(), partners))
        return partners

    distiller.partners = recording
    distiller.student.conv1.register_forward_pre_hook(  # training passes (validation runs in eval mode)
        lambda module, args: passes.append((module.training, torch.is_grad_enabled()))
        if module.training else None)
    train(distiller, toy)
    assert len(drawn) == 4  # 192 fitting pixels, batches of 100: 2 steps a epoch
    for (anchor_labels, partners), view_index in zip(drawn, forwarded):
        assert np.array_equal(partners, view_index)  # the drawn partners are what is forwarded
        assert np.array_equal(labels[partners], anchor_labels)
        assert np.isin(partners, fit_i).all() and not np.isin(partners, val_i).any()
    # Per step: anchors with gradient, then partners without, both in train mode.
    assert passes == [(True, True), (True, False)] * 4


def test_cskd_pairs_a_lone_pixel_with_itself_and_draws_with_replacement(toy):
    sampler, _, _ = toy
    fit_i, fit_y = np.array([10, 20, 30, 40, 50]), np.array([0, 0, 0, 1, 2])
    pixels = TrainingPixels(sampler.patches, fit_i, fit_y, 3, seed=0, epochs=1)
    student = build_model("cnn2d", 40, 3, patch_size=11, widths=(5, 10, 10))
    distiller = cskd.CSKD(student, [], pixels, lambda: student)
    partners = distiller.partners(np.array([1, 2] + [0] * 30))
    assert partners[0] == 40 and partners[1] == 50
    assert set(partners[2:]) == {10, 20, 30}  # every member drawn, hence repeats
    with pytest.raises(ValueError, match="no fitting pixel"):
        cskd.CSKD(student, [], TrainingPixels(sampler.patches, fit_i, fit_y, 4, 0, 1),
                  lambda: student).partners(np.array([3]))


class BankSnapshots(Callback):
    def __init__(self, distiller):
        self.distiller, self.banks = distiller, []

    def epoch_end(self, epoch, model):
        self.banks.append(self.distiller.bank.clone())


def test_pskd_bank_holds_last_epochs_predictions_by_pixel(toy):
    _, _, (fit_i, fit_y, _, _) = toy
    distiller = make("pskd", toy)
    assert torch.equal(distiller.bank, F.one_hot(torch.as_tensor(fit_y), CLASSES).float())
    steps = []

    def objective(model, x, y, index):
        logits, terms = model.objective(x, y, index)
        steps.append((model.epoch, index.copy(), y, logits.detach(), terms["ce"].detach()))
        return logits, terms

    snapshots = BankSnapshots(distiller)
    train(distiller, toy, objective=objective, callbacks=[snapshots])
    row = {int(pixel): r for r, pixel in enumerate(fit_i)}
    covered = set()
    for epoch, index, y, logits, loss in steps:
        rows = torch.as_tensor([row[int(p)] for p in index])
        if epoch == 1:  # one-hot targets: plain cross-entropy
            assert torch.allclose(loss, F.cross_entropy(logits, y), atol=1e-6)
            assert torch.allclose(snapshots.banks[0][rows], F.softmax(logits, 1), atol=1e-6)
            covered.update(rows.tolist())
        else:  # last epoch: alpha_T, targets from epoch 1's predictions of the same pixels
            expected = pskd.pskd_loss(logits, y, snapshots.banks[0][rows], 0.8)["ce"]
            assert torch.allclose(loss, expected, atol=1e-6)
            assert not torch.allclose(loss, F.cross_entropy(logits, y), atol=1e-4)
    assert covered == set(range(len(fit_i)))


@pytest.mark.parametrize("method, runs", [("tfkd", 1), ("cskd", 2), ("pskd", 1), ("ddgsd", 2)])
def test_forward_passes_are_measured(method, runs, toy):
    """CS-KD runs the student on the anchors and on their partners, DDGSD on
    each of two views; TF-KD and PS-KD once (targets from labels, a bank)."""
    distiller = make(method, toy)
    train(distiller, toy)
    assert distiller.forward_passes == [runs, runs]


def test_pskd_rejects_pixels_outside_the_fitting_set_and_epochs_beyond_its_budget(toy):
    sampler, _, (fit_i, fit_y, val_i, _) = toy
    distiller = make("pskd", toy)
    distiller.epoch_start(1, distiller)
    x, y = sampler.patches(val_i[:4]), torch.as_tensor(fit_y[:4])
    with pytest.raises(ValueError, match="fitting pixels only"):
        distiller.objective(x, y, val_i[:4])
    distiller.epoch_start(3, distiller)
    with pytest.raises(ValueError, match="epoch"):
        distiller.objective(sampler.patches(fit_i[:4]), y, fit_i[:4])


def dihedral(patch):
    """The eight symmetries of a (C, s, s) patch."""
    turns = [torch.rot90(patch, k, dims=(-2, -1)) for k in range(4)]
    return turns + [t.flip(-1) for t in turns]


def test_ddgsd_views_are_independent_dihedral_transforms_that_keep_the_centre(toy):
    distiller = make("ddgsd", toy)
    inputs, views = [], []

    def objective(model, x, y, index):
        inputs.append(x.clone())
        return model.objective(x, y, index)

    distiller.student.conv1.register_forward_pre_hook(
        lambda module, args: views.append(args[0].clone()) if module.training else None)
    train(distiller, toy, epochs=1, objective=objective)
    assert len(views) == 2 * len(inputs) == 4
    for step, x in enumerate(inputs):
        a, b = views[2 * step], views[2 * step + 1]
        assert torch.equal(a[..., 5, 5], x[..., 5, 5]) and torch.equal(b[..., 5, 5], x[..., 5, 5])
        assert not torch.equal(a, b) and not torch.equal(a, x)
        for view in (a, b):
            assert all(any(torch.equal(v, t) for t in dihedral(p)) for v, p in zip(view, x))


def test_ddgsd_augmentation_only_control_is_cross_entropy_on_two_views(toy):
    sampler, _, (fit_i, fit_y, _, _) = toy
    x, y = sampler.patches(fit_i[:30]), torch.as_tensor(fit_y[:30])
    control, full = make("ddgsd", toy, lam=0.0, mu=0.0), make("ddgsd", toy)
    _, terms = control.objective(x, y, fit_i[:30])
    views = torch.Generator().manual_seed(0)  # the run's seed, as the distiller's
    expected = sum(F.cross_entropy(control.student(random_dihedral(x, views)), y)
                   for _ in range(2))
    assert terms["kl"].item() == 0.0 and terms["mmd"].item() == 0.0
    assert total(terms) == pytest.approx(expected.item(), abs=1e-6)
    _, distilled = full.objective(x, y, fit_i[:30])
    assert torch.allclose(distilled["ce"], terms["ce"])  # same initial weights, same views
    assert distilled["kl"].item() > 0 and distilled["mmd"].item() > 0


# --------------------------------------------------------------------------
# Through the runner
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_a_pskd_run_trains_the_plain_student_architecture(tmp_path):
    from hsilib.experiments import run

    base = Config(model="cnn2d", epochs=1, data_source="twin", patch_size=11)
    record = run(DistillConfig(base, "pskd", "98%"), tmp_path, device="cpu", progress=False)
    assert record["kind"] == "distill" and record["method"] == "pskd"
    assert record["method_title"] == "PS-KD" and record["family"] == "self"
    assert record["forward_passes"] == [1.0] and record["members"] == {}
    assert record["teachers"] == [] and record["widths"] == [5, 10, 10]
    assert record["settings"] == {"alpha_T": 0.8} and record["extra_training_params"] == 0
    plain = build_model("cnn2d", 40, len(record["metrics"]["per_class"]), patch_size=11,
                        widths=(5, 10, 10))
    assert record["measure"]["params"] == sum(parameters_per_layer(plain).values()) == 6_551
    assert len(record["history"]["val_oa"]) == 1
