"""Training that stops, continues and lets candidates leave: the engine side of halving.

A stack trained to a rung, shrunk to its survivors and trained on must give every survivor
the trajectory it has in the stack that never shrank (atol 1e-6), and every candidate, the
dropped ones up to their rung, must equal the same network trained alone.
"""

import numpy as np
import pytest
import torch

from shrinkage import ElasticNet, Regularizer
from shrinkage.errors import ShrinkageError
from shrinkage.models import MLP, generators, init_mlp_
from shrinkage.search.engine import (
    StackedMLP,
    StackedModule,
    StackTrainer,
    TrainSettings,
    per_layer_strengths,
    train_stack,
)
from shrinkage.training import fit_model, make_loss, make_optimizer

N_ROWS, N_IN = 41, 4
SIZES = [N_IN, 6, 5, 1]
# Fold sizes 33, 26 and 17 with batches of 8: 5, 4 and 3 batches per epoch (idle steps).
FOLDS = [torch.arange(0, 33), torch.arange(15, 41), torch.arange(0, 41, 2)[:17]]
SEEDS = [11, 12, 13]
# (fold, per-layer (kind, strength)): a per-layer configuration on a fold.
CANDIDATES = [
    (0, (("l2", 0.01), ("l2", 0.0), ("l2", 0.03))),
    (1, (("l1", 0.003), ("l2", 0.02), ("l1", 0.0))),
    (2, (("elastic_net", 0.02), ("l2", 0.01), ("l2", 0.01))),
    (0, (("l1", 0.002), ("l1", 0.002), ("l2", 0.0))),
    (2, (("l2", 0.0), ("l2", 0.0), ("l2", 0.0))),
    (1, (("l2", 0.05), ("elastic_net", 0.01), ("l2", 0.001))),
]
# Every candidate of fold 2 leaves (its group and generator go), the others are reordered.
KEPT = [5, 3, 0]


def _data():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(N_ROWS, N_IN, generator=g)
    return X, (X[:, 0] + 0.3 * X[:, 1] > 0).float()


def _settings(mode="gradient", optimizer="adam", epochs=5):
    return TrainSettings(
        task="classification",
        n_classes=2,
        optimizer=optimizer,
        learning_rate=0.02,
        momentum=0.9,
        epochs=epochs,
        batch_size=8,
        mode=mode,
    )


def _stack(kind, candidates=CANDIDATES):
    seeds = [SEEDS[fold] for fold, _ in candidates]
    if kind == "mlp":
        return StackedMLP.from_seeds(seeds, SIZES, "tanh")
    return StackedModule(lambda: MLP(N_IN, (6, 5), 1, "tanh"), seeds)


def _trainer(kind, settings, candidates=CANDIDATES):
    X, y = _data()
    strengths = [per_layer_strengths(layers) for _, layers in candidates]
    return StackTrainer(
        _stack(kind, candidates),
        X,
        y,
        [FOLDS[fold] for fold, _ in candidates],
        [SEEDS[fold] for fold, _ in candidates],
        torch.tensor([a for a, _ in strengths]),
        torch.tensor([b for _, b in strengths]),
        settings,
    )


def _alone(settings, fold, layers, epochs):
    """The reference: the same network trained alone by fit_model, for ``epochs``."""
    X, y = _data()
    init, shuffle = generators(SEEDS[fold])
    model = init_mlp_(MLP(N_IN, (6, 5), 1, "tanh"), init)
    l1, l2 = per_layer_strengths(layers)
    plan = {f"layers.{i}.weight": ElasticNet(a, b) for i, (a, b) in enumerate(zip(l1, l2))}
    opt = make_optimizer(
        settings.optimizer, model.parameters(), settings.learning_rate, settings.momentum
    )
    fit_model(
        model,
        X[FOLDS[fold]],
        y[FOLDS[fold]],
        loss_fn=make_loss(settings.task, settings.n_classes),
        regularizer=Regularizer(model, plan, settings.mode),
        optimizer=opt,
        epochs=epochs,
        batch_size=settings.batch_size,
        shuffle_generator=shuffle,
    )
    return model


