"""Preprocessing: standardize numeric columns and one-hot encode categorical ones.

The :class:`Preprocessor` is fitted on training rows only and saved as plain JSON
(``to_config`` / ``from_config``); nothing here ever pickles.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shrinkage.errors import ShrinkageError, did_you_mean

if TYPE_CHECKING:  # scikit-learn costs a second to import; only a Preprocessor needs it
    from sklearn.compose import ColumnTransformer
from shrinkage.data._columns import (
    FLOAT32_MAX,
    as_float,
    category_str,
    column_str,
    is_categorical,
    is_numeric,
    listing,
    missing_mask,
    row_label,
    shown_value,
)

_CONFIG_TYPE = "shrinkage.Preprocessor"
_CONFIG_VERSION = 1


# --------------------------------------------------------------------------- features


def _as_frame(X: Any, names: list[str] | None, caller: str) -> pd.DataFrame:
    """A DataFrame with string column names; arrays get ``names`` (or ``x0, x1, ...``)."""
    if isinstance(X, pd.DataFrame):
        frame = X.copy(deep=False)
        frame.columns = [column_str(name) for name in X.columns]
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
                f"fitted on {len(names)}: {listing(names)}."
            )
        frame = pd.DataFrame(array, columns=names)
        frame = frame.infer_objects() if array.dtype == object else frame
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise ShrinkageError(
            f"{caller} got duplicate column names: {listing(dict.fromkeys(duplicated))}."
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

    With ``standardize=False`` numeric columns pass through in their own units (checked,
    imputed, as float32), as Keras and scikit-learn's estimators take them.

    Args:
        impute: fill missing feature values instead of refusing them.
        standardize: scale numeric columns to mean 0 and standard deviation 1.

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

    def __init__(self, impute: bool = False, standardize: bool = True) -> None:
        self.impute = impute
        self.standardize = standardize

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
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise ShrinkageError(
                f"The 'standardize' parameter must be True or False. Got {self.standardize!r} "
                "instead."
            )
        frame = _as_frame(X, None, "Preprocessor.fit")
        if frame.shape[1] == 0:
            raise ShrinkageError("Preprocessor.fit got no feature columns.")
        if len(frame) == 0:
            raise ShrinkageError("Preprocessor.fit needs at least one row; got 0.")
        numeric, categorical = [], []
        for name in frame.columns:
            column = frame[name]
            if is_numeric(column):
                numeric.append(name)
            elif is_categorical(column):
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
        if numeric and not self.standardize:
            scaler = transformer.named_transformers_["numeric"][-1]
            scaler.mean_ = np.zeros_like(scaler.mean_)  # (x - 0) / 1: the values as they are
            scaler.scale_ = np.ones_like(scaler.scale_)
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
                f"on: {listing(absent)}; columns are: {listing(frame.columns)}."
                f"{did_you_mean(absent[0], [str(c) for c in frame.columns])}"
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
                f"{row_label(frame.index, row)} (got {shown_value(frame[name].iloc[row])!r}); "
                "rescale it."
            )
        return out

    def scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, scale)`` per output column: ``out = (x - mean) / scale``.

        The training statistics on the numeric columns (0 and 1 without ``standardize``),
        0 and 1 on the one-hot columns: how a linear model on the outputs is written back
        in the units of the raw columns.

        Returns:
            Two float64 arrays of length ``n_features_out_``.

        Raises:
            ShrinkageError: when the preprocessor is not fitted.
        """
        self._check_fitted()
        mean = np.zeros(self.n_features_out_)
        scale = np.ones(self.n_features_out_)
        if self.numeric_columns_:
            scaler = self.transformer_.named_transformers_["numeric"][-1]
            k = len(self.numeric_columns_)
            mean[:k], scale[:k] = scaler.mean_, scaler.scale_
        return mean, scale

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
            ``{"type", "version", "impute", "standardize", "columns", "n_samples_seen",
            "numeric": [{"name", "mean", "var", "scale", "fill"}], "categorical": [{"name",
            "categories", "fill"}]}``. ``fill`` is None without ``impute``; without
            ``standardize`` every ``mean`` is 0 and every ``scale`` 1.

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
            "standardize": bool(self.standardize),
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
        standardize = cfg.get("standardize", True)
        if not isinstance(standardize, bool):
            raise ShrinkageError(
                "The preprocessor config is malformed: 'standardize' must be true or false; "
                f"got {standardize!r}."
            )
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
        self = cls(impute=impute, standardize=standardize)
        self._set_fitted(transformer, columns, numeric_names, categorical_names)
        return self

    def __repr__(self) -> str:
        if self.standardize is True:
            return f"Preprocessor(impute={self.impute!r})"
        return f"Preprocessor(impute={self.impute!r}, standardize={self.standardize!r})"


def _check_numeric_column(column: pd.Series, name: str) -> None:
    """At transform time a column fitted as numeric must still hold numbers."""
    if is_numeric(column):
        return
    if ptypes.is_bool_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype):
        bad = 0
    else:
        missing = missing_mask(column)
        unparsed = pd.to_numeric(column.astype(object), errors="coerce").isna().to_numpy()
        hits = np.flatnonzero(unparsed & ~missing)
        if not len(hits):
            return  # numbers written as text, e.g. "1.5": fine
        bad = int(hits[0])
    raise ShrinkageError(
        f"The feature column {name!r} was numeric when the preprocessor was fitted but now "
        f"holds non-numeric values (got {shown_value(column.iloc[bad])!r} in "
        f"{row_label(column.index, bad)})."
    )


def _prepare(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], impute: bool
) -> pd.DataFrame:
    """Numeric columns as float64, categorical as object str, NaN for missing; checked."""
    data: dict[str, pd.Series] = {}
    for name in numeric:
        column = frame[name]
        missing = missing_mask(column)
        values = as_float(column)
        infinite = np.isinf(values)
        if infinite.any():
            first = int(np.flatnonzero(infinite)[0])
            raise ShrinkageError(
                f"The feature column {name!r} has an infinite value in "
                f"{row_label(frame.index, first)} (got {shown_value(column.iloc[first])!r}); "
                "infinite values are never accepted."
            )
        too_large = np.abs(values) > FLOAT32_MAX
        if too_large.any():
            first = int(np.flatnonzero(too_large)[0])
            raise ShrinkageError(
                f"The feature column {name!r} has a value too large for float32 in "
                f"{row_label(frame.index, first)} (got {shown_value(column.iloc[first])!r}); "
                f"values must lie within +-{FLOAT32_MAX:.7g}."
            )
        values[missing] = np.nan
        _refuse_missing(name, missing, frame.index, column, impute)
        data[name] = pd.Series(values, index=frame.index, dtype=np.float64)
    for name in categorical:
        column = frame[name]
        missing = missing_mask(column)
        _refuse_missing(name, missing, frame.index, column, impute)
        raw = column.to_numpy(dtype=object)
        values = np.array(
            [np.nan if gap else category_str(v) for v, gap in zip(raw, missing)], dtype=object
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
        f"The feature column {name!r} has a missing value in {row_label(index, first)} "
        f"(got {shown_value(column.iloc[first])!r}); pass impute=True (CLI: --impute) to fill "
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
            f"the 'columns' ({listing(columns)})",
            names,
        )
    return impute, columns, numeric_out, categorical_out, n_seen
