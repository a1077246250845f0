"""The batched engine equals K single models: same init, same minibatches, same result."""

import numpy as np
import pytest
import torch
from torch import nn

from shrinkage import L1, L2, ElasticNet, Regularizer
from shrinkage.errors import ShrinkageError
from shrinkage.functional import penalties as F
from shrinkage.models import MLP, generators, init_mlp_, placement_plan
from shrinkage.search.engine import (
    StackedMLP,
    StackedModule,
    StackedOptimizer,
    StackPenalty,
    TrainSettings,
    check_elementwise_optimizer,
    estimate_bytes,
    layer_strengths,
    predict_stack,
    train_stack,
)
from shrinkage.training import fit_model, make_loss, make_optimizer

N_ROWS, N_IN = 41, 4
SIZES = [N_IN, 6, 5, 1]


def _data(task="binary"):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(N_ROWS, N_IN, generator=g)
    if task == "binary":
        y = (X[:, 0] + 0.3 * X[:, 1] > 0).float()
    elif task == "multiclass":
        y = (X[:, 0] > 0).long() + (X[:, 1] > 0.5).long()
    else:
        y = 2 * X[:, 0] - X[:, 2] + 0.1
    return X, y


# Fold sizes 33, 26 and 17 with batches of 8: 5, 4 and 3 batches per epoch, so some
# candidates sit out the last steps of every epoch (the idle path is exercised).
FOLDS = [torch.arange(0, 33), torch.arange(15, 41), torch.arange(0, 41, 2)[:17]]

# (fold, seed, kind, strength, placement)
CANDIDATES = [
    (0, 11, "l2", 0.01, "all"),
    (1, 12, "l1", 0.003, "hidden"),
    (2, 13, "elastic_net", 0.02, "output"),
    (0, 11, "l1", 0.002, "all"),
    (2, 13, "l2", 0.0, "all"),
]


def _penalty(kind, strength, ratio=0.5):
    return {
        "l2": L2(strength),
        "l1": L1(strength),
        "elastic_net": ElasticNet(ratio * strength, (1 - ratio) * strength),
    }[kind]


def _alone(X, y, settings, fold, seed, kind, strength, placement, sizes=SIZES, act="tanh"):
    """The reference: fit_model on one MLP, initialized and shuffled from the seed."""
    init, shuffle = generators(seed)
    model = init_mlp_(MLP(sizes[0], sizes[1:-1], sizes[-1], act), init)
    plan = placement_plan(len(sizes) - 1, _penalty(kind, strength), placement)
    reg = Regularizer(model, plan, settings.mode)
    opt = make_optimizer(
        settings.optimizer, model.parameters(), settings.learning_rate, settings.momentum
    )
    fit_model(
        model,
        X[FOLDS[fold]],
        y[FOLDS[fold]],
        loss_fn=make_loss(settings.task, settings.n_classes),
        regularizer=reg,
        optimizer=opt,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        shuffle_generator=shuffle,
    )
    return model


def _strength_matrices(candidates, n_layers):
    pairs = [layer_strengths(c[2], c[3], n_layers, c[4]) for c in candidates]
    return torch.tensor([a for a, _ in pairs]), torch.tensor([b for _, b in pairs])


def _train(stack, X, y, settings, candidates=CANDIDATES):
    l1, l2 = _strength_matrices(candidates, stack.n_layers)
    train_stack(
        stack,
        X,
        y,
        [FOLDS[c[0]] for c in candidates],
        [c[1] for c in candidates],
        l1,
        l2,
        settings,
    )
    return stack


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("mode", ["gradient", "proximal", "loss", "decoupled"])
def test_candidate_in_stack_equals_candidate_alone(optimizer, mode):
    X, y = _data()
    settings = TrainSettings(
        task="classification",
        n_classes=2,
        optimizer=optimizer,
        learning_rate=0.02,
        epochs=4,
        batch_size=8,
        mode=mode,
    )
    stack = _train(StackedMLP.from_seeds([c[1] for c in CANDIDATES], SIZES, "tanh"), X, y, settings)
    for k, candidate in enumerate(CANDIDATES):
        alone = _alone(X, y, settings, *candidate)
        for name, tensor in alone.state_dict().items():
            torch.testing.assert_close(
                stack.state(k)[name], tensor, atol=1e-5, rtol=0, msg=f"{candidate} {name}"
            )