MODES = ["gradient", "loss", "decoupled", "proximal"]


@pytest.mark.parametrize("kind", ["mlp", "module"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("mode", MODES)
def test_dropping_candidates_changes_no_survivor_trajectory(mode, optimizer, kind):
    settings = _settings(mode, optimizer)
    full = _trainer(kind, settings)
    halved = _trainer(kind, settings)
    full.run(2)
    halved.run(2)
    halved.keep(KEPT)
    for epoch in range(3, 6):
        full.run(1)
        halved.run(1)
        for position, k in enumerate(KEPT):
            ours, theirs = halved.state(position), full.state(k)
            assert ours["epoch"].item() == theirs["epoch"].item() == epoch
            assert torch.equal(ours["generator"], theirs["generator"])
            for name, tensor in theirs.items():
                torch.testing.assert_close(
                    ours[name].double(), tensor.double(), atol=1e-6, rtol=0, msg=f"{k} {name}"
                )


@pytest.mark.parametrize("kind", ["mlp", "module"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("mode", MODES)
def test_every_candidate_equals_itself_alone_up_to_where_it_left(mode, optimizer, kind):
    settings = _settings(mode, optimizer)
    trainer = _trainer(kind, settings)
    trainer.run(2)
    dropped = {k: trainer.stack.state(k) for k in range(len(CANDIDATES)) if k not in KEPT}
    trainer.keep(KEPT)
    trainer.run(3)
    for k, state in dropped.items():
        alone = _alone(settings, *CANDIDATES[k], epochs=2)
        for name, tensor in alone.state_dict().items():
            torch.testing.assert_close(state[name], tensor, atol=1e-5, rtol=0, msg=name)
    for position, k in enumerate(KEPT):
        alone = _alone(settings, *CANDIDATES[k], epochs=5)
        for name, tensor in alone.state_dict().items():
            got = trainer.stack.state(position)[name]
            torch.testing.assert_close(got, tensor, atol=1e-5, rtol=0, msg=name)


def test_keep_builds_smaller_buffers_for_parameters_gradients_optimizer_and_batches():
    trainer = _trainer("mlp", _settings())
    trainer.run(1)
    n_params = trainer.stack.n_params
    trainer.keep(KEPT)
    stack, opt = trainer.stack, trainer.optimizer
    assert stack.k == len(KEPT) == trainer.k
    assert stack.flat.numel() == stack.flat_grad.numel() == len(KEPT) * n_params
    assert opt.m.numel() == opt.v.numel() == len(KEPT) * n_params
    assert len(opt.steps) == len(KEPT)
    assert all(w.shape[0] == len(KEPT) for w in stack.W + stack.dW)
    assert trainer.penalty.l1_matrix.shape == (len(KEPT), 3)
    assert len(trainer.batcher.gens) == 2  # fold 2 left entirely
    epoch = trainer.batcher.epoch()
    assert epoch.index.shape[:2] == (5, len(KEPT))  # folds 0 and 1: 5 and 4 batches


def test_sgd_momentum_buffer_leaves_with_its_candidate():
    trainer = _trainer("mlp", _settings(optimizer="sgd"))
    trainer.run(1)
    before = trainer.optimizer.state(3)
    trainer.keep([3])
    after = trainer.optimizer.state(0)
    assert trainer.optimizer.buf.numel() == trainer.stack.n_params
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), name


def test_run_in_pieces_equals_one_run():
    settings = _settings(epochs=5)
    whole = _trainer("mlp", settings)
    whole.run(5)
    pieces = _trainer("mlp", settings)
    for epochs in (2, 0, 1, 2):
        pieces.run(epochs)
    assert pieces.epoch == whole.epoch == 5
    assert torch.equal(pieces.stack.flat, whole.stack.flat)
    assert torch.equal(pieces.optimizer.m, whole.optimizer.m)


def test_train_stack_is_one_run_of_a_trainer():
    settings = _settings(epochs=3)
    trainer = _trainer("mlp", settings)
    trainer.run(3)
    X, y = _data()
    stack = _stack("mlp")
    strengths = [per_layer_strengths(layers) for _, layers in CANDIDATES]
    optimizer = train_stack(
        stack,
        X,
        y,
        [FOLDS[fold] for fold, _ in CANDIDATES],
        [SEEDS[fold] for fold, _ in CANDIDATES],
        torch.tensor([a for a, _ in strengths]),
        torch.tensor([b for _, b in strengths]),
        settings,
    )
    assert torch.equal(stack.flat, trainer.stack.flat)
    assert optimizer.steps.tolist() == trainer.optimizer.steps.tolist()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_exported_states_continue_in_another_stack(optimizer):
    """What a chunked or resumed search does: survivors from several stacks meet in a new one."""
    settings = _settings(optimizer=optimizer)
    full = _trainer("mlp", settings)
    full.run(5)
    first = _trainer("mlp", settings, CANDIDATES[:3])
    second = _trainer("mlp", settings, CANDIDATES[3:])
    first.run(2)
    second.run(2)
    moved = [first.state(0), second.state(2), first.state(1)]  # candidates 0, 5, 1
    merged = _trainer("mlp", settings, [CANDIDATES[k] for k in (0, 5, 1)])
    for position, state in enumerate(moved):
        merged.load_state(position, {n: t.numpy() for n, t in state.items()})
    assert merged.epoch == 2
    merged.run(3)
    for position, k in enumerate((0, 5, 1)):
        for name, tensor in full.state(k).items():
            torch.testing.assert_close(
                merged.state(position)[name].double(), tensor.double(), atol=1e-6, rtol=0
            )


def test_multiclass_survivors_after_keep():
    X = torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
    settings = TrainSettings(task="classification", n_classes=3, epochs=4, batch_size=7)
    rows = torch.arange(30)

    def trainer():
        stack = StackedMLP.from_seeds([1, 2, 3], [3, 5, 3])
        l2 = torch.tensor([[0.0, 0.1], [0.01, 0.0], [0.1, 0.1]])
        return StackTrainer(stack, X, y, [rows] * 3, [1, 2, 3], torch.zeros(3, 2), l2, settings)

    full, halved = trainer(), trainer()
    full.run(4)
    halved.run(1)
    halved.keep([2, 0])
    halved.run(3)
    for position, k in enumerate([2, 0]):
        torch.testing.assert_close(
            halved.stack.state(position)["layers.1.weight"],
            full.stack.state(k)["layers.1.weight"],
            atol=1e-6,
            rtol=0,
        )


BAD_KEEPS = [
    ([], "A stack must keep at least one candidate; got none."),
    ([0, 0], "The candidates to keep must be distinct positions in [0, 6). Got [0, 0] instead."),
    ([6], "The candidates to keep must be distinct positions in [0, 6). Got [6] instead."),
]


@pytest.mark.parametrize("index, message", BAD_KEEPS)
def test_bad_keep_raises_one_line(index, message):
    trainer = _trainer("mlp", _settings())
    with pytest.raises(ShrinkageError) as info:
        trainer.keep(np.asarray(index, dtype=np.int64))
    assert str(info.value) == message
    assert trainer.k == len(CANDIDATES)  # nothing half done


def test_states_from_different_epochs_do_not_mix():
    settings = _settings()
    a, b = _trainer("mlp", settings, CANDIDATES[:1]), _trainer("mlp", settings, CANDIDATES[:1])
    a.run(1)
    b.run(2)
    merged = _trainer("mlp", settings, CANDIDATES[:1] * 2)
    merged.load_state(0, a.state(0))
    with pytest.raises(ShrinkageError, match="same epoch; got 2 and 1"):
        merged.load_state(1, b.state(0))
