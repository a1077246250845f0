"""What a search crosses: the strength grid, the kinds, ratios and placements, the folds.

Pure functions of the search's parameters, each returning the checked values or raising a
one-line :class:`~shrinkage.errors.ShrinkageError` naming the parameter.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shrinkage._names import (
    CLASSIFICATION,
    CLASSIFICATION_SCORINGS,
    KINDS,
    PLACEMENTS,
    REGRESSION,
    SCORINGS,
)
from shrinkage._validation import as_list, unique
from shrinkage.errors import MAX_STRENGTH, ShrinkageError, check_strength, did_you_mean

__all__ = ["Grid", "check_scoring", "default_strengths", "make_folds", "make_grid"]


#: The most strengths a generated grid may hold.
MAX_GRID = 10_000


def default_strengths(low: float = 1e-6, high: float = 1.0, per_decade: int = 2) -> np.ndarray:
    """A log grid from ``low`` to ``high``, ``per_decade`` values per decade, both ends in.

    The default, ``1e-6 … 1`` at two per decade, is 13 values: 1e-6, 3.16e-6, …, 0.316, 1.

    Args:
        low: the smallest strength, ``> 0``.
        high: the largest strength, ``>= low``.
        per_decade: values per factor of 10, ``>= 1``.

    Returns:
        The strengths, ascending.

    Raises:
        ShrinkageError: bounds that are not positive and ordered, or ``per_decade < 1``.
    """
    for name, value in (("grid_min", low), ("grid_max", high)):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not 0 < value <= MAX_STRENGTH
        ):
            raise ShrinkageError(
                f"The '{name}' parameter must be a float in the range (0, {MAX_STRENGTH:g}]. "
                f"Got {value!r} instead."
            )
    if high < low:
        raise ShrinkageError(
            f"The 'grid_max' parameter must be >= grid_min={low!r}. Got {high!r} instead."
        )
    if isinstance(per_decade, bool) or not isinstance(per_decade, numbers.Integral):
        per_decade = -1
    if per_decade < 1:
        raise ShrinkageError(
            f"The 'per_decade' parameter must be an integer >= 1. Got {per_decade!r} instead."
        )
    lo, hi = math.log10(low), math.log10(high)
    n = int(math.floor((hi - lo) * per_decade + 1e-9)) + 1
    if n > MAX_GRID:
        raise ShrinkageError(
            f"The grid from grid_min={low!r} to grid_max={high!r} at per_decade={per_decade} "
            f"would hold {n} strengths; at most {MAX_GRID} are searched. Narrow it."
        )
    grid = 10.0 ** (lo + np.arange(n) / per_decade)
    return np.unique(np.append(grid, high) if not np.isclose(grid[-1], high) else grid)


# --------------------------------------------------------------------------- SearchCV


@dataclass
class Grid:
    """The values a search crosses: one configuration per combination."""

    strengths: np.ndarray
    kinds: list[str]
    l1_ratios: list[float]
    placements: list[str | tuple[int, ...]]


def make_grid(strengths: Any, kinds: Any, l1_ratios: Any, placements: Any) -> Grid:
    """The searched values, checked: strengths (a log grid by default), kinds, ratios and
    placements (repeats removed, order kept)."""
    if strengths is None:
        values = default_strengths()
    else:
        if isinstance(strengths, str | bytes) or not isinstance(strengths, Iterable | np.ndarray):
            raise ShrinkageError(
                "The 'strengths' parameter must be a list of floats >= 0 or None. "
                f"Got {strengths!r} instead."
            )
        values = np.unique([check_strength(s, "strengths") for s in strengths])
        if not len(values):
            raise ShrinkageError("The 'strengths' parameter must hold at least one value.")
    kinds = as_list(kinds, "kinds")
    for kind in kinds:
        if kind not in KINDS:
            raise ShrinkageError(
                f"The 'kinds' entries must be among {', '.join(map(repr, KINDS))} (the "
                f"penalties the batched engine stacks). Got {kind!r} instead."
                f"{did_you_mean(kind, KINDS)}"
            )
    ratios = [float(r) for r in as_list(l1_ratios, "l1_ratios", numbers.Real)]
    for r in ratios:
        if not 0 <= r <= 1:
            raise ShrinkageError(
                f"The 'l1_ratios' entries must be floats in the range [0, 1]. Got {r!r} instead."
            )
    chosen = []
    for p in as_list(placements, "placements", (str, Sequence, np.ndarray)):
        if isinstance(p, str):
            if p not in PLACEMENTS:
                raise ShrinkageError(
                    f"The 'placements' entries must be {', '.join(map(repr, PLACEMENTS))} or "
                    f"tuples of layer indices. Got {p!r} instead.{did_you_mean(p, PLACEMENTS)}"
                )
            chosen.append(p)
        else:
            if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in p):
                raise ShrinkageError(
                    "The 'placements' entries must be 'all', 'hidden', 'output' or tuples "
                    f"of layer indices. Got {p!r} instead."
                )
            chosen.append(tuple(sorted({int(i) for i in p})))
    return Grid(values, list(dict.fromkeys(kinds)), sorted(set(ratios)), unique(chosen))


def check_scoring(scoring: str | None, task: str) -> str:
    """The score of the search: ``scoring``, or the task's default (accuracy, R²)."""
    if scoring is None:
        return "accuracy" if task == CLASSIFICATION else "r2"
    if scoring not in SCORINGS:
        raise ShrinkageError(
            f"The 'scoring' parameter must be one of {', '.join(map(repr, SCORINGS))} or "
            f"None. Got {scoring!r} instead.{did_you_mean(scoring, SCORINGS)}"
        )
    if task == REGRESSION and scoring in CLASSIFICATION_SCORINGS:
        raise ShrinkageError(
            f"The 'scoring' parameter {scoring!r} needs a classification task; this search "
            "is a regression. Use 'r2' or a 'neg_...error' score."
        )
    if task == CLASSIFICATION and scoring not in CLASSIFICATION_SCORINGS:
        raise ShrinkageError(
            f"The 'scoring' parameter {scoring!r} is for regression; this search is a "
            "classification. Use 'accuracy', 'balanced_accuracy' or 'neg_log_loss'."
        )
    return scoring


