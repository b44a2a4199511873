"""The pluggable training loop: the default reproduces plain Adam +
cross-entropy training bit for bit; objectives, optimizer factories,
callbacks, samplers, transforms, joint and frozen modules do what they say."""

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hsilib.augment import random_dihedral
from hsilib.data import PatchSampler
from hsilib.train import Callback, Plateau, adam, fit, predict_scores, validation_split


@pytest.fixture(scope="module")
def toy():
    """A 24x24 image of 4 classes in quadrants, 6 bands, patches of 3."""
    rng = np.random.default_rng(0)
    labels = np.zeros((24, 24), int)
    labels[:12, 12:], labels[12:, :12], labels[12:, 12:] = 1, 2, 3
    cube = (rng.normal(size=(4, 6))[labels] + rng.normal(size=(24, 24, 6))).astype(np.float32)
    sampler = PatchSampler(cube, patch_size=3)
    parts = validation_split(np.arange(576), labels.ravel(), 0.25, seed=0)
    return sampler, parts


def patch_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(6, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8, 4))


def plain_adam_cross_entropy(model, view, fit_i, fit_y, val_i, val_y, epochs, lr, batch_size,
                             seed, precision):
    """Training as written before objectives existed: Adam, cross-entropy,
    one permutation a epoch, best validation epoch kept."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    targets = torch.as_tensor(fit_y)
    losses, oas, best, best_state = [], [], -1.0, None
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
                else torch.autocast("cpu", enabled=False))
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(fit_i), generator=generator).numpy()
        total = seen = 0
        for begin in range(0, len(order), batch_size):
            batch = order[begin:begin + batch_size]
            if len(batch) < 2 and seen:
                continue
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                logits = model(view(fit_i[batch]))
            loss = nn.CrossEntropyLoss()(logits.float(), targets[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        oa = float((predict_scores(model, view, val_i, precision=precision).argmax(1) == val_y).mean())
        losses.append(total / seen)
        oas.append(oa)
        if oa > best:
            best, best_state = oa, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return losses, oas


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_default_fit_reproduces_plain_training_bit_for_bit(toy, precision):
    sampler, (fit_i, fit_y, val_i, val_y) = toy
    ours, theirs = patch_net(), patch_net()
    settings = dict(epochs=3, lr=0.01, batch_size=33, seed=5, precision=precision)
    history = fit(ours, sampler.patches, fit_i, fit_y, val_i, val_y, progress=False, **settings)
    losses, oas = plain_adam_cross_entropy(theirs, sampler.patches, fit_i, fit_y, val_i, val_y,
                                           **settings)
    assert history.train_loss == losses and history.val_oa == oas
    assert history.terms == {"ce": losses}
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name


class LabelSmoothing:
    """An objective with two named terms."""

    def __call__(self, model, x, y, index):
        logits = model(x)
        log_p = F.log_softmax(logits.float(), 1)
        return logits, {"nll": F.nll_loss(log_p, y), "smooth": -0.1 * log_p.mean()}


def test_each_loss_term_is_logged_per_epoch_and_their_sum_is_the_loss(toy):
    sampler, parts = toy
    history = fit(patch_net(), sampler.patches, *parts, epochs=2, lr=0.01, progress=False,
                  objective=LabelSmoothing())
    assert list(history.terms) == ["nll", "smooth"]
    assert all(len(v) == 2 for v in history.terms.values())
    for epoch in range(2):
        total = history.terms["nll"][epoch] + history.terms["smooth"][epoch]
        assert history.train_loss[epoch] == pytest.approx(total)


def test_the_objective_gets_the_batch_pixel_indices_and_labels(toy):
    sampler, (fit_i, fit_y, val_i, val_y) = toy
    seen = []

    def objective(model, x, y, index):
        seen.append((index.copy(), y.clone()))
        logits = model(x)
        return logits, {"ce": F.cross_entropy(logits, y)}

    fit(patch_net(), sampler.patches, fit_i, fit_y, val_i, val_y, epochs=1, lr=0.01,
        batch_size=50, progress=False, objective=objective)
    indices = np.concatenate([i for i, _ in seen])
    assert sorted(indices) == sorted(fit_i)  # every fitting pixel once an epoch
    lookup = dict(zip(fit_i, fit_y))
    for index, labels in seen:
        assert labels.tolist() == [lookup[i] for i in index]


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def epoch_start(self, epoch, model):
        self.events.append(("start", epoch))

    def before_step(self, model):
        grads = [p.grad for p in model.parameters()]
        self.events.append(("step", all(g is not None for g in grads)))

    def epoch_end(self, epoch, model):
        self.events.append(("end", epoch))


def test_callbacks_run_at_epoch_start_before_each_step_with_gradients_and_at_epoch_end(toy):
    sampler, parts = toy
    recorder = Recorder()
    fit(patch_net(), sampler.patches, *parts, epochs=2, lr=0.01, batch_size=200, progress=False,
        callbacks=[recorder])
    steps = -(-len(parts[0]) // 200)
    per_epoch = lambda e: [("start", e), *[("step", True)] * steps, ("end", e)]  # noqa: E731
    assert recorder.events == per_epoch(1) + per_epoch(2)


def test_a_before_step_callback_can_edit_gradients(toy):
    """A callback that zeroes one layer's gradient freezes it (Adam moves a
    parameter only by its gradient's moments)."""
    sampler, parts = toy

    class FreezeFirst(Callback):
        def before_step(self, model):
            model[0].weight.grad.zero_()

    model = patch_net()
    first = model[0].weight.detach().clone()
    last = model[4].weight.detach().clone()
    fit(model, sampler.patches, *parts, epochs=1, lr=0.01, progress=False, callbacks=[FreezeFirst()])
    assert torch.equal(model[0].weight, first)
    assert not torch.equal(model[4].weight, last)