@pytest.mark.parametrize(
    "task, n_classes, sizes",
    [("regression", None, [N_IN, 6, 1]), ("classification", 3, [N_IN, 6, 5, 3])],
)
def test_stack_equals_alone_for_regression_and_multiclass(task, n_classes, sizes):
    X, y = _data("regression" if task == "regression" else "multiclass")
    settings = TrainSettings(
        task=task, n_classes=n_classes, learning_rate=0.01, epochs=3, batch_size=8
    )
    candidates = CANDIDATES[:3]
    stack = StackedMLP.from_seeds([c[1] for c in candidates], sizes, "relu")
    _train(stack, X, y, settings, candidates)
    for k, candidate in enumerate(candidates):
        alone = _alone(X, y, settings, *candidate, sizes=sizes, act="relu")
        for name, tensor in alone.state_dict().items():
            torch.testing.assert_close(stack.state(k)[name], tensor, atol=1e-5, rtol=0)


@pytest.mark.parametrize("mode", ["gradient", "loss", "proximal"])
def test_torch_func_path_equals_baddbmm_path(mode):
    X, y = _data("multiclass")
    sizes = [N_IN, 6, 5, 3]
    settings = TrainSettings(
        task="classification", n_classes=3, learning_rate=0.02, epochs=3, batch_size=8, mode=mode
    )
    seeds = [c[1] for c in CANDIDATES]
    fast = StackedMLP.from_seeds(seeds, sizes, "relu")
    general = StackedModule(lambda: MLP(N_IN, (6, 5), 3, "relu"), seeds)
    assert general.names == fast.names and general.penalized == fast.penalized
    assert torch.equal(general.flat, fast.flat)  # same initialization
    _train(fast, X, y, settings)
    _train(general, X, y, settings)
    torch.testing.assert_close(general.flat, fast.flat, atol=1e-5, rtol=0)


class _TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 3, kernel_size=2)
        self.head = nn.Linear(3 * (N_IN - 1), 1)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x.unsqueeze(1))).flatten(1))


def test_factory_module_in_stack_equals_same_module_alone():
    X, y = _data()
    settings = TrainSettings(task="classification", n_classes=2, learning_rate=0.05, epochs=3)
    seeds = [5, 6]
    stack = StackedModule(_TinyCNN, seeds)
    assert [stack.names[i] for i in stack.penalized] == ["conv.weight", "head.weight"]
    l1 = torch.tensor([[0.0, 0.0], [0.01, 0.0]])
    l2 = torch.tensor([[0.01, 0.01], [0.0, 0.02]])
    train_stack(stack, X, y, [FOLDS[0], FOLDS[1]], seeds, l1, l2, settings)
    for k, (fold, seed) in enumerate(zip((0, 1), seeds)):
        torch.manual_seed(seed)
        model = _TinyCNN()
        plan = {"conv.weight": ElasticNet(*l1[k, :1].tolist(), *l2[k, :1].tolist())}
        plan["head.weight"] = ElasticNet(float(l1[k, 1]), float(l2[k, 1]))
        opt = make_optimizer("adam", model.parameters(), 0.05)
        fit_model(
            model,
            X[FOLDS[fold]],
            y[FOLDS[fold]],
            loss_fn=make_loss("classification", 2),
            regularizer=Regularizer(model, plan),
            optimizer=opt,
            epochs=3,
            batch_size=32,
            shuffle_generator=generators(seed)[1],
        )
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(stack.state(k)[name], tensor, atol=1e-5, rtol=0)