def make_folds(
    cv: Any,
    validation_fraction: float | None,
    n_rows: int,
    codes: np.ndarray,
    task: str,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(train, test)`` row indices of every split, checked.

    ``cv`` is an int (stratified k-fold for classification, k-fold otherwise, shuffled with
    ``seed``), a scikit-learn splitter or a list of index pairs; ``validation_fraction``
    replaces them with one shuffled hold-out split.
    """
    from sklearn.model_selection import (
        KFold,
        ShuffleSplit,
        StratifiedKFold,
        StratifiedShuffleSplit,
    )

    classification = task == CLASSIFICATION
    fraction = validation_fraction
    if fraction is not None:
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, numbers.Real)
            or not 0 < fraction < 1
        ):
            raise ShrinkageError(
                "The 'validation_fraction' parameter must be a float in the range (0, 1) "
                f"or None. Got {fraction!r} instead."
            )
        cls = StratifiedShuffleSplit if classification else ShuffleSplit
        splitter: Any = cls(n_splits=1, test_size=float(fraction), random_state=seed)
    elif isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        from shrinkage.data import check_rows_for_folds

        check_rows_for_folds(n_rows, int(cv))
        cls = StratifiedKFold if classification else KFold
        splitter = cls(n_splits=int(cv), shuffle=True, random_state=seed)
    elif hasattr(cv, "split"):
        splitter = cv
    elif isinstance(cv, Iterable) and not isinstance(cv, str | bytes):
        splitter = None
    else:
        raise ShrinkageError(
            "The 'cv' parameter must be an integer >= 2, a scikit-learn splitter or a list "
            f"of (train, test) index arrays. Got {cv!r} instead."
        )
    try:
        if splitter is None:
            pairs = list(cv)
        else:
            dummy = np.zeros((n_rows, 1))
            pairs = list(splitter.split(dummy, codes if classification else None))
    except ValueError as err:
        raise ShrinkageError(f"The folds cannot be made: {err}".splitlines()[0]) from None
    folds = []
    for i, pair in enumerate(pairs):
        try:
            train, test = (np.asarray(part, dtype=np.int64).reshape(-1) for part in pair)
        except (TypeError, ValueError):
            raise ShrinkageError(
                f"The 'cv' split {i} must be a (train, test) pair of index arrays."
            ) from None
        bad = np.concatenate([train, test])
        if len(train) == 0 or len(test) == 0 or bad.min() < 0 or bad.max() >= n_rows:
            raise ShrinkageError(
                f"The 'cv' split {i} must have non-empty train and test rows in "
                f"[0, {n_rows}). Got {len(train)} train and {len(test)} test rows."
            )
        if np.intersect1d(train, test).size:
            raise ShrinkageError(
                f"The 'cv' split {i} puts rows in both train and test; they must be disjoint."
            )
        folds.append((train, test))
    if not folds:
        raise ShrinkageError("The 'cv' parameter gave no splits.")
    return folds