def test_epoch_end_runs_before_validation(toy):
    """Model selection sees what epoch_end leaves (soft pruning zeroes
    filters then): an epoch_end that wrecks the output layer is never kept."""
    sampler, parts = toy

    class Wreck(Callback):
        def epoch_end(self, epoch, model):
            if epoch == 2:
                with torch.no_grad():
                    model[4].bias.fill_(0).add_(torch.tensor([100.0, 0, 0, 0]))

    history = fit(patch_net(), sampler.patches, *parts, epochs=2, lr=0.05, progress=False,
                  callbacks=[Wreck()])
    assert history.val_oa[1] == pytest.approx(float((parts[3] == 0).mean()))
    assert history.best_epoch == 1


def test_the_sampler_decides_the_batches(toy):
    sampler, (fit_i, fit_y, val_i, val_y) = toy
    batches = []

    def two_classes_only(generator, labels, batch_size):
        chosen = np.flatnonzero(labels < 2)
        for begin in range(0, len(chosen), batch_size):
            batches.append(chosen[begin:begin + batch_size])
            yield batches[-1]

    seen_labels = []

    def objective(model, x, y, index):
        seen_labels.extend(y.tolist())
        logits = model(x)
        return logits, {"ce": F.cross_entropy(logits, y)}

    fit(patch_net(), sampler.patches, fit_i, fit_y, val_i, val_y, epochs=1, lr=0.01,
        batch_size=40, progress=False, sampler=two_classes_only, objective=objective)
    assert set(seen_labels) == {0, 1}
    assert len(seen_labels) == (fit_y < 2).sum()


def test_transform_applies_to_training_batches_only(toy):
    sampler, parts = toy
    calls = []

    def mark(x, generator):
        calls.append(x.shape[0])
        return x

    history = fit(patch_net(), sampler.patches, *parts, epochs=1, lr=0.01, batch_size=100,
                  progress=False, transform=mark)
    assert sum(calls) == len(parts[0])  # every training batch, no validation batch
    assert len(history.val_oa) == 1


def test_random_dihedral_keeps_the_centre_and_the_values_of_each_patch():
    x = torch.randn(64, 5, 7, 7, generator=torch.Generator().manual_seed(0))
    y = random_dihedral(x, torch.Generator().manual_seed(1))
    assert torch.equal(y[:, :, 3, 3], x[:, :, 3, 3])
    assert torch.equal(y.flatten(2).sort(2).values, x.flatten(2).sort(2).values)
    assert not torch.equal(y, x)
    # Eight transforms in all; with 64 patches each appears.
    variants = {tuple(torch.flatten(t).tolist()) for t in y[:, 0]}
    assert len(variants) > 1
    z = random_dihedral(x, torch.Generator().manual_seed(1))
    assert torch.equal(y, z)  # seeded


def test_frozen_modules_stay_in_eval_and_unchanged_even_inside_the_model(toy):
    sampler, parts = toy
    teacher = patch_net(seed=1)
    student = patch_net(seed=2)
    before = copy.deepcopy(teacher.state_dict())

    class Distiller(nn.Module):
        def __init__(self):
            super().__init__()
            self.student, self.teacher = student, teacher

    modes = []

    def objective(model, x, y, index):
        modes.append(model.teacher.training or model.teacher[1].training)
        with torch.no_grad():
            target = F.softmax(model.teacher(x), 1)
        logits = model.student(x)
        return logits, {"ce": F.cross_entropy(logits, y),
                        "kd": F.kl_div(F.log_softmax(logits, 1), target, reduction="batchmean")}

    distiller = Distiller()
    fit(distiller, sampler.patches, *parts, epochs=2, lr=0.01, progress=False, objective=objective,
        frozen=[teacher], deployed=student)
    assert not any(modes)
    assert not teacher.training
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, before[name]), name  # weights and batch-norm statistics
    assert all(not p.requires_grad for p in teacher.parameters())


