"""Property-based tests of the penalties: any strength either works or fails in one line.

Random strengths (negative, NaN, inf, huge, tiny, bools, strings, None, containers, NumPy
and exact numbers) go into every penalty constructor and conversion function; random
weights (with zero rows and columns) and valid strengths go through ``value``, ``grad``
and ``prox``; random identifiers and configs go through ``get`` / ``deserialize``. Every
case must either give a correct, NaN-free result or raise ``ShrinkageError`` with its
documented one-line message; never another exception type.

Example counts are fixed with ``@settings(max_examples=...)``, and ``derandomize=True`` makes
CI run the same examples every time; inputs that long random runs (3,000 to 5,000 examples
per property) found breaking the penalties are pinned with ``@example``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shrinkage import penalties as P
from shrinkage.errors import ShrinkageError

STRENGTH_EXAMPLES = 300
MATH_EXAMPLES = 200
CONFIG_EXAMPLES = 300
CONVERSION_EXAMPLES = 200

# (constructor, the strength argument, other arguments)
STRENGTH_ARGS = [
    (P.L1, "l1", {}),
    (P.L2, "l2", {}),
    (P.ElasticNet, "l1", {"l2": 0.1}),
    (P.ElasticNet, "l2", {"l1": 0.1}),
    (P.ExpAbs, "strength", {}),
    (P.GroupLasso, "strength", {"groups": "columns"}),
    (P.L2SP, "strength", {}),
    (P.Orthogonal, "factor", {"mode": "rows"}),
]

_ANYTHING = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1e-300),  # subnormal and tiny strengths are valid
    st.integers(-(10**400), 10**400),  # beyond float's range
    st.booleans(),
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["0.1", " 2 ", "nan", "inf", "-1", "1e999", "1_000", "", "0x1"]),
    st.fractions(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.complex_numbers(max_magnitude=10),
    st.lists(st.floats(0, 1), max_size=2),
    st.floats(-10, 10).map(np.float32),
    st.integers(-10, 10).map(np.int64),
    st.just(object()),
)


MAX_STRENGTH = 1e30


def expected_strength(value: object) -> float | None:
    """What the contract says: a number in [0, 1e30] (not a bool, not a string), else refused."""
    if isinstance(value, bool | np.bool_ | str | bytes):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 <= number <= MAX_STRENGTH else None


def strength_message(name: str, value: object) -> str:
    """The documented message for a refused strength."""
    try:
        finite = not isinstance(value, str | bytes) and math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        finite = False
    if finite and not isinstance(value, bool | np.bool_) and float(value) > 0:
        return (
            f"The '{name}' parameter must be at most 1e+30 (larger strengths overflow float32 "
            f"penalty math). Got {value!r} instead."
        )
    return (
        f"The '{name}' parameter must be a finite float in the range [0, inf). "
        f"Got {value!r} instead."
    )


@example(case=0, value=10**400)  # float() overflows: once an OverflowError escaped
@example(case=1, value=Fraction(10**400, 3))
@example(case=2, value=Decimal("sNaN"))
@example(case=3, value="0.5")  # a numeric string is refused, as Keras and scikit-learn do
@example(case=0, value=1e308)  # once L1(1e308) gave a NaN penalty at w == 0
@example(case=1, value=1.7014117838986683e38)  # once: 2 * l2 overflowed, NaN gradient
@example(case=1, value=1e30)
@settings(max_examples=STRENGTH_EXAMPLES, deadline=None, derandomize=True)
@given(case=st.integers(0, len(STRENGTH_ARGS) - 1), value=_ANYTHING)
def test_penalty_strength_is_valid_or_refused_in_one_line(case, value):
    cls, name, others = STRENGTH_ARGS[case]
    expected = expected_strength(value)
    event("valid" if expected is not None else "refused")
    if expected is None:
        with pytest.raises(ShrinkageError) as caught:
            cls(**{name: value}, **others)
        assert str(caught.value) == strength_message(name, value)
        assert len(str(caught.value).splitlines()) == 1
        return
    penalty = cls(**{name: value}, **others)
    assert getattr(penalty, name) == expected
    assert isinstance(getattr(penalty, name), float)
    # a valid penalty round-trips through its plain-JSON config
    assert P.deserialize(P.serialize(penalty)) == penalty


# (function, strength argument, count argument or None)
CONVERSIONS = [
    (P.from_course, "lam", "m"),
    (P.from_sklearn_alpha, "alpha", "n_samples"),
    (P.from_torch_weight_decay, "weight_decay", None),
]


def expected_count(value: object) -> float | None:
    """A count: a finite real number >= 1, not a bool; a NumPy scalar as the number it holds."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number >= 1 else None


