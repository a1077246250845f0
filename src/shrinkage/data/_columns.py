"""Column helpers of the data layer: what is missing, numeric or categorical, and how rows
and names are shown in one-line messages.

Row numbers in messages are 1-based data rows: for an integer row label ``i`` (the
``RangeIndex`` that :func:`~shrinkage.data.read_table` gives, kept by subsets taken with
``.iloc`` / ``.loc``) the message says ``row i + 1``, which is the row's place among the data
rows of the file, the header not counted (so it sits on line ``i + 2`` of a CSV file). A row
with a non-integer label is named by its label, e.g. ``row 'id-7'``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

NUMERIC_INFERRED = {"integer", "floating", "mixed-integer-float", "decimal"}


MAX_LISTED = 20
#: Numbers beyond this cannot reach a float32 network, and their squares overflow the scaler.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def listing(names: Any, limit: int = MAX_LISTED) -> str:
    """``a, b, c`` for messages, cut after ``limit`` names so a message stays one line."""
    # A name holding a line break (\r, \x1e, \u2028, ...) must not split the message.
    names = ["".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name)) for name in names]
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown


def row_label(index: pd.Index, position: int) -> str:
    """Name the row at ``position`` as the module docstring promises."""
    label = index[position]
    if isinstance(label, (numbers.Integral, np.integer)) and not isinstance(label, bool):
        return f"row {int(label) + 1}"
    return f"row {label!r}"


def shown_value(value: Any) -> Any:
    """A cell as a plain Python value, so messages say ``inf`` rather than ``np.float64(inf)``."""
    return value.item() if isinstance(value, np.generic) else value


def blank_strings(values: np.ndarray) -> np.ndarray:
    """Mask of empty / whitespace-only strings: a missing value in a hand-made table."""
    return np.fromiter(
        (isinstance(v, str) and not v.strip() for v in values), dtype=bool, count=len(values)
    )


def missing_mask(series: pd.Series) -> np.ndarray:
    """NaN, None, pd.NA, NaT and blank strings."""
    mask = np.array(series.isna(), dtype=bool, copy=True)
    if ptypes.is_object_dtype(series.dtype) or ptypes.is_string_dtype(series.dtype):
        mask |= blank_strings(series.to_numpy(dtype=object))
    return mask


def is_numeric(series: pd.Series) -> bool:
    """Real numbers (not bool, not complex), including an object column holding only numbers."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return False
    if ptypes.is_numeric_dtype(dtype):
        return not ptypes.is_complex_dtype(dtype)
    if ptypes.is_object_dtype(dtype):
        return ptypes.infer_dtype(series, skipna=True) in NUMERIC_INFERRED
    return False


def is_categorical(series: pd.Series) -> bool:
    """Strings, bools, pandas categories, or an object column that is not all numbers."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return True
    if ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype):
        return not is_numeric(series)
    return False


def as_float(series: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for every missing value."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.array(values, dtype=np.float64, copy=True)  # pandas 3 hands out read-only views


def category_str(value: Any) -> str:
    """One spelling per category, so ``1``, ``1.0`` and ``"1"`` are the same category."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


def column_str(name: Any) -> str:
    return name if isinstance(name, str) else str(name)
