"""The data layer: a user's table in, validated columns and standardized arrays out.

``read_table`` reads CSV / TSV / Parquet, ``split_target`` and ``detect_task`` pick the target
apart, ``encode_target`` turns it into numbers, and :class:`Preprocessor` standardizes numeric
columns and one-hot encodes categorical ones. The preprocessor is fitted on training rows only
and saved as plain JSON (``to_config`` / ``from_config``); nothing here ever pickles.

Every bad input raises :class:`~shrinkage.errors.ShrinkageError` with one line naming the
argument, column or row and the value received.

Row numbers in messages are 1-based data rows: for an integer row label ``i`` (the
``RangeIndex`` that :func:`read_table` gives, kept by subsets taken with ``.iloc`` / ``.loc``)
the message says ``row i + 1``, which is the row's place among the data rows of the file, the
header not counted (so it sits on line ``i + 2`` of a CSV file). A row with a non-integer label
is named by its label, e.g. ``row 'id-7'``.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shrinkage.errors import ShrinkageError

if TYPE_CHECKING:  # scikit-learn costs a second to import; only a Preprocessor needs it
    from sklearn.compose import ColumnTransformer

__all__ = [
    "CLASSIFICATION",
    "MAX_AUTO_CLASSES",
    "REGRESSION",
    "SUPPORTED_EXTENSIONS",
    "TASKS",
    "Dataset",
    "Preprocessor",
    "check_rows_for_folds",
    "decode_target",
    "detect_task",
    "encode_target",
    "load_dataset",
    "read_table",
    "split_target",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

#: A numeric target with at most this many distinct (integral) values may be a class label.
MAX_AUTO_CLASSES = 20

_CSV_SEPARATORS = {".csv": ",", ".tsv": "\t"}
_PARQUET_EXTENSIONS = (".parquet", ".pq")
SUPPORTED_EXTENSIONS = (*_CSV_SEPARATORS, *_PARQUET_EXTENSIONS)

_NUMERIC_INFERRED = {"integer", "floating", "mixed-integer-float", "decimal"}
_CONFIG_TYPE = "shrinkage.Preprocessor"
_CONFIG_VERSION = 1
_MAX_LISTED = 20
#: Numbers beyond this cannot reach a float32 network, and their squares overflow the scaler.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------- small helpers


def _listing(names: Any, limit: int = _MAX_LISTED) -> str:
    """``a, b, c`` for messages, cut after ``limit`` names so a message stays one line."""
    # A name holding a line break (\r, \x1e, \u2028, ...) must not split the message.
    names = ["".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name)) for name in names]
    shown = ", ".join(names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    return shown


def _row(index: pd.Index, position: int) -> str:
    """Name the row at ``position`` as the module docstring promises."""
    label = index[position]
    if isinstance(label, (numbers.Integral, np.integer)) and not isinstance(label, bool):
        return f"row {int(label) + 1}"
    return f"row {label!r}"


def _shown(value: Any) -> Any:
    """A cell as a plain Python value, so messages say ``inf`` rather than ``np.float64(inf)``."""
    return value.item() if isinstance(value, np.generic) else value


def _blank_strings(values: np.ndarray) -> np.ndarray:
    """Mask of empty / whitespace-only strings: a missing value in a hand-made table."""
    return np.fromiter(
        (isinstance(v, str) and not v.strip() for v in values), dtype=bool, count=len(values)
    )


def _missing_mask(series: pd.Series) -> np.ndarray:
    """NaN, None, pd.NA, NaT and blank strings."""
    mask = np.array(series.isna(), dtype=bool, copy=True)
    if ptypes.is_object_dtype(series.dtype) or ptypes.is_string_dtype(series.dtype):
        mask |= _blank_strings(series.to_numpy(dtype=object))
    return mask


def _is_numeric(series: pd.Series) -> bool:
    """Real numbers (not bool, not complex), including an object column holding only numbers."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return False
    if ptypes.is_numeric_dtype(dtype):
        return not ptypes.is_complex_dtype(dtype)
    if ptypes.is_object_dtype(dtype):
        return ptypes.infer_dtype(series, skipna=True) in _NUMERIC_INFERRED
    return False


def _is_categorical(series: pd.Series) -> bool:
    """Strings, bools, pandas categories, or an object column that is not all numbers."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return True
    if ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype):
        return not _is_numeric(series)
    return False


def _as_float(series: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for every missing value."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.array(values, dtype=np.float64, copy=True)  # pandas 3 hands out read-only views


def _category_str(value: Any) -> str:
    """One spelling per category, so ``1``, ``1.0`` and ``"1"`` are the same category."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return str(value)


def _column_str(name: Any) -> str:
    return name if isinstance(name, str) else str(name)


