"""The target: classification or regression, and the one label encoder.

:func:`detect_task` decides the task from the values, :func:`encode_labels` turns class
labels into codes (the only label encoder of the package: the CLI's :func:`encode_target`,
the estimators and the search all call it) and :func:`decode_target` turns codes back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shrinkage._names import CLASSIFICATION, REGRESSION, TASKS
from shrinkage.data._columns import (
    FLOAT32_MAX,
    as_float,
    category_str,
    is_numeric,
    missing_mask,
    row_label,
    shown_value,
)
from shrinkage.errors import ShrinkageError

#: A numeric target with at most this many distinct (integral) values may be a class label.
MAX_AUTO_CLASSES = 20


def detect_task(y: pd.Series, task: str | None = None) -> str:
    """Decide between classification and regression, and check that the target allows it.

    The rule when ``task`` is None (missing values ignored):

    * a non-numeric target (strings, bools, pandas categories, mixed objects) is
      ``"classification"``;
    * a numeric target (integer or float dtype) is ``"classification"`` when every value is
      a whole number **and** it has at most 2 distinct values, or at most
      ``MAX_AUTO_CLASSES`` (20) distinct values with at least two rows per distinct value on
      average (``2 * n_unique <= n_rows``);
    * anything else is ``"regression"``.

    So ``0/1`` and ``0.0/1.0`` labels, star ratings 1..5 over many rows, and digit labels are
    classes; prices, measurements and an integer id-like column are regression. When the rule
    guesses wrong, pass ``task`` (CLI: ``--task``).

    Args:
        y: the target column.
        task: ``"classification"``, ``"regression"``, or None to detect it.

    Returns:
        ``"classification"`` or ``"regression"``.

    Raises:
        ShrinkageError: when ``task`` is not one of the two, the target is empty, a
            regression target is not numeric, or a classification target has a single class.

    Example:
        >>> detect_task(pd.Series([0, 1, 1, 0]))
        'classification'
        >>> detect_task(pd.Series([1.5, 2.25, 3.0]))
        'regression'
    """
    if task is not None and (not isinstance(task, str) or task not in TASKS):
        raise ShrinkageError(
            "The 'task' parameter must be 'classification' or 'regression' (or None to "
            f"detect it from the target). Got {task!r} instead."
        )
    name = "target" if y.name is None else str(y.name)
    present = y[~missing_mask(y)]
    if len(present) == 0:
        raise ShrinkageError(f"The 'target' column {name!r} has no values.")
    numeric = is_numeric(present)
    if numeric:
        check_integer_range(present, name)

    if task is None:
        task = CLASSIFICATION
        if numeric:
            values = as_float(present)
            values = values[np.isfinite(values)]
            n_unique = len(np.unique(values))
            integral = bool(np.all(values == np.round(values)))
            few = n_unique <= 2 or (n_unique <= MAX_AUTO_CLASSES and 2 * n_unique <= len(values))
            task = CLASSIFICATION if integral and few else REGRESSION

    if task == REGRESSION and not numeric:
        bad = _first_non_numeric(present)
        raise ShrinkageError(
            f"The 'target' column {name!r} is not numeric (got "
            f"{shown_value(present.iloc[bad])!r} in {row_label(present.index, bad)}), so it "
            "cannot be a regression target; "
            "use task='classification' (CLI: --task classification)."
        )
    if task == CLASSIFICATION and numeric:
        values = as_float(present)
        whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2.0**63)
        if not whole.all():
            bad = int(np.flatnonzero(~whole)[0])
            raise ShrinkageError(
                f"The 'target' column {name!r} is not a class label in "
                f"{row_label(present.index, bad)} (got {shown_value(present.iloc[bad])!r}: "
                "class labels are whole numbers within the int64 range, or text); use "
                "task='regression' (CLI: --task regression)."
            )
    if task == CLASSIFICATION:
        classes = {category_str(v) for v in present.to_numpy(dtype=object)}
        if len(classes) < 2:
            raise ShrinkageError(
                f"The 'target' column {name!r} has a single class, "
                f"{shown_value(present.iloc[0])!r}, in all {len(present)} rows; "
                "classification needs at least 2 classes."
            )
    return task


def check_integer_range(y: pd.Series, name: str) -> None:
    """Refuse integers outside the int64 range (pandas reads them as uint64 or Python ints):
    as float64 they collapse into one another (2**63 and 2**63 + 1 become equal).

    Raises:
        ShrinkageError: naming the first such value and its row.
    """
    if y.dtype.kind == "u":
        big = y.to_numpy() > np.iinfo(np.int64).max
    elif ptypes.is_object_dtype(y.dtype):
        big = np.array(
            [
                isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63
                for v in y.to_numpy(dtype=object)
            ],
            dtype=bool,
        )
    else:
        return
    if big.any():
        first = int(np.flatnonzero(big)[0])
        raise ShrinkageError(
            f"The 'target' column {name!r} has an integer beyond the int64 range in "
            f"{row_label(y.index, first)} (got {shown_value(y.iloc[first])!r}); such values "
            "cannot be told apart as numbers. Write class labels as text, or rescale the values."
        )


def _first_non_numeric(series: pd.Series) -> int:
    if ptypes.is_bool_dtype(series.dtype):
        return 0
    converted = pd.to_numeric(series.astype(object), errors="coerce").isna().to_numpy()
    hits = np.flatnonzero(converted)
    return int(hits[0]) if len(hits) else 0


def encode_target(y: pd.Series, task: str) -> tuple[np.ndarray, list | None]:
    """Turn the target into the numbers a network trains on.

    For classification the classes are the distinct values, sorted, as JSON-native Python
    values: numbers stay numbers (``int`` or ``float`` following the dtype), bools stay bools,
    anything else becomes ``str``; the codes index into that list. For regression the values
    are returned as float32 and there are no classes.

    Args:
        y: the target column, without missing values (see :func:`split_target`).
        task: ``"classification"`` or ``"regression"``.

    Returns:
        ``(codes, classes)``: int64 codes and the sorted class list, or float32 values and
        None.

    Raises:
        ShrinkageError: when ``task`` is invalid, a value is missing, or a regression target
            is not numeric or not finite.

    Example:
        >>> codes, classes = encode_target(pd.Series(["b", "a", "b"]), "classification")
        >>> codes.tolist(), classes
        ([1, 0, 1], ['a', 'b'])
    """
    if not isinstance(task, str) or task not in TASKS:
        raise ShrinkageError(
            f"The 'task' parameter must be 'classification' or 'regression'. Got {task!r} instead."
        )
    y = pd.Series(y) if not isinstance(y, pd.Series) else y
    name = "target" if y.name is None else str(y.name)
    missing = missing_mask(y)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ShrinkageError(
            f"The 'target' column {name!r} has a missing value in {row_label(y.index, first)} "
            f"(got {shown_value(y.iloc[first])!r})."
        )
    if isinstance(y.dtype, pd.CategoricalDtype):
        y = y.astype(y.cat.categories.dtype)
    if is_numeric(y):
        check_integer_range(y, name)

    if task == REGRESSION:
        if not is_numeric(y):
            bad = _first_non_numeric(y)
            raise ShrinkageError(
                f"The 'target' column {name!r} is not numeric (got {shown_value(y.iloc[bad])!r} in "
                f"{row_label(y.index, bad)}), so it cannot be a regression target."
            )
        subject = f"The 'target' column {name!r}"
        return encode_regression(as_float(y), subject, y.index).astype(np.float32), None

    if ptypes.is_bool_dtype(y.dtype):
        values = y.to_numpy(dtype=bool)
    elif is_numeric(y):
        raw = pd.to_numeric(y)
        integer = ptypes.is_integer_dtype(raw.dtype)
        values = raw.to_numpy(dtype=np.int64 if integer else np.float64)
    else:
        values = np.asarray([category_str(v) for v in y.to_numpy(dtype=object)], dtype=object)
    codes, classes = encode_labels(values, min_classes=1)
    return codes, classes.tolist()


def encode_labels(
    y: Any, known: np.ndarray | None = None, *, name: str = "y", min_classes: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Class labels to codes: ``classes[codes] == y``, ``classes`` sorted and distinct.

    The one label encoder of the package (scikit-learn's ``LabelEncoder`` rule: the classes
    are ``np.unique(y)``), used by the estimators, the search and :func:`encode_target`.

    Args:
        y: a 1-D array of labels (numbers, bools or strings; no missing values).
        known: the classes of a model being trained further (``warm_start``); ``y`` must not
            bring a new one. None: the classes are those of ``y``, at least two.
        name: how messages name the model (e.g. ``"MLPClassifier"``).
        min_classes: the fewest classes ``y`` may hold (without ``known``).

    Returns:
        ``(codes, classes)``: int64 codes and the sorted classes.

    Raises:
        ShrinkageError: a single class, or a class that ``known`` does not hold.

    Example:
        >>> codes, classes = encode_labels(np.array(["b", "a", "b"]))
        >>> codes.tolist(), classes.tolist()
        ([1, 0, 1], ['a', 'b'])
    """
    values = np.asarray(y)
    if known is not None:
        new = np.setdiff1d(np.unique(values), known)
        if len(new):
            raise ShrinkageError(
                f"warm_start=True keeps the classes {known.tolist()!r}; y has new classes "
                f"{new.tolist()!r}. Use warm_start=False to start over."
            )
        return np.searchsorted(known, values).astype(np.int64).reshape(-1), known
    classes, codes = np.unique(values, return_inverse=True)
    if len(classes) < min_classes:
        only = classes[0].item() if hasattr(classes[0], "item") else classes[0]
        raise ShrinkageError(f"{name} needs at least 2 classes in y; got one class, {only!r}.")
    return codes.astype(np.int64).reshape(-1), classes