@example(case=0, strength=0.7, count=float("nan"))  # NaN is not < 1: once it got through
@example(case=1, strength=1.0, count=float("inf"))  # inf rows made L2(0) silently
@example(case=0, strength=0.7, count=True)
@example(case=1, strength=0.0, count=10**400)  # once: OverflowError from lam / (2 * m)
@example(case=0, strength=1, count=8.98846567431158e307)  # 2 * m overflows; lam / 2 / m not
@settings(max_examples=CONVERSION_EXAMPLES, deadline=None, derandomize=True)
@given(case=st.integers(0, 2), strength=_ANYTHING, count=st.one_of(_ANYTHING, st.integers(1, 500)))
def test_conversions_are_valid_or_refused_in_one_line(case, strength, count):
    function, strength_name, count_name = CONVERSIONS[case]
    args = (strength,) if count_name is None else (strength, count)
    lam = expected_strength(strength)
    m = 1.0 if count_name is None else expected_count(count)
    event("refused" if lam is None or m is None else "valid")
    if lam is None or m is None:
        with pytest.raises(ShrinkageError) as caught:
            function(*args)
        message = str(caught.value)
        assert len(message.splitlines()) == 1
        if lam is None:
            assert message == strength_message(strength_name, strength)
        else:
            assert message == (
                f"The '{count_name}' parameter must be a count >= 1. Got {count!r} instead."
            )
        return
    penalty = function(*args)
    expected = lam / 2 if count_name is None else lam / 2 / m
    assert isinstance(penalty, P.L2)
    assert penalty.l2 == pytest.approx(expected, rel=1e-12, abs=0)
    assert math.isfinite(penalty.l2)


# --- the math on random weights --------------------------------------------------------

_WEIGHTS = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=4),
    elements=st.one_of(st.just(0.0), st.floats(-10, 10, width=32)),
)
_VALID = st.one_of(st.just(0.0), st.floats(1e-30, 1e3), st.floats(0, MAX_STRENGTH))


def numpy_value(penalty: P.Penalty, w: np.ndarray, ref: np.ndarray) -> float:
    """Each penalty's formula, written out in float64."""
    w = w.astype(np.float64)
    if isinstance(penalty, P.ElasticNet):
        return penalty.l1 * np.abs(w).sum() + penalty.l2 * (w**2).sum()
    if isinstance(penalty, P.L1):
        return penalty.l1 * np.abs(w).sum()
    if isinstance(penalty, P.L2):
        return penalty.l2 * (w**2).sum()
    if isinstance(penalty, P.ExpAbs):
        return penalty.strength * (np.exp(np.abs(w)) - 1).sum()
    if isinstance(penalty, P.GroupLasso):
        axis = 1 if penalty.groups == "rows" else 0
        size = w.shape[axis]
        return penalty.strength * math.sqrt(size) * np.sqrt((w**2).sum(axis=axis)).sum()
    if isinstance(penalty, P.L2SP):
        return penalty.strength * ((w - ref) ** 2).sum()
    if isinstance(penalty, P.Orthogonal):
        matrix = w if penalty.mode == "rows" else w.T
        n = matrix.shape[0]
        if n < 2:
            return 0.0
        norms = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        unit = matrix / norms
        product = np.abs(unit @ unit.T)
        off = product[~np.eye(n, dtype=bool)].sum()
        return penalty.factor * 0.5 * off / (n * (n - 1) / 2)
    raise AssertionError(penalty)


_KINDS = st.sampled_from(["l1", "l2", "elastic", "exp_abs", "group", "l2sp", "orthogonal"])


def make_penalty(kind: str, strength: float, option: str) -> P.Penalty:
    return {
        "l1": lambda: P.L1(strength),
        "l2": lambda: P.L2(strength),
        "elastic": lambda: P.ElasticNet(strength, strength / 2),
        "exp_abs": lambda: P.ExpAbs(strength),
        "group": lambda: P.GroupLasso(strength, groups=option),
        "l2sp": lambda: P.L2SP(strength),
        "orthogonal": lambda: P.Orthogonal(strength, mode=option),
    }[kind]()