def test_several_modules_train_jointly_with_one_optimizer_factory(toy):
    sampler, parts = toy
    peers = nn.ModuleList([patch_net(seed=1), patch_net(seed=2)])
    before = [copy.deepcopy(p.state_dict()) for p in peers]

    def mutual(model, x, y, index):
        a, b = model[0](x), model[1](x)
        return a, {"ce_a": F.cross_entropy(a, y), "ce_b": F.cross_entropy(b, y)}

    groups = []

    def factory(model):
        optimizer = torch.optim.Adam([{"params": model[0].parameters(), "lr": 0.01},
                                      {"params": model[1].parameters(), "lr": 0.001}])
        groups.append(len(optimizer.param_groups))
        return optimizer

    history = fit(peers, sampler.patches, *parts, epochs=1, progress=False, objective=mutual,
                  optimizer=factory, deployed=peers[0])
    assert groups == [2]
    assert list(history.terms) == ["ce_a", "ce_b"]
    for peer, state in zip(peers, before):
        assert any(not torch.equal(v, state[k]) for k, v in peer.state_dict().items())


def test_fit_needs_a_learning_rate_or_an_optimizer(toy):
    sampler, parts = toy
    with pytest.raises(ValueError, match="needs lr .* or an optimizer factory"):
        fit(patch_net(), sampler.patches, *parts, epochs=1, progress=False)
    history = fit(patch_net(), sampler.patches, *parts, epochs=1, progress=False,
                  optimizer=adam(0.01))
    assert len(history.val_oa) == 1


# ------------------------------------------------------------ plateau stopping

class ScriptedAccuracy(nn.Module):
    """A deployed network whose validation accuracy follows ``curve``: at
    epoch e it labels the first ``round(curve[e - 1] * n)`` of the ``n``
    validation pixels right (its input is the pixel index)."""

    def __init__(self, curve, val_index, val_labels, n_classes=4):
        super().__init__()
        self.curve, self.epoch, self.n_classes = list(curve), 0, n_classes
        self.rank = {int(i): r for r, i in enumerate(val_index)}
        self.label = {int(i): int(y) for i, y in zip(val_index, val_labels)}

    def forward(self, x):
        right = round(self.curve[self.epoch - 1] * len(self.rank))
        answers = [self.label[i] if self.rank[i] < right else (self.label[i] + 1) % self.n_classes
                   for i in x[:, 0].long().tolist()]
        return F.one_hot(torch.tensor(answers), self.n_classes).float()


class CountEpochs(Callback):
    """Tells the scripted network the epoch, and keeps each epoch's weights."""

    def __init__(self, scripted):
        self.scripted, self.weights = scripted, []

    def epoch_end(self, epoch, model):
        self.scripted.epoch = epoch
        self.weights.append(copy.deepcopy(model.state_dict()))


def scripted_fit(toy, curve, epochs, **settings):
    sampler, (fit_i, fit_y, val_i, val_y) = toy
    # 20 validation pixels: accuracies in steps of 0.05 are exact.
    val_i, val_y = val_i[:20], val_y[:20]
    scripted = ScriptedAccuracy(curve, val_i, val_y)
    counter = CountEpochs(scripted)
    model = nn.Linear(1, 4)

    def view(index):
        return torch.as_tensor(np.asarray(index), dtype=torch.float32)[:, None]

    history = fit(model, view, fit_i, fit_y, val_i, val_y, epochs=epochs, lr=0.01, progress=False,
                  deployed=scripted, callbacks=[counter], **settings)
    return history, model, counter


def test_a_plateau_stops_training_at_the_epoch_the_rule_names(toy):
    # Best before the last 3 epochs is 0.70 (epoch 3); epochs 4-6 reach 0.75,
    # a gain of 0.05 < 0.10: stop after epoch 6 of at most 20.
    curve = [0.5, 0.6, 0.7, 0.7, 0.75, 0.7] + [0.95] * 14
    history, _, _ = scripted_fit(toy, curve, epochs=20, stop=Plateau(patience=3, min_gain=0.1, fraction=0.0))
    assert history.val_oa == pytest.approx(curve[:6])
    assert (history.stopped, history.converged) == ("plateau", True)
    assert history.val_gain == pytest.approx(0.05)
    assert history.max_epochs == 20 and history.best_epoch == 5
    assert (history.patience, history.min_gain, history.fraction) == (3, 0.1, 0.0)