@pytest.mark.parametrize("poison", [float("nan"), 1e30])
def test_rows_outside_a_candidate_fold_are_never_read(poison):
    X, y = _data()
    settings = TrainSettings(task="classification", n_classes=2, epochs=3, batch_size=8)
    seeds = [c[1] for c in CANDIDATES]
    clean = _train(StackedMLP.from_seeds(seeds, SIZES, "tanh"), X, y, settings)
    # Rows 33..40 belong to no training fold of candidates 0, 3 (fold 0): poison them.
    X_bad, y_bad = X.clone(), y.clone()
    X_bad[33:] = poison
    y_bad[33:] = poison
    dirty = _train(StackedMLP.from_seeds(seeds, SIZES, "tanh"), X_bad, y_bad, settings)
    for k in (0, 3):
        for name, tensor in clean.state(k).items():
            assert torch.equal(dirty.state(k)[name], tensor), name


def test_idle_candidate_keeps_weights_moments_and_step_count():
    stack = StackedMLP.from_seeds([1, 2, 3], [3, 4, 1])
    settings = TrainSettings(task="regression", learning_rate=0.1)
    opt = StackedOptimizer(stack, settings)
    stack.flat_grad.normal_()
    opt.step()
    before = stack.state(1)
    m1 = [r.clone() for r in opt._rows[2][1]]
    stack.flat_grad.normal_()
    opt.step(np.array([True, False, True]))
    assert opt.steps.tolist() == [2, 1, 2]
    for name, tensor in stack.state(1).items():
        assert torch.equal(tensor, before[name])
    for a, b in zip(opt._rows[2][1], m1):
        assert torch.equal(a, b)
    assert not torch.equal(stack.state(0)["layers.0.weight"], before["layers.0.weight"])


def test_stacked_adam_with_unequal_steps_equals_torch_adam():
    torch.manual_seed(0)
    stack = StackedMLP.from_seeds([1, 2], [3, 2])
    settings = TrainSettings(task="regression", learning_rate=0.05)
    opt = StackedOptimizer(stack, settings)
    singles = [stack.module(k) for k in range(2)]
    ref = [torch.optim.Adam(m.parameters(), lr=0.05) for m in singles]
    masks = [None, np.array([True, False]), None, np.array([False, True]), None]
    for mask in masks:
        grads = torch.randn_like(stack.flat_grad)
        stack.flat_grad.copy_(grads)
        for k, (model, o) in enumerate(zip(singles, ref)):
            if mask is not None and not mask[k]:
                continue
            for name, p in model.named_parameters():
                p.grad = stack.grads[stack.names.index(name)][k].clone()
            o.step()
        opt.step(mask)
    for k, model in enumerate(singles):
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(stack.state(k)[name], tensor, atol=1e-6, rtol=0)


def test_in_place_penalty_updates_match_the_functional_formulas():
    stack = StackedMLP.from_seeds([1, 2, 3], [3, 4, 2])
    l1 = torch.tensor([[0.1, 0.0], [0.0, 0.2], [0.05, 0.05]])
    l2 = torch.tensor([[0.0, 0.3], [0.1, 0.0], [0.02, 0.02]])
    penalty = StackPenalty(stack, l1, l2)
    weights = [w.clone() for w in stack.weights()]
    penalty.apply("add_grad", 0.0)
    for i, (w, g) in enumerate(zip(weights, stack.weight_grads())):
        expected = F.elastic_net_grad(w, l1[:, i], l2[:, i], batch_dims=1)
        torch.testing.assert_close(g, expected)
    penalty.apply("prox", 0.5)
    for i, (w, now) in enumerate(zip(weights, stack.weights())):
        expected = F.elastic_net_prox(w, l1[:, i], l2[:, i], 0.5, batch_dims=1)
        torch.testing.assert_close(now, expected)
    values = penalty.values()
    expected = sum(
        F.elastic_net(w, l1[:, i], l2[:, i], batch_dims=1) for i, w in enumerate(stack.weights())
    )
    torch.testing.assert_close(values, expected)


def test_same_seed_gives_same_initialization_and_predictions_per_candidate():
    stack = StackedMLP.from_seeds([7, 8, 7], SIZES)
    assert torch.equal(stack.W[0][0], stack.W[0][2])
    assert not torch.equal(stack.W[0][0], stack.W[0][1])
    reference = init_mlp_(MLP(N_IN, (6, 5), 1), generators(8)[0])
    X, _ = _data()
    index = torch.arange(N_ROWS).repeat(3, 1)
    out = predict_stack(stack, X, index, block=7)
    torch.testing.assert_close(out[1], reference(X).detach())


