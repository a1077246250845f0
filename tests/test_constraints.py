"""Constraints: Keras's formulas, the torch axis mapping, the plan, and the step hooks."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from shrinkage import L2, MODES, GroupLasso, Plan, Regularizer, ShrinkageError, regularize
from shrinkage import constraints as C
from shrinkage.constraints import MaxNorm, MinMaxNorm, NonNeg, UnitNorm

EPS = 1e-7  # Keras's backend.epsilon()


# --- Keras's formulas written out in NumPy (keras/src/constraints/constraints.py) ---------


def np_max_norm(w, max_value, axis):
    norms = np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))
    desired = np.clip(norms, 0, max_value)
    return w * (desired / (EPS + norms))


def np_unit_norm(w, axis):
    return w / (EPS + np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True)))


def np_non_neg(w):
    return w * (w >= 0)


def np_min_max_norm(w, min_value, max_value, rate, axis):
    norms = np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))
    desired = rate * np.clip(norms, min_value, max_value) + (1 - rate) * norms
    return w * (desired / (EPS + norms))


# (constraint, NumPy projection, weight shape); numpy axes are written out explicitly.
CASES = [
    (MaxNorm(1.5), lambda w: np_max_norm(w, 1.5, (1,)), (5, 4)),  # Linear (out, in)
    (MaxNorm(1.5), lambda w: np_max_norm(w, 1.5, (1, 2, 3)), (6, 3, 3, 3)),  # Conv2d
    (MaxNorm(1.5), lambda w: np_max_norm(w, 1.5, (0,)), (7,)),  # a bias: the whole vector
    (MaxNorm(1.0, axis=0), lambda w: np_max_norm(w, 1.0, (0,)), (5, 4)),  # per input
    (MaxNorm(2.0, axis=[1, 2]), lambda w: np_max_norm(w, 2.0, (1, 2)), (4, 3, 5)),
    (MaxNorm(1.0, axis=-1), lambda w: np_max_norm(w, 1.0, (2,)), (4, 3, 5)),
    (UnitNorm(), lambda w: np_unit_norm(w, (1,)), (5, 4)),
    (UnitNorm(), lambda w: np_unit_norm(w, (1, 2)), (6, 2, 3)),  # Conv1d filters
    (UnitNorm(axis=0), lambda w: np_unit_norm(w, (0,)), (5, 4)),
    (NonNeg(), np_non_neg, (5, 4)),
    (NonNeg(), np_non_neg, (3, 2, 2, 2)),
    (MinMaxNorm(0.5, 1.0), lambda w: np_min_max_norm(w, 0.5, 1.0, 1.0, (1,)), (6, 4)),
    (MinMaxNorm(0.5, 1.0, rate=0.3), lambda w: np_min_max_norm(w, 0.5, 1.0, 0.3, (1,)), (6, 4)),
    (MinMaxNorm(1.0, 2.0, axis=0), lambda w: np_min_max_norm(w, 1.0, 2.0, 1.0, (0,)), (6, 4)),
]


@pytest.mark.parametrize(
    ("constraint", "expected", "shape"), CASES, ids=[f"{c!r}{s}" for c, _, s in CASES]
)
def test_projection_matches_keras_formula(constraint, expected, shape):
    rng = np.random.default_rng(0)
    # Mixed scales so some slices are inside the bound and some outside.
    w = rng.normal(size=shape) * rng.choice([0.05, 3.0], size=shape[:1]).reshape(
        (-1,) + (1,) * (len(shape) - 1)
    )
    got = constraint(torch.tensor(w, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, expected(w), rtol=1e-12, atol=1e-12)


def test_keras_dense_axis_maps_to_torch_layout():
    """Keras Dense kernel (in, out) with axis=0 is the torch Linear weight (out, in) default."""
    kernel = np.random.default_rng(1).normal(size=(6, 3)) * 2  # Keras (in=6, out=3)
    torch_weight = torch.tensor(kernel.T.copy())  # torch (out=3, in=6)
    got = MaxNorm(1.0)(torch_weight).numpy().T
    np.testing.assert_allclose(got, np_max_norm(kernel, 1.0, 0), rtol=1e-12)
    per_input = MaxNorm(1.0, axis=0)(torch_weight).numpy().T
    np.testing.assert_allclose(per_input, np_max_norm(kernel, 1.0, 1), rtol=1e-12)


def test_batch_dims_project_each_candidate_like_alone():
    stacked = torch.randn(3, 5, 4) * 2
    for constraint in (MaxNorm(1.0), UnitNorm(), MinMaxNorm(0.5, 1.0), NonNeg()):
        batched = constraint.project(stacked, batch_dims=1)
        alone = torch.stack([constraint(w) for w in stacked])
        torch.testing.assert_close(batched, alone, rtol=0, atol=0)


def test_zero_slice_stays_zero_and_violation():
    w = torch.zeros(2, 3)
    assert torch.equal(UnitNorm()(w), w)
    assert torch.equal(MaxNorm(1.0)(w), w)
    assert NonNeg().violation(torch.tensor([[1.0, -2.0]])) == 2.0
    assert NonNeg().violation(torch.tensor([[1.0, 2.0]])) == 0.0


# --- value objects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "constraint",
    [MaxNorm(3.0), MaxNorm(1.0, axis=[0, 2]), UnitNorm(axis=-1), NonNeg(), MinMaxNorm(0.1, 2.0)],
    ids=repr,
)
def test_json_round_trip(constraint):
    text = json.dumps(C.serialize(constraint))
    back = C.deserialize(json.loads(text))
    assert back == constraint and hash(back) == hash(constraint)
    w = torch.randn(4, 3, 2) * 3
    assert torch.equal(back(w), constraint(w))


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("max_norm", MaxNorm()),
        ("MaxNorm", MaxNorm()),
        ("maxnorm", MaxNorm()),
        ("unit_norm", UnitNorm()),
        ("NonNeg", NonNeg()),
        ("non_neg", NonNeg()),
        ("min_max_norm", MinMaxNorm()),
        (None, None),
        ({"class_name": "MaxNorm", "config": {"max_value": 4}}, MaxNorm(4.0)),
    ],
)
def test_registry(identifier, expected):
    assert C.get(identifier) == expected


BAD = [
    (
        lambda: MaxNorm(-1),
        "The 'max_value' parameter of MaxNorm must be a finite float in the "
        "range [0, inf). Got -1 instead.",
    ),
    (
        lambda: MaxNorm("a"),
        "The 'max_value' parameter of MaxNorm must be a finite float in the "
        "range [0, inf). Got 'a' instead.",
    ),
    (
        lambda: UnitNorm(axis="rows"),
        "The 'axis' parameter of UnitNorm must be None, an int or a "
        "non-empty list of ints. Got 'rows' instead.",
    ),
    (
        lambda: MaxNorm(axis=[]),
        "The 'axis' parameter of MaxNorm must be None, an int or a "
        "non-empty list of ints. Got [] instead.",
    ),
    (
        lambda: MinMaxNorm(2.0, 1.0),
        "The 'max_value' parameter of MinMaxNorm must be >= min_value (2). Got 1.0 instead.",
    ),
    (
        lambda: MinMaxNorm(rate=0),
        "The 'rate' parameter of MinMaxNorm must be a float in the range (0, 1]. Got 0 instead.",
    ),
    (
        lambda: C.get("maxx"),
        "Unknown constraint identifier: 'maxx'. Expected one of: max_norm, "
        "unit_norm, non_neg, min_max_norm.",
    ),
    (
        lambda: C.get(3),
        "Could not interpret constraint identifier: 3. A number alone is not a constraint: "
        "write sk.MaxNorm(3).",
    ),
    (
        lambda: C.get(MaxNorm),
        "Could not interpret constraint identifier: <class 'shrinkage.constraints.MaxNorm'>. "
        "That is the class MaxNorm, not a constraint: write sk.MaxNorm(3).",
    ),
    (
        lambda: C.deserialize({"config": {}}),
        "A serialized constraint must be a dict with "
        "'class_name' and 'config'. Got {'config': {}}.",
    ),
    (lambda: Plan(constraints=L2(0.1)), "Could not interpret constraint identifier: L2(l2=0.1)."),
]


@pytest.mark.parametrize(("build", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_messages(build, message):
    with pytest.raises(ShrinkageError) as info:
        build()
    assert str(info.value) == message


# --- the plan -----------------------------------------------------------------------------


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))


def test_plan_selects_constraints_like_penalties():
    model = _mlp()
    plan = Plan(L2(0.01), constraints={"*": MaxNorm(2.0), "4.weight": None, "0.bias": NonNeg()})
    chosen = {a.name: a.constraint for a in plan.resolve_constraints(model)}
    # Biases only when named; a None rule excludes; penalties are a separate table.
    assert chosen == {"0.weight": MaxNorm(2.0), "0.bias": NonNeg(), "2.weight": MaxNorm(2.0)}
    assert {a.name for a in plan.resolve(model) if a.penalty is not None} == {
        "0.weight",
        "2.weight",
        "4.weight",
    }
    table = plan.describe(model)
    assert "0.weight   (8, 4)  MaxNorm  max_value=2  constraint rule 0 ('*')" in table
    assert "0.bias     (8,)    NonNeg   -            constraint rule 2 ('0.bias')" in table


def test_plan_constraint_alone_and_by_type():
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.LazyLinear(2))
    assert [a.name for a in Plan(constraints=UnitNorm()).resolve_constraints(model[:1])] == [
        "0.weight"
    ]
    plan = Plan(constraints={nn.Conv1d: NonNeg()})
    assert [a.name for a in plan.resolve_constraints(model[:1])] == ["0.weight"]


def test_plan_constraint_selector_matching_nothing():
    with pytest.raises(ShrinkageError, match=r"Selector 'enc\.\*' in the plan matches no param"):
        Plan(constraints={"enc.*": MaxNorm()}).resolve_constraints(_mlp())


def test_plan_config_round_trip_with_constraints():
    plan = Plan(
        {"*": L2(0.01)},
        constraints={"*": MaxNorm(3.0, axis=[1]), nn.Linear: NonNeg(), "0.bias": None},
    )
    back = Plan.from_config(json.loads(json.dumps(plan.get_config())))
    assert back == plan
    assert back != Plan({"*": L2(0.01)})
    assert "constraints=3 rules" in repr(plan)
    assert Plan.from_config({"rules": []}).constraints == []  # configs saved before constraints


# --- applied after every step -------------------------------------------------------------


def _row_norms(w):
    return w.detach().reshape(w.shape[0], -1).norm(dim=1)


def _train(model, reg, optimizer, steps, check):
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x) * 5, y) + reg.loss()
        loss.backward()
        optimizer.step()
        check()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("mode", MODES)
def test_max_norm_holds_after_every_step(mode, optimizer):
    model = _mlp()
    penalty = GroupLasso(1e-3) if mode == "proximal" else L2(1e-3)
    reg = Regularizer(model, Plan(penalty, constraints=MaxNorm(0.4)), mode)
    make = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
    opt = make(model.parameters(), lr=0.5 if optimizer == "sgd" else 0.05)
    reg.attach(opt)
    largest = []

    def check():
        for layer in (model[0], model[2], model[4]):
            norms = _row_norms(layer.weight)
            assert float(norms.max()) <= 0.4 + 1e-6
            largest.append(float(norms.max()))

    _train(model, reg, opt, 6, check)
    # The bound was active: some row sits on it.
    assert max(largest) > 0.4 - 1e-4


@pytest.mark.parametrize("mode", MODES)
def test_unit_norm_and_non_neg_hold_after_every_step(mode):
    model = _mlp()
    penalty = GroupLasso(1e-3) if mode == "proximal" else L2(1e-3)
    plan = Plan(penalty, constraints={"0.weight": UnitNorm(), "2.*": NonNeg()})
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    reg = regularize(model, opt, plan, mode)

    def check():
        torch.testing.assert_close(_row_norms(model[0].weight), torch.ones(8), atol=1e-6, rtol=0)
        assert float(model[2].weight.detach().min()) >= 0
        assert float(model[2].bias.detach().min()) < 0  # "2.*" names the weight; the bias is a bias

    _train(model, reg, opt, 5, check)


def test_projection_after_step_equals_step_then_project():
    """The hook is exactly 'take the optimizer step, then w = project(w)'."""
    torch.manual_seed(3)
    a = _mlp()
    b = _mlp()
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    opt_a = torch.optim.Adam(a.parameters(), lr=0.1)
    opt_b = torch.optim.Adam(b.parameters(), lr=0.1)
    Regularizer(a, Plan(constraints=MaxNorm(0.5)), "gradient").attach(opt_a)
    for _ in range(4):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        with torch.no_grad():
            for i in (0, 2, 4):
                b[i].weight.copy_(C.max_norm(b[i].weight, 0.5))
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_penalty_and_constraint_on_the_same_weight():
    model = nn.Linear(4, 3)
    reg = Regularizer(model, Plan(L2(0.5), constraints=NonNeg()), "gradient")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg.attach(opt)
    before = model.weight.detach().clone()
    model(torch.randn(2, 4)).sum().backward()
    grad = model.weight.grad.clone()
    opt.step()
    expected = (before - 0.1 * (grad + 2 * 0.5 * before)).clamp_min(0)
    torch.testing.assert_close(model.weight.detach(), expected)


def test_constrain_now_and_frozen_parameters():
    model = _mlp()
    reg = Regularizer(model, Plan(constraints=MaxNorm(0.1)), "loss")
    opt = torch.optim.SGD(model[2:].parameters(), lr=0.1)  # layer 0 is frozen
    reg.attach(opt)
    first = model[0].weight.detach().clone()
    _train(model, reg, opt, 1, lambda: None)
    assert torch.equal(model[0].weight, first)  # not stepped, not projected
    assert float(_row_norms(model[2].weight).max()) <= 0.1 + 1e-6
    reg.constrain()
    assert float(_row_norms(model[0].weight).max()) <= 0.1 + 1e-6


def test_constraints_need_an_optimizer():
    model = _mlp()
    with pytest.raises(ShrinkageError) as info:
        regularize(model, None, Plan(constraints=MaxNorm()), "loss")
    assert str(info.value) == (
        "A plan with constraints needs an optimizer to attach to (the projections run after "
        "each step); got None. Or call reg.constrain() after each update."
    )
    other = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ShrinkageError, match="None of the regularized parameters"):
        Regularizer(model, Plan(constraints=MaxNorm()), "loss").attach(other)