# --------------------------------------------------------------------------- reading


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file into a DataFrame, refusing anything unusable.

    The format comes from the extension: ``.csv`` (comma-separated), ``.tsv``
    (tab-separated), ``.parquet`` / ``.pq`` (Parquet, read with pyarrow). The first line of a
    CSV / TSV file is the header. The frame keeps a 0-based ``RangeIndex``, so row ``i`` is
    data row ``i + 1`` in error messages.

    Args:
        path: the file to read.

    Returns:
        The table, at least one row and one column, with unique column names.

    Raises:
        ShrinkageError: when the file does not exist, is a directory, has an unsupported
            extension, is empty or has a header but no rows, cannot be parsed, or has
            duplicate column names.

    Example:
        >>> frame = read_table("houses.csv")  # doctest: +SKIP
        >>> frame.shape  # doctest: +SKIP
        (506, 14)
    """
    shown = os.fspath(path)
    file = Path(shown)
    suffix = file.suffix.lower()
    if not file.exists():
        raise ShrinkageError(f"The data file '{shown}' does not exist.")
    if file.is_dir():
        raise ShrinkageError(f"The data file '{shown}' is a directory, not a file.")
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ShrinkageError(
            f"The data file '{shown}' has an unsupported extension {file.suffix!r}; "
            f"supported extensions are: {_listing(SUPPORTED_EXTENSIONS)}."
        )
    try:
        size = file.stat().st_size
    except OSError as err:
        raise ShrinkageError(f"The data file '{shown}' could not be read: {err.strerror}.") from err
    if size == 0:
        raise ShrinkageError(f"The data file '{shown}' is empty (0 bytes).")

    if suffix in _CSV_SEPARATORS:
        frame, header = _read_delimited(file, shown, _CSV_SEPARATORS[suffix])
    else:
        frame = _read_parquet(file, shown)
        header = [_column_str(name) for name in frame.columns]

    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen and name != "":
            raise ShrinkageError(
                f"The data file '{shown}' has duplicate column names: {name!r} is both "
                f"column {seen[name]} and column {position}."
            )
        seen[name] = position
    if frame.shape[1] == 0:
        raise ShrinkageError(f"The data file '{shown}' has no columns.")
    if len(frame) == 0:
        raise ShrinkageError(
            f"The data file '{shown}' has a header ({_listing(frame.columns)}) but no data rows."
        )
    frame.columns = [_column_str(name) for name in frame.columns]
    return frame.reset_index(drop=True)


def _parse_error(shown: str, kind: str, err: BaseException) -> ShrinkageError:
    text = " ".join(str(err).split()) or type(err).__name__
    return ShrinkageError(f"The data file '{shown}' could not be read as {kind}: {text}.")


def _read_delimited(file: Path, shown: str, sep: str) -> tuple[pd.DataFrame, list[str]]:
    kind = "CSV" if sep == "," else "TSV"
    try:
        header, first_row = _first_lines(file, sep)
        if first_row is not None and len(first_row) > len(header):
            # pandas would quietly turn the leading fields into an index and lose them.
            raise ShrinkageError(
                f"The data file '{shown}' has {len(first_row)} fields in its first data row "
                f"but {len(header)} names in its header; give every column a name."
            )
        frame = pd.read_csv(file, sep=sep, low_memory=False)
    except pd.errors.EmptyDataError as err:
        raise ShrinkageError(f"The data file '{shown}' is empty (no header line).") from err
    except UnicodeDecodeError as err:
        raise ShrinkageError(
            f"The data file '{shown}' could not be read as {kind}: it is not UTF-8 text "
            f"(byte {err.object[err.start : err.start + 1]!r} at offset {err.start})."
        ) from err
    except ShrinkageError:
        raise
    except (pd.errors.ParserError, csv.Error, ValueError, OSError) as err:
        raise _parse_error(shown, kind, err) from err
    return frame, header


def _first_lines(file: Path, sep: str) -> tuple[list[str], list[str] | None]:
    """The raw header and first data row (pandas renames a repeated 'a' to 'a.1')."""
    rows: list[list[str]] = []
    with open(file, newline="", encoding="utf-8-sig") as handle:
        for fields in csv.reader(handle, delimiter=sep):
            if fields:  # pandas skips blank lines too
                rows.append(fields)
            if len(rows) == 2:
                break
    return (rows[0] if rows else []), (rows[1] if len(rows) > 1 else None)


def _read_parquet(file: Path, shown: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(file)
    except ImportError as err:
        raise ShrinkageError(
            f"Reading the Parquet file '{shown}' needs pyarrow: pip install 'shrinkage[parquet]'."
        ) from err
    except (ValueError, OSError, TypeError) as err:
        raise _parse_error(shown, "Parquet", err) from err


# --------------------------------------------------------------------------- target


def split_target(
    frame: pd.DataFrame, target: str, *, source: str = "the data"
) -> tuple[pd.DataFrame, pd.Series]:
    """Split a table into feature columns and the target column.

    Args:
        frame: the table, e.g. from :func:`read_table`.
        target: the name of the target column.
        source: how to name the table in messages, e.g. the file name.

    Returns:
        ``(X, y)``: every other column in their original order, and the target column.

    Raises:
        ShrinkageError: when the target column is absent or repeated, no feature column is
            left, the table has no rows, or a target value is missing (NaN, None, blank) or
            infinite; the message names the first bad row (1-based data row, see the module
            docstring).

    Example:
        >>> frame = pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]})
        >>> X, y = split_target(frame, "y")
        >>> list(X.columns), y.tolist()
        (['a'], [0, 1])
    """
    if not isinstance(frame, pd.DataFrame):
        raise ShrinkageError(
            f"split_target expects a pandas DataFrame; got {type(frame).__name__} instead."
        )
    columns = [_column_str(name) for name in frame.columns]
    if not isinstance(target, str) or target not in columns:
        raise ShrinkageError(
            f"The 'target' column {target!r} is not in {source}; columns are: {_listing(columns)}."
        )
    if columns.count(target) > 1:
        raise ShrinkageError(
            f"The 'target' column {target!r} appears {columns.count(target)} times in {source}."
        )
    if len(columns) == 1:
        raise ShrinkageError(
            f"There are no feature columns in {source}: "
            f"the 'target' column {target!r} is its only column."
        )
    if len(frame) == 0:
        raise ShrinkageError(f"There are no rows in {source}.")
    position = columns.index(target)
    y = frame.iloc[:, position].rename(target)
    X = frame.drop(columns=frame.columns[position])
    X.columns = [name for name in columns if name != target]

    missing = _missing_mask(y)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ShrinkageError(
            f"The 'target' column {target!r} has a missing value in {_row(y.index, first)} "
            f"(got {_shown(y.iloc[first])!r}); drop the rows with no target or fill them in."
        )
    if _is_numeric(y):
        infinite = np.isinf(_as_float(y))
        if infinite.any():
            first = int(np.flatnonzero(infinite)[0])
            raise ShrinkageError(
                f"The 'target' column {target!r} has an infinite value in "
                f"{_row(y.index, first)} (got {_shown(y.iloc[first])!r})."
            )
    return X, y


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
    present = y[~_missing_mask(y)]
    if len(present) == 0:
        raise ShrinkageError(f"The 'target' column {name!r} has no values.")
    numeric = _is_numeric(present)

    if task is None:
        task = CLASSIFICATION
        if numeric:
            values = _as_float(present)
            values = values[np.isfinite(values)]
            n_unique = len(np.unique(values))
            integral = bool(np.all(values == np.round(values)))
            few = n_unique <= 2 or (n_unique <= MAX_AUTO_CLASSES and 2 * n_unique <= len(values))
            task = CLASSIFICATION if integral and few else REGRESSION

    if task == REGRESSION and not numeric:
        bad = _first_non_numeric(present)
        raise ShrinkageError(
            f"The 'target' column {name!r} is not numeric (got {_shown(present.iloc[bad])!r} in "
            f"{_row(present.index, bad)}), so it cannot be a regression target; "
            "use task='classification' (CLI: --task classification)."
        )
    if task == CLASSIFICATION:
        classes = {_category_str(v) for v in present.to_numpy(dtype=object)}
        if len(classes) < 2:
            raise ShrinkageError(
                f"The 'target' column {name!r} has a single class, "
                f"{_shown(present.iloc[0])!r}, in all {len(present)} rows; "
                "classification needs at least 2 classes."
            )
    return task


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
    missing = _missing_mask(y)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ShrinkageError(
            f"The 'target' column {name!r} has a missing value in {_row(y.index, first)} "
            f"(got {_shown(y.iloc[first])!r})."
        )
    if isinstance(y.dtype, pd.CategoricalDtype):
        y = y.astype(y.cat.categories.dtype)

    if task == REGRESSION:
        if not _is_numeric(y):
            bad = _first_non_numeric(y)
            raise ShrinkageError(
                f"The 'target' column {name!r} is not numeric (got {_shown(y.iloc[bad])!r} in "
                f"{_row(y.index, bad)}), so it cannot be a regression target."
            )
        values = _as_float(y)
        infinite = ~np.isfinite(values)
        if infinite.any():
            first = int(np.flatnonzero(infinite)[0])
            raise ShrinkageError(
                f"The 'target' column {name!r} has an infinite value in "
                f"{_row(y.index, first)} (got {_shown(y.iloc[first])!r})."
            )
        too_large = np.abs(values) > _FLOAT32_MAX
        if too_large.any():
            first = int(np.flatnonzero(too_large)[0])
            raise ShrinkageError(
                f"The 'target' column {name!r} has a value too large for float32 in "
                f"{_row(y.index, first)} (got {_shown(y.iloc[first])!r}); values must lie "
                f"within +-{_FLOAT32_MAX:.7g}."
            )
        return values.astype(np.float32), None

    if ptypes.is_bool_dtype(y.dtype):
        values = y.to_numpy(dtype=bool)
    elif _is_numeric(y):
        raw = pd.to_numeric(y)
        integer = ptypes.is_integer_dtype(raw.dtype)
        values = raw.to_numpy(dtype=np.int64 if integer else np.float64)
    else:
        values = np.asarray([_category_str(v) for v in y.to_numpy(dtype=object)], dtype=object)
    uniques = sorted(set(values.tolist()))
    lookup = {value: code for code, value in enumerate(uniques)}
    codes = np.fromiter((lookup[v] for v in values.tolist()), dtype=np.int64, count=len(values))
    return codes, uniques


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


def check_rows_for_folds(n_rows: int, folds: int) -> None:
    """Check that cross-validation with ``folds`` folds is possible on ``n_rows`` rows.

    Args:
        n_rows: the number of rows in the data.
        folds: the number of cross-validation folds.

    Raises:
        ShrinkageError: when ``folds`` is not an integer >= 2, or there are fewer rows than
            folds (a fold would be empty).

    Example:
        >>> check_rows_for_folds(100, 5)
    """
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ShrinkageError(
            f"The 'folds' parameter must be an integer >= 2. Got {folds!r} instead."
        )
    if n_rows < folds:
        raise ShrinkageError(
            f"The data has {n_rows} rows, fewer than 'folds'={folds}; use at most "
            f"{max(n_rows, 2)} folds or add rows."
        )


# --------------------------------------------------------------------------- features


def _as_frame(X: Any, names: list[str] | None, caller: str) -> pd.DataFrame:
    """A DataFrame with string column names; arrays get ``names`` (or ``x0, x1, ...``)."""
    if isinstance(X, pd.DataFrame):
        frame = X.copy(deep=False)
        frame.columns = [_column_str(name) for name in X.columns]
    else:
        array = np.asarray(X)
        if array.ndim != 2:
            raise ShrinkageError(
                f"{caller} expects a DataFrame or a 2-D array; got an array of shape {array.shape}."
            )
        if names is None:
            names = [f"x{i}" for i in range(array.shape[1])]
        elif array.shape[1] != len(names):
            raise ShrinkageError(
                f"{caller} got an array with {array.shape[1]} columns; the preprocessor was "
                f"fitted on {len(names)}: {_listing(names)}."
            )
        frame = pd.DataFrame(array, columns=names)
        frame = frame.infer_objects() if array.dtype == object else frame
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise ShrinkageError(
            f"{caller} got duplicate column names: {_listing(dict.fromkeys(duplicated))}."
        )
    # NumPy drops trailing NULs from strings, so scikit-learn would look up another name.
    with_nul = [name for name in frame.columns if "\x00" in name]
    if with_nul:
        raise ShrinkageError(
            f"{caller} got a column name holding a NUL character: {with_nul[0]!r}; rename it."
        )
    return frame


class Preprocessor:
    """Standardize numeric columns and one-hot encode categorical ones, fitted on train rows.

    Numeric columns (integer / float dtype, or an object column holding only numbers) go
    through ``StandardScaler``: ``(x - mean) / std`` with the training rows' mean and
    population standard deviation (a constant column is divided by 1, never 0). Categorical
    columns (strings, bools, pandas categories) go through ``OneHotEncoder`` with
    ``handle_unknown="ignore"``: one 0/1 column per category seen in training, all zeros for
    a category never seen. Category values are compared as text (``1``, ``1.0`` and ``"1"``
    are the same category). The output lists the numeric columns first, then the categorical
    ones, each group in input order.

    Missing values (NaN, None, blank strings) are refused unless ``impute=True``, which fills
    them with the training median (numeric) or most frequent value (categorical) before
    scaling / encoding. Infinite values are always refused.

    Args:
        impute: fill missing feature values instead of refusing them.

    Attributes:
        feature_names_in_: the input columns, in fit order.
        numeric_columns_: the input columns treated as numeric.
        categorical_columns_: the input columns treated as categorical.
        feature_names_out_: one name per output column: ``"age"``, ``"color=red"``.
        n_features_out_: the number of output columns.

    Example:
        >>> frame = pd.DataFrame({"age": [20.0, 40.0], "color": ["red", "blue"]})
        >>> p = Preprocessor().fit(frame)
        >>> p.feature_names_out_
        ['age', 'color=blue', 'color=red']
        >>> p.transform(frame).tolist()
        [[-1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """

    def __init__(self, impute: bool = False) -> None:
        self.impute = impute

    # ----------------------------------------------------------------- fitting

    def fit(self, X: pd.DataFrame) -> Preprocessor:
        """Learn column kinds, scaling statistics, categories and fill values from ``X``.

        Args:
            X: the training rows' feature columns (a DataFrame; a 2-D array gets column
                names ``x0, x1, ...``).

        Returns:
            ``self``.

        Raises:
            ShrinkageError: when ``impute`` is not a bool, ``X`` has no rows or no columns, a
                column's dtype is neither numeric nor categorical, a value is infinite, a
                value is missing (without ``impute``), or a column has no value at all.
        """
        if not isinstance(self.impute, (bool, np.bool_)):
            raise ShrinkageError(
                f"The 'impute' parameter must be True or False. Got {self.impute!r} instead."
            )
        frame = _as_frame(X, None, "Preprocessor.fit")
        if frame.shape[1] == 0:
            raise ShrinkageError("Preprocessor.fit got no feature columns.")
        if len(frame) == 0:
            raise ShrinkageError("Preprocessor.fit needs at least one row; got 0.")
        numeric, categorical = [], []
        for name in frame.columns:
            column = frame[name]
            if _is_numeric(column):
                numeric.append(name)
            elif _is_categorical(column):
                categorical.append(name)
            else:
                raise ShrinkageError(
                    f"The feature column {name!r} has dtype {column.dtype}, which is neither "
                    "numeric nor categorical; convert it to numbers or strings first."
                )
        impute = bool(self.impute)
        prepared = _prepare(frame, numeric, categorical, impute)
        if impute:
            for name in prepared.columns:
                if prepared[name].isna().all():
                    raise ShrinkageError(
                        f"The feature column {name!r} has no values to impute from: all "
                        f"{len(prepared)} rows are missing."
                    )
        transformer = _column_transformer(numeric, categorical, impute, categories=None)
        transformer.fit(prepared)
        self._set_fitted(transformer, list(frame.columns), numeric, categorical)
        return self

    def _set_fitted(
        self,
        transformer: ColumnTransformer,
        columns: list[str],
        numeric: list[str],
        categorical: list[str],
    ) -> None:
        self.transformer_ = transformer
        self.feature_names_in_ = list(columns)
        self.numeric_columns_ = list(numeric)
        self.categorical_columns_ = list(categorical)
        names = list(numeric)
        if categorical:
            encoder = transformer.named_transformers_["categorical"][-1]
            for name, cats in zip(categorical, encoder.categories_):
                names.extend(f"{name}={cat}" for cat in cats)
        self.feature_names_out_ = names
        self.n_features_out_ = len(names)

    def _check_fitted(self) -> None:
        if not hasattr(self, "transformer_"):
            raise ShrinkageError("This Preprocessor is not fitted yet; call fit() first.")

    # ----------------------------------------------------------------- transforming

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Apply the fitted scaling and encoding to ``X``.

        Columns are matched by name; extra columns are ignored. A 2-D array is matched by
        position to the fitted columns.

        Args:
            X: rows with (at least) the fitted feature columns.

        Returns:
            A float32 array of shape ``(len(X), n_features_out_)``.

        Raises:
            ShrinkageError: when the preprocessor is not fitted, fitted columns are missing,
                a numeric column holds non-numeric values, a value is infinite, or a value is
                missing (without ``impute``).
        """
        self._check_fitted()
        frame = _as_frame(X, self.feature_names_in_, "Preprocessor.transform")
        absent = [name for name in self.feature_names_in_ if name not in frame.columns]
        if absent:
            raise ShrinkageError(
                f"The data is missing {len(absent)} column(s) the preprocessor was fitted "
                f"on: {_listing(absent)}; columns are: {_listing(frame.columns)}."
            )
        if len(frame) == 0:
            return np.zeros((0, self.n_features_out_), dtype=np.float32)
        for name in self.numeric_columns_:
            _check_numeric_column(frame[name], name)
        prepared = _prepare(
            frame, self.numeric_columns_, self.categorical_columns_, bool(self.impute)
        )
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.ascontiguousarray(self.transformer_.transform(prepared), dtype=np.float32)
        bad = ~np.isfinite(out)
        if bad.any():
            # Only a numeric column can overflow: (x - mean) / scale far outside the fit range.
            row, col = (int(i) for i in np.argwhere(bad)[0])
            name = self.feature_names_out_[col]
            raise ShrinkageError(
                f"The feature column {name!r} standardizes to a value beyond float32 range in "
                f"{_row(frame.index, row)} (got {_shown(frame[name].iloc[row])!r}); rescale it."
            )
        return out

    def fit_transform(self, X: pd.DataFrame) -> np.ndarray:
        """Fit on ``X``, then transform it.

        Args:
            X: the training rows' feature columns.

        Returns:
            A float32 array of shape ``(len(X), n_features_out_)``.

        Raises:
            ShrinkageError: as :meth:`fit` and :meth:`transform`.
        """
        return self.fit(X).transform(X)

    # ----------------------------------------------------------------- persistence

    def to_config(self) -> dict:
        """Everything needed to rebuild this fitted preprocessor, as JSON-native values.

        Returns:
            A dict of str, bool, int, float, None and lists / dicts of those:
            ``{"type", "version", "impute", "columns", "n_samples_seen", "numeric": [{"name",
            "mean", "var", "scale", "fill"}], "categorical": [{"name", "categories",
            "fill"}]}``. ``fill`` is None without ``impute``.

        Raises:
            ShrinkageError: when the preprocessor is not fitted.
        """
        self._check_fitted()
        impute = bool(self.impute)
        numeric_cfg: list[dict] = []
        categorical_cfg: list[dict] = []
        n_seen = 0
        if self.numeric_columns_:
            pipeline = self.transformer_.named_transformers_["numeric"]
            scaler = pipeline[-1]
            fills = pipeline[0].statistics_ if impute else [None] * len(self.numeric_columns_)
            n_seen = int(np.max(scaler.n_samples_seen_))
            for i, name in enumerate(self.numeric_columns_):
                numeric_cfg.append(
                    {
                        "name": name,
                        "mean": float(scaler.mean_[i]),
                        "var": float(scaler.var_[i]),
                        "scale": float(scaler.scale_[i]),
                        "fill": None if fills[i] is None else float(fills[i]),
                    }
                )
        if self.categorical_columns_:
            pipeline = self.transformer_.named_transformers_["categorical"]
            encoder = pipeline[-1]
            fills = pipeline[0].statistics_ if impute else [None] * len(self.categorical_columns_)
            for i, name in enumerate(self.categorical_columns_):
                categorical_cfg.append(
                    {
                        "name": name,
                        "categories": [str(cat) for cat in encoder.categories_[i]],
                        "fill": None if fills[i] is None else str(fills[i]),
                    }
                )
        return {
            "type": _CONFIG_TYPE,
            "version": _CONFIG_VERSION,
            "impute": impute,
            "columns": list(self.feature_names_in_),
            "n_samples_seen": n_seen,
            "numeric": numeric_cfg,
            "categorical": categorical_cfg,
        }

    @classmethod
    def from_config(cls, cfg: dict) -> Preprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_config` output, without pickle.

        The sklearn objects are made again from the stored statistics: the imputers are fitted
        on one synthetic row holding exactly the stored fill values, the encoder gets the
        stored categories explicitly, and the scaler's ``mean_`` / ``var_`` / ``scale_`` are
        set to the stored values, so ``transform`` gives bit-identical output.

        Args:
            cfg: the dict from :meth:`to_config` (e.g. after a JSON round trip).

        Returns:
            A fitted :class:`Preprocessor`.

        Raises:
            ShrinkageError: when ``cfg`` is malformed; the message names the bad entry.

        Example:
            >>> import json
            >>> frame = pd.DataFrame({"a": [1.0, 3.0], "b": ["x", "y"]})
            >>> p = Preprocessor().fit(frame)
            >>> q = Preprocessor.from_config(json.loads(json.dumps(p.to_config())))
            >>> bool((q.transform(frame) == p.transform(frame)).all())
            True
        """
        impute, columns, numeric, categorical, n_seen = _parse_config(cfg)
        numeric_names = [entry["name"] for entry in numeric]
        categorical_names = [entry["name"] for entry in categorical]
        categories = [np.array(entry["categories"], dtype=object) for entry in categorical]
        row: dict[str, Any] = {}
        for entry in numeric:
            row[entry["name"]] = [entry["fill"] if impute else 0.0]
        for entry in categorical:
            row[entry["name"]] = [entry["fill"] if impute else entry["categories"][0]]
        synthetic = pd.DataFrame(
            {name: pd.Series(row[name], dtype=np.float64) for name in numeric_names}
            | {name: pd.Series(row[name], dtype=object) for name in categorical_names}
        )[numeric_names + categorical_names]
        transformer = _column_transformer(numeric_names, categorical_names, impute, categories)
        transformer.fit(synthetic)
        if numeric:
            scaler = transformer.named_transformers_["numeric"][-1]
            scaler.mean_ = np.array([entry["mean"] for entry in numeric], dtype=np.float64)
            scaler.var_ = np.array([entry["var"] for entry in numeric], dtype=np.float64)
            scaler.scale_ = np.array([entry["scale"] for entry in numeric], dtype=np.float64)
            scaler.n_samples_seen_ = n_seen
        self = cls(impute=impute)
        self._set_fitted(transformer, columns, numeric_names, categorical_names)
        return self

    def __repr__(self) -> str:
        return f"Preprocessor(impute={self.impute!r})"


def _check_numeric_column(column: pd.Series, name: str) -> None:
    """At transform time a column fitted as numeric must still hold numbers."""
    if _is_numeric(column):
        return
    if ptypes.is_bool_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype):
        bad = 0
    else:
        missing = _missing_mask(column)
        unparsed = pd.to_numeric(column.astype(object), errors="coerce").isna().to_numpy()
        hits = np.flatnonzero(unparsed & ~missing)
        if not len(hits):
            return  # numbers written as text, e.g. "1.5": fine
        bad = int(hits[0])
    raise ShrinkageError(
        f"The feature column {name!r} was numeric when the preprocessor was fitted but now "
        f"holds non-numeric values (got {_shown(column.iloc[bad])!r} in {_row(column.index, bad)})."
    )


def _prepare(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], impute: bool
) -> pd.DataFrame:
    """Numeric columns as float64, categorical as object str, NaN for missing; checked."""
    data: dict[str, pd.Series] = {}
    for name in numeric:
        column = frame[name]
        missing = _missing_mask(column)
        values = _as_float(column)
        infinite = np.isinf(values)
        if infinite.any():
            first = int(np.flatnonzero(infinite)[0])
            raise ShrinkageError(
                f"The feature column {name!r} has an infinite value in "
                f"{_row(frame.index, first)} (got {_shown(column.iloc[first])!r}); infinite values "
                "are never accepted."
            )
        too_large = np.abs(values) > _FLOAT32_MAX
        if too_large.any():
            first = int(np.flatnonzero(too_large)[0])
            raise ShrinkageError(
                f"The feature column {name!r} has a value too large for float32 in "
                f"{_row(frame.index, first)} (got {_shown(column.iloc[first])!r}); values must "
                f"lie within +-{_FLOAT32_MAX:.7g}."
            )
        values[missing] = np.nan
        _refuse_missing(name, missing, frame.index, column, impute)
        data[name] = pd.Series(values, index=frame.index, dtype=np.float64)
    for name in categorical:
        column = frame[name]
        missing = _missing_mask(column)
        _refuse_missing(name, missing, frame.index, column, impute)
        raw = column.to_numpy(dtype=object)
        values = np.array(
            [np.nan if gap else _category_str(v) for v, gap in zip(raw, missing)], dtype=object
        )
        data[name] = pd.Series(values, index=frame.index, dtype=object)
    return pd.DataFrame(data, index=frame.index)[numeric + categorical]


def _refuse_missing(
    name: str, missing: np.ndarray, index: pd.Index, column: pd.Series, impute: bool
) -> None:
    if impute or not missing.any():
        return
    first = int(np.flatnonzero(missing)[0])
    raise ShrinkageError(
        f"The feature column {name!r} has a missing value in {_row(index, first)} "
        f"(got {_shown(column.iloc[first])!r}); pass impute=True (CLI: --impute) to fill "
        "missing values with the training median / most frequent value."
    )


def _column_transformer(
    numeric: list[str],
    categorical: list[str],
    impute: bool,
    categories: list[np.ndarray] | None,
) -> ColumnTransformer:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if numeric:
        steps = [("impute", SimpleImputer(strategy="median"))] if impute else []
        steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), list(numeric)))
    if categorical:
        steps = [("impute", SimpleImputer(strategy="most_frequent"))] if impute else []
        encoder = OneHotEncoder(
            categories="auto" if categories is None else categories,
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float64,
        )
        steps.append(("encode", encoder))
        transformers.append(("categorical", Pipeline(steps), list(categorical)))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def _parse_config(cfg: Any) -> tuple[bool, list[str], list[dict], list[dict], int]:
    """Validate a preprocessor config; every problem is one ShrinkageError naming the entry."""

    def bad(where: str, what: str, got: Any) -> ShrinkageError:
        return ShrinkageError(
            f"The preprocessor config is malformed: {where} must be {what}; got {got!r}."
        )

    def number(value: Any, where: str, positive: bool = False) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or (positive and value <= 0):
            raise bad(where, "a positive finite number" if positive else "a finite number", value)
        return float(value)

    if not isinstance(cfg, dict):
        raise bad("the config", "a dict", type(cfg).__name__)
    if cfg.get("type") != _CONFIG_TYPE:
        raise bad("'type'", repr(_CONFIG_TYPE), cfg.get("type"))
    if cfg.get("version") != _CONFIG_VERSION:
        raise bad("'version'", str(_CONFIG_VERSION), cfg.get("version"))
    impute = cfg.get("impute")
    if not isinstance(impute, bool):
        raise bad("'impute'", "true or false", impute)
    n_seen = cfg.get("n_samples_seen")
    if isinstance(n_seen, bool) or not isinstance(n_seen, int) or n_seen < 0:
        raise bad("'n_samples_seen'", "a non-negative integer", n_seen)
    columns = cfg.get("columns")
    if (
        not isinstance(columns, list)
        or not columns
        or not all(isinstance(c, str) for c in columns)
        or len(set(columns)) != len(columns)
    ):
        raise bad("'columns'", "a non-empty list of distinct strings", columns)

    numeric = cfg.get("numeric")
    categorical = cfg.get("categorical")
    for key, value in (("numeric", numeric), ("categorical", categorical)):
        if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
            raise bad(f"'{key}'", "a list of objects", value)
    numeric_out: list[dict] = []
    for i, entry in enumerate(numeric):
        where = f"numeric[{i}]"
        fill = entry.get("fill")
        numeric_out.append(
            {
                "name": entry.get("name"),
                "mean": number(entry.get("mean"), f"{where}['mean']"),
                "var": number(entry.get("var"), f"{where}['var']"),
                "scale": number(entry.get("scale"), f"{where}['scale']", positive=True),
                "fill": number(fill, f"{where}['fill']") if impute else None,
            }
        )
        if numeric_out[-1]["var"] < 0:
            raise bad(f"{where}['var']", "a non-negative number", entry.get("var"))
        if not impute and fill is not None:
            raise bad(f"{where}['fill']", "null when 'impute' is false", fill)
    categorical_out: list[dict] = []
    for i, entry in enumerate(categorical):
        where = f"categorical[{i}]"
        cats = entry.get("categories")
        if (
            not isinstance(cats, list)
            or not cats
            or not all(isinstance(c, str) for c in cats)
            or len(set(cats)) != len(cats)
        ):
            raise bad(f"{where}['categories']", "a non-empty list of distinct strings", cats)
        fill = entry.get("fill")
        if impute and fill not in cats:
            raise bad(f"{where}['fill']", "one of its categories", fill)
        if not impute and fill is not None:
            raise bad(f"{where}['fill']", "null when 'impute' is false", fill)
        categorical_out.append({"name": entry.get("name"), "categories": cats, "fill": fill})

    names = [entry["name"] for entry in numeric_out + categorical_out]
    if sorted(names, key=str) != sorted(columns):
        raise bad(
            "the 'numeric' and 'categorical' names",
            f"the 'columns' ({_listing(columns)})",
            names,
        )
    return impute, columns, numeric_out, categorical_out, n_seen


# --------------------------------------------------------------------------- all together


@dataclass
class Dataset:
    """A table split into features and target, with its task decided.

    Attributes:
        X: the feature columns (not yet preprocessed: the estimator fits a
            :class:`Preprocessor` on its training rows).
        y: the target column.
        task: ``"classification"`` or ``"regression"``.
        source: where the data came from (the path as given).
    """

    X: pd.DataFrame
    y: pd.Series
    task: str
    source: str


def load_dataset(
    path: str | os.PathLike,
    target: str,
    task: str | None = None,
    impute: bool = False,
) -> Dataset:
    """Read a table, split off the target, decide the task and check the features.

    Feature values are checked here so that a bad file fails before any training: infinite
    values always, missing values unless ``impute`` (the filling itself happens later, in a
    :class:`Preprocessor` fitted on training rows).

    Args:
        path: a ``.csv``, ``.tsv``, ``.parquet`` or ``.pq`` file.
        target: the name of the target column.
        task: ``"classification"``, ``"regression"``, or None to detect it
            (see :func:`detect_task`).
        impute: whether missing feature values will be imputed.

    Returns:
        A :class:`Dataset`.

    Raises:
        ShrinkageError: as :func:`read_table`, :func:`split_target`, :func:`detect_task`,
            and :meth:`Preprocessor.fit` for the feature checks.

    Example:
        >>> data = load_dataset("houses.csv", target="price")  # doctest: +SKIP
        >>> data.task  # doctest: +SKIP
        'regression'
    """
    source = os.fspath(path)
    frame = read_table(path)
    X, y = split_target(frame, target, source=source)
    task = detect_task(y, task)
    Preprocessor(impute=impute).fit(X)
    return Dataset(X=X, y=y, task=task, source=source)
