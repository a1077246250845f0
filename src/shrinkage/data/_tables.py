"""Reading a user's table: CSV / TSV / Parquet in, a validated DataFrame out, the target split off.

Every bad input raises :class:`~shrinkage.errors.ShrinkageError` with one line naming the
argument, column or row and the value received (rows as in :mod:`shrinkage.data._columns`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shrinkage._io import check_input_file, path_problem
from shrinkage.data._columns import (
    as_float,
    column_str,
    is_numeric,
    listing,
    missing_mask,
    row_label,
    shown_value,
)
from shrinkage.data._preprocessing import Preprocessor
from shrinkage.data._target import detect_task
from shrinkage.errors import ShrinkageError, did_you_mean

_CSV_SEPARATORS = {".csv": ",", ".tsv": "\t"}
_PARQUET_EXTENSIONS = (".parquet", ".pq")
SUPPORTED_EXTENSIONS = (*_CSV_SEPARATORS, *_PARQUET_EXTENSIONS)


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
    file = check_input_file(path, "The data file")
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise ShrinkageError(
            f"The data file '{shown}' has an unsupported extension {file.suffix!r}; "
            f"supported extensions are: {listing(SUPPORTED_EXTENSIONS)}."
        )
    try:
        with open(file, "rb") as handle:  # a regular file (checked): this cannot block
            first = handle.read(1)
    except OSError as err:
        raise ShrinkageError(f"The data file '{shown}' {path_problem(file, err)}.") from None
    if not first:
        # Some regular files report 0 bytes and still have content (/proc files): only an
        # empty read says empty.
        raise ShrinkageError(f"The data file '{shown}' is empty (0 bytes).")

    if suffix in _CSV_SEPARATORS:
        frame, header = _read_delimited(file, shown, _CSV_SEPARATORS[suffix])
    else:
        frame = _read_parquet(file, shown)
        header = [column_str(name) for name in frame.columns]

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
            f"The data file '{shown}' has a header ({listing(frame.columns)}) but no data rows."
        )
    frame.columns = [column_str(name) for name in frame.columns]
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
    """The raw header and first data row (pandas renames a repeated 'a' to 'a.1').

    Fields of any length are read, as pandas reads them (the csv module's own limit is
    131,072 characters, a process-wide setting restored afterwards).
    """
    rows: list[list[str]] = []
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, _MAX_FIELD))
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            for fields in csv.reader(handle, delimiter=sep):
                if fields:  # pandas skips blank lines too
                    rows.append(fields)
                if len(rows) == 2:
                    break
    finally:
        csv.field_size_limit(limit)
    return (rows[0] if rows else []), (rows[1] if len(rows) > 1 else None)


# The largest field the pre-check reads: C's long on every platform (2**31 - 1).
_MAX_FIELD = 2**31 - 1


def _read_parquet(file: Path, shown: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(file)
    except ImportError as err:
        raise ShrinkageError(
            f"Reading the Parquet file '{shown}' needs pyarrow: pip install 'shrinkage[parquet]'."
        ) from err
    except (ValueError, OSError, TypeError) as err:
        raise _parse_error(shown, "Parquet", err) from err


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
    columns = [column_str(name) for name in frame.columns]
    if not isinstance(target, str) or target not in columns:
        raise ShrinkageError(
            f"The 'target' column {target!r} is not in {source}; columns are: {listing(columns)}."
            f"{did_you_mean(target, columns)}"
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

    missing = missing_mask(y)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise ShrinkageError(
            f"The 'target' column {target!r} has a missing value in {row_label(y.index, first)} "
            f"(got {shown_value(y.iloc[first])!r}); drop the rows with no target or fill them in."
        )
    if is_numeric(y):
        infinite = np.isinf(as_float(y))
        if infinite.any():
            first = int(np.flatnonzero(infinite)[0])
            raise ShrinkageError(
                f"The 'target' column {target!r} has an infinite value in "
                f"{row_label(y.index, first)} (got {shown_value(y.iloc[first])!r})."
            )
    return X, y


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