def test_a_run_still_rising_at_its_maximum_is_not_converged(toy):
    curve = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    history, _, _ = scripted_fit(toy, curve, epochs=6, stop=Plateau(patience=2, min_gain=0.05, fraction=0.0))
    assert len(history.val_oa) == 6
    assert (history.stopped, history.converged) == ("max_epochs", False)
    assert history.val_gain == pytest.approx(0.2)


def test_a_plateau_reached_on_the_last_epoch_counts_as_converged(toy):
    history, _, _ = scripted_fit(toy, [0.5, 0.8, 0.8, 0.8], epochs=4,
                                 stop=Plateau(patience=2, min_gain=0.05, fraction=0.0))
    assert (len(history.val_oa), history.stopped, history.converged) == (4, "plateau", True)


def test_a_curve_at_100_percent_stops_at_once_and_keeps_that_epoch(toy):
    # No later epoch could be kept (the first best is): stop at epoch 3, not after patience.
    curve = [0.5, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    history, model, counter = scripted_fit(toy, curve, epochs=8,
                                           stop=Plateau(patience=3, min_gain=0.01, fraction=0.0))
    assert (len(history.val_oa), history.best_epoch, history.stopped, history.converged) == (3, 3, "plateau", True)
    assert all(torch.equal(value, counter.weights[2][name]) for name, value in model.state_dict().items())
    # Before the first epoch that may be kept, 100% is no reason to stop.
    staged, _, _ = scripted_fit(toy, [1.0, 1.0, 0.6, 0.7, 0.7, 0.7, 0.7], epochs=7, keep_from=3,
                                stop=Plateau(patience=2, min_gain=0.05, fraction=0.0))
    assert len(staged.val_oa) == 6 and staged.best_epoch == 4


def test_patience_counts_from_the_first_epoch_that_may_be_kept(toy):
    # Epochs 1-3 train part of a staged method: their flat scores are no plateau.
    curve = [0.2, 0.2, 0.2, 0.5, 0.6, 0.6, 0.6, 0.6]
    history, _, _ = scripted_fit(toy, curve, epochs=8, keep_from=4,
                                 stop=Plateau(patience=2, min_gain=0.05, fraction=0.0))
    assert len(history.val_oa) == 7 and history.stopped == "plateau"
    assert history.best_epoch == 5


def test_without_a_rule_every_epoch_runs(toy):
    history, _, _ = scripted_fit(toy, [0.5] * 6, epochs=6, stop=None)
    assert len(history.val_oa) == 6
    assert (history.stopped, history.converged, history.patience) == ("max_epochs", False, None)


def test_the_best_epochs_weights_are_kept_when_training_stops_early(toy):
    curve = [0.5, 0.9, 0.6, 0.6, 0.6, 0.6, 0.95]
    history, model, counter = scripted_fit(toy, curve, epochs=7, stop=Plateau(patience=3, min_gain=0.01, fraction=0.0))
    assert len(history.val_oa) == 5 and history.best_epoch == 2
    for name, value in model.state_dict().items():
        assert torch.equal(value, counter.weights[1][name]), name
        assert not torch.equal(value, counter.weights[-1][name]), name


def test_the_window_grows_with_the_epochs_run(toy):
    """A slow learner, flat for two epochs at 0.90 before it gains again:
    patience 2 alone stops it there; a window of half the epochs run waits
    for the next gain, and stops once half its epochs are flat."""
    curve = [0.50, 0.55, 0.60, 0.65, 0.70, 0.70, 0.75, 0.80, 0.85, 0.90, 0.90, 0.90] + [0.95] * 20
    rule = Plateau(patience=2, min_gain=0.01, fraction=0.5)
    assert [rule.window(n) for n in (1, 4, 5, 12)] == [2, 2, 3, 6]
    short, _, _ = scripted_fit(toy, curve, epochs=32, stop=Plateau(patience=2, min_gain=0.01, fraction=0.0))
    long, _, _ = scripted_fit(toy, curve, epochs=32, stop=rule)
    assert (len(short.val_oa), max(short.val_oa)) == (12, pytest.approx(0.90))
    # Epoch 26: its window (epochs 14-26) gained nothing on epoch 13's 0.95.
    assert (len(long.val_oa), long.best_epoch, long.stopped) == (26, 13, "plateau")


@pytest.mark.parametrize("settings", [{"patience": 0}, {"patience": 2.0}, {"min_gain": -0.1},
                                      {"min_gain": 1.5}, {"fraction": 1.0}, {"fraction": -0.5}])
def test_an_impossible_plateau_rule_is_a_clear_error(settings):
    with pytest.raises(ValueError, match="patience|min_gain|fraction"):
        Plateau(**settings)