@example(kind="group", strength=0.0, option="rows", step=1.0, w=np.zeros((2, 3), np.float32))
# a subnormal group norm: once 0 / norm was computed as 0 * (1 / norm) = 0 * inf = NaN
@example(kind="group", strength=0.0, option="rows", step=0.0, w=np.full((1, 1), 1e-45, np.float32))
@example(kind="orthogonal", strength=1.0, option="rows", step=0.0, w=np.zeros((3, 2), np.float32))
@example(kind="l1", strength=MAX_STRENGTH, option="rows", step=10.0, w=np.zeros((1, 2), np.float32))
@example(kind="l2", strength=MAX_STRENGTH, option="rows", step=0.0, w=np.zeros((1, 1), np.float32))
@example(
    kind="group", strength=MAX_STRENGTH, option="rows", step=10.0, w=np.ones((4, 4), np.float32)
)
@settings(max_examples=MATH_EXAMPLES, deadline=None, derandomize=True)
@given(
    kind=_KINDS,
    strength=_VALID,
    option=st.sampled_from(["rows", "columns"]),
    step=st.one_of(st.just(0.0), st.floats(1e-6, 10)),
    w=_WEIGHTS,
)
def test_value_grad_prox_never_nan(kind, strength, option, step, w):
    if kind == "orthogonal":
        # its gradient grows as strength / ||w||: at huge strengths and tiny weights float32
        # overflows whatever the code does, so it gets ordinary strengths
        strength = min(strength, 1e3)
    penalty = make_penalty(kind, strength, option)
    weight = torch.from_numpy(w)
    ref = torch.full_like(weight, 0.5)
    value = penalty.value(weight, ref)
    expected = numpy_value(penalty, w, ref.numpy())
    assert not torch.isnan(value), (penalty, w)
    assert float(value) >= 0
    if expected < 1e30:  # far from float32 overflow, the value is the formula
        assert float(value) == pytest.approx(expected, rel=1e-4, abs=1e-6 * max(1.0, strength))
    grad = penalty.grad(weight, ref)
    assert grad.shape == weight.shape and not torch.isnan(grad).any()
    if penalty.has_prox:
        out = penalty.prox(weight, step, ref)
        assert out.shape == weight.shape and torch.isfinite(out).all()
        if step == 0:
            torch.testing.assert_close(out, weight)
        # a proximal step never moves a weight away from the penalty's centre
        centre = ref if kind == "l2sp" else torch.zeros_like(weight)
        assert ((out - centre).abs() <= (weight - centre).abs() + 1e-6).all()


# --- identifiers and configs -----------------------------------------------------------

_NAMES = st.one_of(
    st.sampled_from(["l1", "L2", "l1l2", "elastic_net", "exp_abs", "group_lasso", "l2sp"]),
    st.sampled_from(["orthogonal", "ElasticNet", "GroupLasso", "Orthogonal", "L2SP", "ExpAbs"]),
    st.text(max_size=10),
)
_CONFIG_VALUES = st.one_of(
    _ANYTHING,
    st.sampled_from(["rows", "columns", "diagonal"]),
    st.lists(st.one_of(st.floats(-1, 1), st.text(max_size=2)), max_size=3),
    st.lists(st.lists(st.floats(-1, 1), max_size=2), max_size=2),
)
_CONFIGS = st.one_of(
    st.dictionaries(
        st.sampled_from(["l1", "l2", "strength", "groups", "factor", "mode", "reference", "x"]),
        _CONFIG_VALUES,
        max_size=3,
    ),
    _ANYTHING,
)


@example(identifier={"class_name": "L2SP", "config": {"reference": "abc"}})
@example(identifier={"class_name": "L2SP", "config": {"reference": [[0.1], [0.2, 0.3]]}})
@example(identifier={"class_name": "L2", "config": "l2"})
@example(identifier={"class_name": ["L2"]})
@settings(max_examples=CONFIG_EXAMPLES, deadline=None, derandomize=True)
@given(
    identifier=st.one_of(
        _NAMES,
        st.builds(  # a valid config, to be sure the accepting side is exercised too
            lambda penalty: P.serialize(penalty),
            st.builds(make_penalty, _KINDS, _VALID, st.sampled_from(["rows", "columns"])),
        ),
        st.fixed_dictionaries({"class_name": _NAMES, "config": _CONFIGS}),
        st.fixed_dictionaries({"class_name": _ANYTHING}),
        _ANYTHING,
    )
)
def test_get_gives_a_penalty_or_one_line(identifier):
    try:
        penalty = P.get(identifier)
    except ShrinkageError as err:
        event("refused")
        message = str(err)
        assert message.strip() and len(message.splitlines()) == 1
        return
    event("a penalty" if penalty is not None else "None")
    assert penalty is None or isinstance(penalty, P.Penalty)
    if penalty is not None:
        assert P.deserialize(P.serialize(penalty)) == penalty
