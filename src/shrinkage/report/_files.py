"""A results directory: what ``shrinkage tune`` writes, and how a report reads it back.

A results directory holds::

    results.csv            one row per configuration (the search's cv_results_)
    model/                 the refit best estimator
    search.json            optional: data description, search space, 2-D points
    baseline.safetensors   optional: the unregularized fit's weights (histograms)
    report.html            the report

:func:`save_report_metadata` writes the two optional files; :func:`load_report_inputs`
reads the directory into :class:`ReportInputs`, everything a report can show.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shrinkage._io import atomic_write
from shrinkage.analysis import (
    Diagnosis,
    activation_summary,
    as_results_frame,
    best_index,
    layer_weights,
)
from shrinkage.errors import ShrinkageError

RESULTS_FILE = "results.csv"
MODEL_DIR = "model"
METADATA_FILE = "search.json"
BASELINE_FILE = "baseline.safetensors"
REPORT_FILE = "report.html"

_METADATA_FORMAT = "shrinkage.search-metadata"
_METADATA_VERSION = 1
#: 2-D points kept in search.json for the decision boundary: enough to see the shape.
_MAX_POINTS = 2000


@dataclass
class ReportInputs:
    """Everything a report can show; each part is optional and its section says so.

    Attributes:
        results: the search's results, one row per configuration.
        estimator: the chosen (refit) estimator.
        baseline: the unregularized fit (an estimator, a module, or name → weights).
        data: a description of the data (``rows``, ``features``, ``target``, ``task``…).
        search_space: what was searched (merged over what ``results`` shows);
            ``scoring`` says what the scores are.
        X: rows for the decision boundary (2 features) and the activations.
        y: their targets.
        title: the report's heading.
        chosen_index: the search's chosen row (``best_index_``; it may follow the
            one-standard-error rule); default :func:`~shrinkage.analysis.best_index`.
        activations: a saved :func:`~shrinkage.analysis.activation_summary`, shown when
            there are no rows ``X`` to compute it from.
        diagnoses: more ``(measured on, Diagnosis)`` rows for the diagnosis table (e.g.
            each network of the demo on its train and test rows), listed first.
    """

    results: pd.DataFrame | None = None
    estimator: Any = None
    baseline: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    search_space: dict[str, Any] = field(default_factory=dict)
    X: Any = None
    y: Any = None
    title: str = "shrinkage report"
    chosen_index: int | None = None
    activations: list[dict[str, Any]] | None = None
    diagnoses: list[tuple[str, Diagnosis]] = field(default_factory=list)

    def chosen_row(self) -> int:
        """The row of ``results`` the report presents as chosen: ``chosen_index`` when it is
        a row, else the best mean validation score (:func:`~shrinkage.analysis.best_index`)."""
        if self.chosen_index is not None and 0 <= self.chosen_index < len(self.results):
            return int(self.chosen_index)
        return best_index(self.results)


def describe_data(
    X: Any,
    y: Any = None,
    *,
    source: str | None = None,
    target: str | None = None,
    task: str | None = None,
    preprocessing: str | None = None,
) -> dict[str, Any]:
    """A short, JSON-ready description of a data set for the report.

    Args:
        X: the feature rows (array or DataFrame).
        y: the targets (class counts are listed for up to 20 classes).
        source: where the data came from (a file name, "make_moons(…)").
        target: the target column's name.
        task: ``"classification"`` or ``"regression"``.
        preprocessing: what was done to the inputs (e.g. standardized).

    Returns:
        ``{"source", "rows", "features", "feature_names", "target", "task", "classes",
        "preprocessing"}`` (absent keys omitted).
    """
    shape = np.shape(X)
    out: dict[str, Any] = {
        "rows": int(shape[0]),
        "features": int(shape[1]) if len(shape) > 1 else 1,
    }
    if source:
        out["source"] = str(source)
    if isinstance(X, pd.DataFrame):
        out["feature_names"] = [str(c) for c in X.columns]
    if target:
        out["target"] = str(target)
    if task:
        out["task"] = str(task)
    if y is not None and task != "regression":
        values, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        if len(values) <= 20:
            out["classes"] = {str(v): int(c) for v, c in zip(values, counts)}
    if preprocessing:
        out["preprocessing"] = str(preprocessing)
    return out


#: SearchCV settings worth stating in the report's search space.
_SEARCH_SETTINGS = (
    "strengths",
    "kinds",
    "l1_ratios",
    "placements",
    "cv",
    "validation_fraction",
    "scoring",
    "one_standard_error",
    "refine",
    "refine_points",
    "refine_epochs",
    "random_state",
)


def search_settings(search: Any) -> dict[str, Any]:
    """The search space and choice rule of a fitted search, as JSON-ready values."""
    out: dict[str, Any] = {}
    for name in _SEARCH_SETTINGS:
        value = getattr(search, name, None)
        if value is None:
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, list | tuple):
            value = [v.item() if isinstance(v, np.generic) else v for v in value]
        if isinstance(value, str | int | float | bool | list):
            out[name] = value
        elif name == "cv":
            out[name] = type(value).__name__
    for name in ("n_splits_", "scoring_"):
        value = getattr(search, name, None)
        if isinstance(value, str | int | np.integer):
            out[name.rstrip("_")] = value.item() if isinstance(value, np.generic) else value
    return out


def save_report_metadata(
    out_dir: str | os.PathLike,
    *,
    search: Any = None,
    data: Mapping[str, Any] | None = None,
    search_space: Mapping[str, Any] | None = None,
    baseline: Any = None,
    X: Any = None,
    y: Any = None,
    title: str | None = None,
) -> Path:
    """Save what ``results.csv`` and ``model/`` cannot tell the report.

    Writes ``search.json`` (the chosen row, the search space and choice rule, the data
    description, the title, the hidden activations of the chosen model on ``X`` and, for
    2-feature data, up to 2000 points for the decision boundary) and, when ``baseline`` is
    given, ``baseline.safetensors`` (the unregularized fit's weight matrices). Both
    atomically.

    Args:
        out_dir: the results directory.
        search: the fitted search (``best_index_``, its settings, ``best_estimator_``).
        data: from :func:`describe_data` (or any JSON-ready mapping).
        search_space: more search-space entries (override the search's).
        baseline: the unregularized fit: an estimator, an ``nn.Module`` or name → array.
        X: the raw rows (points kept only when they have exactly 2 features).
        y: their targets.
        title: the report's heading.

    Returns:
        The path of ``search.json``.
    """
    folder = Path(out_dir)
    meta: dict[str, Any] = {"format": _METADATA_FORMAT, "version": _METADATA_VERSION}
    if title:
        meta["title"] = str(title)
    if search is not None and getattr(search, "best_index_", None) is not None:
        meta["best_index"] = int(search.best_index_)
    meta["data"] = dict(data or {})
    space = search_settings(search) if search is not None else {}
    meta["search_space"] = {**space, **dict(search_space or {})}
    chosen = getattr(search, "best_estimator_", None)
    if chosen is not None and X is not None:
        try:
            meta["activations"] = activation_summary(chosen, X)
        except ShrinkageError:
            pass  # a linear model has no hidden layer to summarize
    if is_plane(X):
        points = np.asarray(X, dtype=float)[:_MAX_POINTS]
        meta["points"] = {
            "columns": [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None,
            "X": points.round(6).tolist(),
            "y": None if y is None else np.asarray(y)[:_MAX_POINTS].tolist(),
        }
    if baseline is not None:
        from safetensors.numpy import save

        tensors = {
            name: np.ascontiguousarray(w, dtype=np.float32) for name, w in layer_weights(baseline)
        }
        atomic_write(folder / BASELINE_FILE, save(tensors))
    text = json.dumps(_jsonable(meta), indent=1, allow_nan=False)
    return atomic_write(folder / METADATA_FILE, text + "\n")


def is_plane(X: Any) -> bool:
    """Whether ``X`` is rows of exactly two numeric features (a decision boundary's plane)."""
    if X is None or np.ndim(X) != 2 or np.shape(X)[1] != 2:
        return False
    try:
        np.asarray(X, dtype=float)
    except (TypeError, ValueError):  # a categorical column: no plane to draw
        return False
    return True


def _jsonable(value: Any) -> Any:
    """Plain JSON values; NaN and infinities become None (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _load_estimator(folder: Path) -> Any:
    from shrinkage.estimators import load

    return load(folder)


def load_report_inputs(results_dir: str | os.PathLike) -> ReportInputs:
    """Read a results directory (``results.csv``, ``model/``, optional metadata).

    Raises:
        ShrinkageError: the directory or its ``results.csv`` does not exist.
    """
    folder = Path(results_dir)
    if not folder.is_dir():
        raise ShrinkageError(f"The results directory {str(folder)!r} does not exist.")
    csv = folder / RESULTS_FILE
    if not csv.is_file():
        raise ShrinkageError(
            f"The results directory {str(folder)!r} has no {RESULTS_FILE}; "
            "run 'shrinkage tune' to create it."
        )
    frame = as_results_frame(pd.read_csv(csv))
    inputs = ReportInputs(results=frame)
    if (folder / MODEL_DIR).is_dir():
        inputs.estimator = _load_estimator(folder / MODEL_DIR)
    meta_path = folder / METADATA_FILE
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ShrinkageError(f"The file {str(meta_path)!r} is not valid JSON: {err}.") from None
        inputs.data = dict(meta.get("data") or {})
        inputs.search_space = dict(meta.get("search_space") or {})
        inputs.title = str(meta.get("title") or inputs.title)
        if isinstance(meta.get("best_index"), int) and 0 <= meta["best_index"] < len(frame):
            inputs.chosen_index = meta["best_index"]
        if isinstance(meta.get("activations"), list):
            inputs.activations = meta["activations"]
        points = meta.get("points")
        if points:
            X = np.asarray(points["X"], dtype=float)
            columns = points.get("columns")
            inputs.X = pd.DataFrame(X, columns=columns) if columns else X
            inputs.y = None if points.get("y") is None else np.asarray(points["y"])
    if (folder / BASELINE_FILE).is_file():
        from safetensors.numpy import load_file

        inputs.baseline = load_file(str(folder / BASELINE_FILE))
    return inputs


# --------------------------------------------------------------------------- HTML pieces
