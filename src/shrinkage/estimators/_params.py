"""The estimators' parameters: the named penalties, the per-layer overrides, the checks.

:func:`make_penalty` turns ``penalty="elastic_net", strength=s, l1_ratio=r`` into a penalty
object; :func:`layer_penalty` reads one entry of ``layer_penalties``; :class:`Settings` is
every parameter, validated once at the start of ``fit``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from shrinkage import penalties as P
from shrinkage._names import (
    ACTIVATIONS,
    INITS,
    LEARNING_RATE_SCHEDULES,
    MODES,
    OPTIMIZERS,
    PENALTY_NAMES,
)
from shrinkage._validation import check_bool, check_choice, check_float, check_int
from shrinkage.errors import ShrinkageError, check_device, check_strength, did_you_mean
from shrinkage.penalties import Penalty

_MAX_SEED = 2**32 - 1

#: scikit-learn MLP parameters a user may bring over, and what they are here.
_SKLEARN_NAMES = {
    "max_iter": "epochs",
    "learning_rate_init": "learning_rate",
    "solver": "optimizer",
    "n_iter_no_change": "patience",
}


class UnknownParameterError(ShrinkageError, TypeError):
    """A keyword the estimator does not have (a ``TypeError`` too, as Python raises)."""


def unknown_parameter(estimator: str, name: str, known: Sequence[str]) -> UnknownParameterError:
    """The error for ``Estimator(name=...)``: scikit-learn's names point to ours.

    ``alpha`` (scikit-learn's ``(alpha / 2n)·Σw²``, n the batch size) is
    ``penalty="l2", strength=alpha / (2 * batch_size)``: :func:`~shrinkage.from_sklearn_alpha`.

    Args:
        estimator: the class name.
        name: the keyword received.
        known: the estimator's parameters.

    Returns:
        The error to raise.
    """
    start = f"{estimator}() got an unexpected keyword argument {name!r}."
    if name == "alpha":
        return UnknownParameterError(
            f"{start} Its strength has the Keras meaning (strength·Σw² added to the mean "
            "loss); scikit-learn's alpha is penalty='l2', strength=alpha / (2 * batch_size): "
            "strength=sk.from_sklearn_alpha(alpha, batch_size).l2."
        )
    if name in _SKLEARN_NAMES:
        return UnknownParameterError(f"{start} Its name here is {_SKLEARN_NAMES[name]!r}.")
    return UnknownParameterError(f"{start}{did_you_mean(name, known)}")


def make_penalty(
    name: str | Penalty | None, strength: float, l1_ratio: float = 0.5, argument: str = "penalty"
) -> Penalty | None:
    """The penalty object for a named penalty and one strength (Keras meaning).

    ============ ==========================================================================
    name         penalty added to the mean loss
    ============ ==========================================================================
    l1           ``strength * sum|w|``
    l2           ``strength * sum w**2``
    elastic_net  ``strength * (l1_ratio * sum|w| + (1 - l1_ratio) * sum w**2)``
    group_lasso  ``strength * sum_rows sqrt(n_in) * ||w_row||`` (whole neurons to zero)
    exp_abs      ``strength * sum(exp|w| - 1)``
    l2sp         ``strength * sum (w - w0)**2``, ``w0`` the weights when training starts
    none         nothing
    ============ ==========================================================================

    Args:
        name: one of :data:`PENALTY_NAMES`, a :class:`~shrinkage.Penalty` (returned as is),
            or ``None`` (no penalty).
        strength: ``>= 0``.
        l1_ratio: elastic net's share of L1, in ``[0, 1]``.
        argument: the parameter named in error messages.

    Returns:
        The penalty, or ``None``.

    Raises:
        ShrinkageError: an unknown name, a negative or non-finite strength, or a ratio
            outside ``[0, 1]``.

    Example:
        >>> make_penalty("elastic_net", 0.01, 0.25)
        ElasticNet(l1=0.0025, l2=0.0075)
    """
    if name is None or isinstance(name, Penalty):
        return name
    if not isinstance(name, str) or name.lower() not in PENALTY_NAMES:
        raise ShrinkageError(
            f"The '{argument}' parameter must be one of {', '.join(PENALTY_NAMES)} or a "
            f"Penalty. Got {name!r} instead.{did_you_mean(name, PENALTY_NAMES)}"
        )
    name = name.lower()
    strength = check_strength(strength, "strength")
    if name == "none":
        return None
    if name == "elastic_net":
        ratio = check_float(l1_ratio, "l1_ratio", 0.0, 1.0, "[0, 1]")
        return P.ElasticNet(l1=strength * ratio, l2=strength * (1 - ratio))
    return {
        "l1": lambda: P.L1(strength),
        "l2": lambda: P.L2(strength),
        "group_lasso": lambda: P.GroupLasso(strength),
        "exp_abs": lambda: P.ExpAbs(strength),
        "l2sp": lambda: P.L2SP(strength),
    }[name]()


# --------------------------------------------------------------------------- validation


def check_hidden(value: object) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence | np.ndarray)
        or not all(isinstance(h, numbers.Integral) and not isinstance(h, bool) for h in value)
        or any(h < 1 for h in value)
    ):
        raise ShrinkageError(
            "The 'hidden_layer_sizes' parameter must be a tuple of positive integers "
            f"(() for a linear model). Got {value!r} instead."
        )
    return tuple(int(h) for h in value)


def check_placement(value: object) -> str | tuple[int, ...]:
    if isinstance(value, str):
        return value  # placement_layers names the choices if it is unknown
    if isinstance(value, Sequence | np.ndarray) and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in value
    ):
        return tuple(int(i) for i in value)
    raise ShrinkageError(
        "The 'placement' parameter must be 'all', 'hidden', 'output' or a list of layer "
        f"indices. Got {value!r} instead."
    )


def layer_penalty(
    spec: object, layer: object, default: str | Penalty | None, strength: float, l1_ratio: float
) -> Penalty | None:
    """One entry of ``layer_penalties``: what replaces the default penalty on that layer."""
    where = f"layer_penalties[{layer!r}]"
    if spec is None or isinstance(spec, Penalty):
        return spec
    if isinstance(spec, str):
        return make_penalty(spec, strength, l1_ratio, where)
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        if not isinstance(default, str):
            raise ShrinkageError(
                f"The '{where}' strength {spec!r} needs a named default 'penalty'; "
                f"got penalty={default!r}. Give a Penalty or a (name, strength) pair instead."
            )
        return make_penalty(default, check_strength(spec, where), l1_ratio, where)
    if isinstance(spec, tuple | list) and len(spec) == 2 and isinstance(spec[0], str):
        return make_penalty(spec[0], check_strength(spec[1], where), l1_ratio, where)
    if isinstance(spec, Mapping):
        if "class_name" in spec:
            return P.deserialize(dict(spec))
        unknown = set(spec) - {"penalty", "strength", "l1_ratio"}
        if not unknown and "penalty" in spec:
            return make_penalty(
                spec["penalty"],
                check_strength(spec.get("strength", strength), where),
                spec.get("l1_ratio", l1_ratio),
                where,
            )
    raise ShrinkageError(
        f"The '{where}' entry must be None, a Penalty, a penalty name, a strength, a "
        f"(name, strength) pair or a dict with 'penalty' and 'strength'. Got {spec!r} instead."
    )


def format_layer_penalties(layers: Sequence[tuple[str, float]]) -> str:
    """Per-layer ``(kind, strength)`` pairs as ``--layer-penalties`` text.

    Layer ``i`` is written ``i=kind:strength`` (six significant digits when that is the
    value up to 1e-12 relative, else every digit), or ``i=none`` for strength 0; entries
    are comma-separated
    (:func:`parse_layer_penalties` reads it back).

    Example:
        >>> format_layer_penalties([("l2", 0.0003), ("l2", 0.0), ("l1", 0.01)])
        '0=l2:0.0003,1=none,2=l1:0.01'
    """
    return ",".join(
        f"{i}={kind}:{_short(float(strength))}" if strength > 0 else f"{i}=none"
        for i, (kind, strength) in enumerate(layers)
    )


def _short(value: float) -> str:
    """Six significant digits when they are the value up to 1e-12 relative (``1e-05`` for
    ``10 ** -5`` computed as ``9.999999999999999e-06``), else the exact ``repr``."""
    text = f"{value:.6g}"
    return text if math.isclose(float(text), value, rel_tol=1e-12) else repr(value)


def parse_layer_penalties(text: str, argument: str = "--layer-penalties") -> dict[int, Any]:
    """``layer_penalties`` from text: ``0=l2:3e-4,1=none,2=l1:0.01``.

    Each comma-separated entry is ``INDEX=none``, ``INDEX=NAME:STRENGTH`` (a name of
    :data:`PENALTY_NAMES`; elastic net splits the strength by the estimator's ``l1_ratio``)
    or ``INDEX=STRENGTH`` (the default ``penalty`` with that strength).

    Args:
        text: the entries.
        argument: the option named in error messages.

    Returns:
        ``{index: None | (name, strength) | strength}``, what ``layer_penalties`` accepts.

    Raises:
        ShrinkageError: an entry that is not one of these forms, or a repeated index.

    Example:
        >>> parse_layer_penalties("0=l2:3e-4,1=none,2=0.01")
        {0: ('l2', 0.0003), 1: None, 2: 0.01}
    """
    out: dict[int, Any] = {}
    for entry in (part.strip() for part in str(text).split(",")):
        index, _, spec = entry.partition("=")
        index, spec = index.strip(), spec.strip().lower()
        value: Any = None
        ok = index.isdigit() and bool(spec)
        if ok and spec != "none":
            name, _, number = spec.rpartition(":")
            try:
                strength = float(number)
            except ValueError:
                ok = False
            else:
                ok = (
                    math.isfinite(strength)
                    and strength >= 0
                    and (not name or name in PENALTY_NAMES)
                )
                value = (name, strength) if name else strength
        if not ok:
            raise ShrinkageError(
                f"The '{argument}' entries must be INDEX=none, INDEX=NAME:STRENGTH or "
                f"INDEX=STRENGTH (e.g. 0=l2:3e-4,1=none). Got {entry!r} in {text!r}."
            )
        if int(index) in out:
            raise ShrinkageError(
                f"The '{argument}' option names layer {index} twice. Got {text!r}."
            )
        out[int(index)] = value
    return out


@dataclass(frozen=True)
class Settings:
    """The estimator's parameters, validated."""

    hidden: tuple[int, ...]
    activation: str
    penalty: Penalty | None
    overrides: dict[int, Penalty | None]
    placement: str | tuple[int, ...]
    mode: str
    optimizer: str
    learning_rate: float
    momentum: float
    epochs: int
    batch_size: int
    early_stopping: bool
    validation_fraction: float
    patience: int
    impute: bool
    warm_start: bool
    device: torch.device
    verbose: bool
    standardize: bool = True
    init: str = "torch"
    learning_rate_schedule: str = "constant"


def resolve_params(params: dict[str, Any]) -> Settings:
    """The estimator's parameters (``get_params()``), validated.

    Raises:
        ShrinkageError: the first bad parameter, in one line.
    """
    strength = check_strength(params["strength"], "strength")
    l1_ratio = check_float(params["l1_ratio"], "l1_ratio", 0.0, 1.0, "[0, 1]")
    penalty = make_penalty(params["penalty"], strength, l1_ratio)
    overrides: dict[int, Penalty | None] = {}
    if params["layer_penalties"] is not None:
        if not isinstance(params["layer_penalties"], Mapping):
            raise ShrinkageError(
                "The 'layer_penalties' parameter must be a dict {layer index: penalty} or "
                f"None. Got {params['layer_penalties']!r} instead."
            )
        for layer, spec in params["layer_penalties"].items():
            if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
                raise ShrinkageError(
                    "The 'layer_penalties' keys must be layer indices (integers). "
                    f"Got {layer!r} instead."
                )
            overrides[int(layer)] = layer_penalty(
                spec, layer, params["penalty"], strength, l1_ratio
            )
    return Settings(
        hidden=check_hidden(params["hidden_layer_sizes"]),
        activation=check_choice(params["activation"], "activation", ACTIVATIONS),
        penalty=penalty,
        overrides=overrides,
        placement=check_placement(params["placement"]),
        mode=check_choice(params["mode"], "mode", MODES),
        optimizer=check_choice(params["optimizer"], "optimizer", OPTIMIZERS),
        learning_rate=check_float(
            params["learning_rate"], "learning_rate", 0.0, math.inf, "(0, inf)", open_low=True
        ),
        momentum=check_float(params["momentum"], "momentum", 0.0, 1.0, "[0, 1]"),
        epochs=check_int(params["epochs"], "epochs", 1),
        batch_size=check_int(params["batch_size"], "batch_size", 1),
        early_stopping=check_bool(params["early_stopping"], "early_stopping"),
        validation_fraction=check_float(
            params["validation_fraction"],
            "validation_fraction",
            0.0,
            0.5,
            "(0, 0.5]",
            open_low=True,
        ),
        patience=check_int(params["patience"], "patience", 1),
        impute=check_bool(params["impute"], "impute"),
        warm_start=check_bool(params["warm_start"], "warm_start"),
        device=check_device(params["device"]),
        verbose=check_bool(params["verbose"], "verbose"),
        standardize=check_bool(params.get("standardize", True), "standardize"),
        init=check_choice(params.get("init", "torch"), "init", INITS),
        learning_rate_schedule=check_choice(
            params.get("learning_rate_schedule", "constant"),
            "learning_rate_schedule",
            LEARNING_RATE_SCHEDULES,
        ),
    )


def draw_seed(state: Any) -> int:
    """The integer seed of a fit: ``random_state`` itself when it is an int, else drawn."""
    if state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(state, numbers.Integral) and not isinstance(state, bool):
        if not 0 <= state <= _MAX_SEED:
            raise ShrinkageError(
                f"The 'random_state' parameter must be an integer in [0, {_MAX_SEED}], a "
                f"numpy RandomState or None. Got {state!r} instead."
            )
        return int(state)
    if isinstance(state, np.random.RandomState):
        return int(state.randint(0, 2**31 - 1))
    if isinstance(state, np.random.Generator):
        return int(state.integers(0, 2**31 - 1))
    raise ShrinkageError(
        f"The 'random_state' parameter must be an integer in [0, {_MAX_SEED}], a numpy "
        f"RandomState or None. Got {state!r} instead."
    )