LAYER_STRENGTHS = [
    ("l2", 0.1, "all", 0.5, [0.0, 0.0, 0.0], [0.1, 0.1, 0.1]),
    ("l1", 0.1, "hidden", 0.5, [0.1, 0.1, 0.0], [0.0, 0.0, 0.0]),
    ("elastic_net", 0.2, "output", 0.25, [0.0, 0.0, 0.05], [0.0, 0.0, 0.15]),
    ("l2", 0.3, (0, 2), 0.5, [0.0, 0.0, 0.0], [0.3, 0.0, 0.3]),
]


@pytest.mark.parametrize("kind, strength, placement, ratio, l1, l2", LAYER_STRENGTHS)
def test_layer_strengths(kind, strength, placement, ratio, l1, l2):
    got = layer_strengths(kind, strength, 3, placement, ratio)
    np.testing.assert_allclose(got[0], l1)
    np.testing.assert_allclose(got[1], l2)


BAD_INPUTS = [
    (
        lambda: layer_strengths("l3", 0.1, 2),
        "The 'kind' parameter must be one of 'l2', 'l1', 'elastic_net'. Got 'l3' instead.",
    ),
    (
        lambda: layer_strengths("l2", -1, 2),
        "The 'strength' parameter must be a finite float in the range [0, inf). Got -1 instead.",
    ),
    (
        lambda: layer_strengths("elastic_net", 0.1, 2, l1_ratio=2),
        "The 'l1_ratio' parameter must be a float in the range [0, 1]. Got 2 instead.",
    ),
    (
        lambda: TrainSettings(task="regression", learning_rate=0),
        "The 'learning_rate' parameter must be a float in the range (0, inf). Got 0 instead.",
    ),
    (
        lambda: TrainSettings(task="regression", mode="weird"),
        "The 'mode' parameter must be one of 'loss', 'gradient', 'decoupled', 'proximal'. "
        "Got 'weird' instead.",
    ),
    (
        lambda: TrainSettings(task="regression", epochs=0),
        "The 'epochs' parameter must be an integer >= 1. Got 0 instead.",
    ),
    (
        lambda: check_elementwise_optimizer("lbfgs"),
        "The 'optimizer' parameter must be one of 'adam', 'sgd' (elementwise rules keep "
        "stacked candidates independent). Got 'lbfgs' instead.",
    ),
    (
        lambda: check_elementwise_optimizer(torch.optim.LBFGS),
        "The batched search needs an elementwise optimizer ('adam' or 'sgd'); LBFGS couples "
        "the stacked candidates. Got <class 'torch.optim.lbfgs.LBFGS'> instead.",
    ),
    (
        lambda: StackedModule(lambda: nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), [0]),
        "The batched engine cannot stack modules with buffers (running statistics are updated "
        "in place); got buffers ['1.running_mean', '1.running_var', '1.num_batches_tracked']. "
        "Use BatchNorm(track_running_stats=False), GroupNorm or LayerNorm.",
    ),
    (
        lambda: StackPenalty(StackedMLP(2, [2, 1]), torch.zeros(2, 2), torch.zeros(2, 1)),
        "The 'l1' strengths must have shape (2, 1) (candidates, layers). Got (2, 2) instead.",
    ),
]


@pytest.mark.parametrize("call, message", BAD_INPUTS)
def test_bad_inputs_raise_one_line(call, message):
    with pytest.raises(ShrinkageError) as info:
        call()
    assert str(info.value) == message


def test_elementwise_optimizers_are_accepted_by_name_class_and_instance():
    param = [nn.Parameter(torch.zeros(1))]
    assert check_elementwise_optimizer("adam") == "adam"
    assert check_elementwise_optimizer(torch.optim.SGD) == "sgd"
    assert check_elementwise_optimizer(torch.optim.Adam(param)) == "adam"


def test_estimate_bytes_grows_linearly_with_candidates():
    one = estimate_bytes(1000, [10, 20, 1], 1, 32, 500)
    assert one > 4 * 6 * 1000
    assert estimate_bytes(1000, [10, 20, 1], 7, 32, 500) == 7 * one