def encode_regression(
    y: Any, subject: str = "The 'y' parameter", index: pd.Index | None = None
) -> np.ndarray:
    """A regression target as float64, refusing non-numeric, infinite and float32-overflowing
    values (the network trains in float32).

    Args:
        y: a 1-D array of numbers.
        subject: how messages name ``y``, e.g. ``"The 'target' column 'price'"``.
        index: row labels for messages (default: positions).

    Returns:
        The values as float64.

    Raises:
        ShrinkageError: naming the first bad row.
    """
    try:
        values = np.asarray(y, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ShrinkageError(
            f"{subject} must be numeric for a regression. Got non-numeric values."
        ) from None
    index = pd.RangeIndex(len(values)) if index is None else index
    infinite = ~np.isfinite(values)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise ShrinkageError(
            f"{subject} has an infinite value in {row_label(index, first)} "
            f"(got {shown_value(values[first])!r})."
        )
    too_large = np.abs(values) > FLOAT32_MAX
    if too_large.any():
        first = int(np.flatnonzero(too_large)[0])
        raise ShrinkageError(
            f"{subject} has a value too large for float32 in {row_label(index, first)} "
            f"(got {shown_value(values[first])!r}); values must lie within "
            f"+-{FLOAT32_MAX:.7g}."
        )
    return values


def decode_target(codes: Any, classes: list | None) -> np.ndarray:
    """Undo :func:`encode_target`: class codes back to labels, regression values unchanged.

    Args:
        codes: integer class codes (any array-like), or regression values.
        classes: the class list from :func:`encode_target`, or None for regression.

    Returns:
        The labels as a NumPy array (``classes[code]`` for each code), or ``codes`` as a
        float array when ``classes`` is None.

    Raises:
        ShrinkageError: when a code is not an integer in ``[0, len(classes))``.

    Example:
        >>> decode_target([1, 0], ["a", "b"]).tolist()
        ['b', 'a']
    """
    array = np.asarray(codes)
    if classes is None:
        return array if array.dtype.kind == "f" else array.astype(np.float64)
    if len(classes) == 0:
        raise ShrinkageError("The 'classes' list is empty; nothing to decode into.")
    if array.size and array.dtype.kind not in "iu":
        raise ShrinkageError(
            f"The class 'codes' must be integers; got an array of dtype {array.dtype}."
        )
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= len(classes))
    if bad.any():
        raise ShrinkageError(
            f"The class code {int(array[bad].flat[0])} is out of range; there are "
            f"{len(classes)} classes (codes 0 to {len(classes) - 1})."
        )
    return np.asarray(classes)[array]
