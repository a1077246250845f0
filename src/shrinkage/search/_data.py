"""The data a search trains on: checked, its target encoded, preprocessed fold by fold.

Inputs are preprocessed per fold, from that fold's training rows only (numeric columns
standardized, categorical columns one-hot encoded): validation rows never inform the
scaling. :func:`prepare_data` returns the :class:`~shrinkage.search.SearchData` every chunk
shares: one preprocessed copy of all rows per fold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from shrinkage._names import REGRESSION
from shrinkage.data import encode_labels, encode_regression
from shrinkage.errors import ShrinkageError
from shrinkage.search._candidates import SearchData
from shrinkage.search.engine import (
    TrainSettings,
)


def check_data(X: Any, y: Any, any_shape: bool) -> tuple[Any, np.ndarray]:
    if isinstance(X, pd.DataFrame):
        n = len(X)
    else:
        if isinstance(X, Tensor):
            X = X.detach().cpu().numpy()
        X = np.asarray(X)
        if X.dtype == object:
            X = pd.DataFrame(X).infer_objects()
            n = len(X)
        else:
            if X.ndim != 2 and not (any_shape and X.ndim >= 2):
                raise ShrinkageError(
                    f"The 'X' parameter must be a 2-D array or a DataFrame. Got an array of "
                    f"shape {X.shape} instead."
                )
            n = X.shape[0]
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ShrinkageError(
                f"The 'y' parameter must be one column. Got a table of shape {y.shape} instead."
            )
        y = y.iloc[:, 0]
    values = np.asarray(y.detach().cpu().numpy() if isinstance(y, Tensor) else y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ShrinkageError(
            f"The 'y' parameter must be 1-D (one value per row). Got shape {values.shape} instead."
        )
    if len(values) != n:
        raise ShrinkageError(
            f"The 'X' and 'y' parameters must have the same number of rows. Got {n} and "
            f"{len(values)} instead."
        )
    if n < 2:
        raise ShrinkageError(f"The data must have at least 2 rows to search. Got {n} instead.")
    return X, values


def encode_target_values(y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(codes, classes)`` of a classification target, or ``(values, None)`` (regression)."""
    if task == REGRESSION:
        return encode_regression(y), None
    if pd.isna(pd.Series(y)).any():
        raise ShrinkageError(
            f"The 'y' parameter has a missing value at row {int(np.argmax(pd.isna(y)))}."
        )
    return encode_labels(y, name="A classification search")


def prepare_data(
    X: Any,
    codes: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    settings: TrainSettings,
    hidden: tuple[int, ...],
    activation: str,
    scoring: str,
    factory: Callable[[], nn.Module] | None,
    impute: bool,
    device: str,
    *,
    standardize: bool = True,
    init: str = "torch",
) -> SearchData:
    """Preprocess per fold (training rows only) and put everything on the device."""
    from shrinkage.training import target_tensor

    raw_nd = not isinstance(X, pd.DataFrame) and np.asarray(X).ndim > 2
    if raw_nd:
        blocks = torch.as_tensor(np.asarray(X, dtype=np.float32))
        per_fold = False
    else:
        blocks = torch.as_tensor(np.concatenate(fold_features(X, folds, impute, standardize)))
        per_fold = True
    y = target_tensor(codes, settings.task, settings.n_classes, device)
    return SearchData(
        X=blocks.to(device),
        y=y,
        folds=folds,
        settings=settings,
        hidden=hidden,
        activation=activation,
        scoring=scoring,
        factory=factory,
        per_fold=per_fold,
        device=device,
        init=init,
        standardize=standardize,
    )


def plain_numeric(X: Any) -> bool:
    """A 2-D int/float array, every value finite and within float32's range."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype.kind not in "iuf":
        return False
    values = X.astype(np.float64, copy=False)
    return bool(np.isfinite(values).all() and (np.abs(values) <= np.finfo(np.float32).max).all())


def fold_features(
    X: Any, folds: list[tuple[np.ndarray, np.ndarray]], impute: bool, standardize: bool = True
) -> list[np.ndarray]:
    """Each fold's preprocessed copy of all rows, fitted on that fold's training rows.

    ``standardize=False`` leaves the numeric columns in their own units (the
    :class:`~shrinkage.data.Preprocessor` option the estimator passes).

    When a categorical value is missing from some fold's training rows, the folds' columns
    differ; they are aligned on the union of columns, a column a fold never saw being 0
    (exactly what that fold's preprocessor gives an unknown category).
    """
    from shrinkage.data import Preprocessor

    if plain_numeric(X):
        # All-numeric, finite: the Preprocessor would only run StandardScaler (on float64)
        # behind a ColumnTransformer, whose overhead is most of a small search's setup.
        from sklearn.preprocessing import StandardScaler

        values = X.astype(np.float64)
        if not standardize:
            return [values.astype(np.float32) for _ in folds]
        return [
            StandardScaler().fit(values[train]).transform(values).astype(np.float32)
            for train, _ in folds
        ]
    frame = X if isinstance(X, pd.DataFrame) else None
    outs, names = [], []
    for train, _ in folds:
        part = frame.iloc[train] if frame is not None else X[train]
        preprocessor = Preprocessor(impute=impute, standardize=standardize).fit(part)
        outs.append(preprocessor.transform(X).astype(np.float32))
        names.append(list(preprocessor.feature_names_out_))
    if all(n == names[0] for n in names):
        return outs
    union = list(dict.fromkeys(name for fold in names for name in fold))
    where = {name: i for i, name in enumerate(union)}
    aligned = []
    for out, fold_names in zip(outs, names):
        full = np.zeros((out.shape[0], len(union)), dtype=np.float32)
        full[:, [where[n] for n in fold_names]] = out
        aligned.append(full)
    return aligned
